"""Fixture: a virtual MicroPython board on a serial port (a pty).

The pty's serial side (`vboard.port`, e.g. /dev/pts/7) is what the tools
open with pyserial.  Behind the other side a pump thread relays bytes to and
from a real MicroPython REPL (the npm WebAssembly port under Node,
tests/harness/mp/board.mjs).  The board's flash is a host directory
(`vboard.flash`) that survives `power_cycle()`, so what an interrupted
install left behind can be checked after a restart.

    def test_x(vboard):
        vboard.faults.cut_after(b"hgf.write(", count=3)   # pull the cable
        ...
        vboard.power_cycle()                             # SIGKILL + boot, link healed
        assert (vboard.flash / "lib/hg/manifest.json").exists()

Import `vboard_fixture` into a test module (or list this module in
pytest_plugins) to get the `vboard` fixture.

Faults (all on the host-to-board direction, matched on the byte stream):
cut_after(marker, count) drops every byte both ways after the count-th
marker; corrupt_after(marker, times) alters the byte that follows a marker;
drop_after(marker, times) removes it; slow(seconds_per_byte) delays
delivery.  heal() clears them.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
import tty
from pathlib import Path

import pytest

from tests.harness.micropython import RUNNER_DIR, MicroPython

BOARD = RUNNER_DIR / "board.mjs"


class Faults:
    """Fault injection on the link; thread-safe, applied by the pump."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.heal()

    def heal(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.cut = False
            self.delay = 0.0
            self._cut: list = []  # [marker, remaining count]
            self._corrupt: list = []  # [marker, remaining times]
            self._drop: list = []
            self._window = b""
            self._next = ""  # "corrupt" | "drop": what happens to the next byte
            self.seen = {"corrupted": 0, "dropped": 0}

    def cut_after(self, marker: bytes, count: int = 1) -> None:
        with self._lock:
            self._cut = [marker, count]

    def corrupt_after(self, marker: bytes, times: int = 1) -> None:
        with self._lock:
            self._corrupt = [marker, times]

    def drop_after(self, marker: bytes, times: int = 1) -> None:
        with self._lock:
            self._drop = [marker, times]

    def slow(self, seconds_per_byte: float) -> None:
        self.delay = seconds_per_byte

    def _hit(self, rule: list) -> bool:
        if rule and rule[1] > 0 and self._window.endswith(rule[0]):
            rule[1] -= 1
            return True
        return False

    def down(self, data: bytes) -> bytes:
        """Host-to-board bytes after the faults."""
        out = bytearray()
        with self._lock:
            for b in data:
                if self.cut:
                    break
                if self._next == "corrupt":
                    b = b + 1 if b != 0x7F else 0x41
                    self.seen["corrupted"] += 1
                elif self._next == "drop":
                    self._next = ""
                    self.seen["dropped"] += 1
                    continue
                self._next = ""
                out.append(b)
                self._window = (self._window + bytes([b]))[-64:]
                if self._hit(self._cut) and self._cut[1] == 0:
                    self.cut = True
                elif self._hit(self._corrupt):
                    self._next = "corrupt"
                elif self._hit(self._drop):
                    self._next = "drop"
        return bytes(out)


class VBoard:
    def __init__(self, node: str, flash: Path, heap: int = 512 * 1024) -> None:
        self.node = node
        self.flash = Path(flash)
        self.heap = heap
        self.faults = Faults()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self.proc: subprocess.Popen | None = None
        self._threads: list[threading.Thread] = []
        self._booted = threading.Event()
        self.log = bytearray()  # everything the board sent, for failure messages

    # -- power -------------------------------------------------------------
    def power_on(self, timeout: float = 20) -> VBoard:
        self.flash.mkdir(parents=True, exist_ok=True)
        self._booted.clear()
        self.proc = subprocess.Popen(
            [self.node, str(BOARD), str(self.flash), str(self.heap)], cwd=BOARD.parent,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        self._threads = [threading.Thread(target=f, args=(self.proc,), daemon=True)
                         for f in (self._host_to_board, self._board_to_host)]
        for t in self._threads:
            t.start()
        if not self._booted.wait(timeout):
            raise TimeoutError(f"virtual board did not boot in {timeout}s: "
                               f"{self.proc.stderr.read1(4000) if self.proc.stderr else ''!r}")
        return self

    def power_off(self) -> None:
        """A power cut: the board process is killed wherever it is."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        for t in self._threads:
            t.join(5)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                with contextlib.suppress(OSError):  # bytes still queued for the dead board
                    stream.close()

    def power_cycle(self) -> VBoard:
        """Power off, heal the link, boot again from the same flash."""
        self.power_off()
        self.faults.heal()
        return self.power_on()

    def close(self) -> None:
        self.power_off()
        for fd in (self._master, self._slave):
            os.close(fd)

    # -- pumps ---------------------------------------------------------------
    def _host_to_board(self, proc: subprocess.Popen) -> None:
        assert proc.stdin is not None
        while proc.poll() is None:
            ready, _, _ = select.select([self._master], [], [], 0.1)
            if not ready:
                continue
            try:
                data = self.faults.down(os.read(self._master, 4096))
            except OSError:
                return
            if self.faults.delay and data:
                time.sleep(self.faults.delay * len(data))
            try:
                proc.stdin.write(data)
            except (OSError, ValueError):
                return

    def _board_to_host(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while True:
            try:
                data = os.read(fd, 4096)
            except (OSError, ValueError):
                return
            if not data:
                return
            self._booted.set()
            self.log += data
            if not self.faults.cut:
                os.write(self._master, data)

    # -- looking at the flash from the host ------------------------------------
    def read(self, path: str) -> bytes | None:
        p = self.flash / path.lstrip("/")
        return p.read_bytes() if p.is_file() else None

    def listing(self) -> list[str]:
        return sorted(p.relative_to(self.flash).as_posix() for p in self.flash.rglob("*"))


@pytest.fixture(name="vboard")
def vboard_fixture(micropython: MicroPython, tmp_path: Path):  # noqa: ANN201
    board = VBoard(micropython.node, tmp_path / "flash").power_on()
    yield board
    board.close()
