"""The serial link to a board: mpremote's SerialTransport (pyserial) for the
port and the raw REPL handshake, plus timeouts of our own and a retry policy.

Every command runs in MicroPython's raw REPL (Ctrl-A): the code goes over,
Ctrl-D runs it, the board answers `OK<stdout>\\x04<stderr>\\x04>`.  Anything
else (silence, garbage, a program that will not stop) is a LinkError;
`retry()` then interrupts the board, re-enters the raw REPL and runs the
step again, saying so on the console each time.
"""

from __future__ import annotations

import ast
import contextlib
import io
import time
from collections.abc import Callable
from typing import TypeVar

from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from homeguard.tech.errors import DeviceError, GaveUp, LinkError, NoBoard

T = TypeVar("T")
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
WRITE_BLOCK = 256  # bytes per serial write; a slow board's UART buffer is small


def _quiet() -> contextlib.redirect_stdout[io.StringIO]:
    """mpremote prints what it read when a handshake fails; we raise instead."""
    return contextlib.redirect_stdout(io.StringIO())


class Board:
    """One open serial port with a MicroPython board in raw REPL on the other end."""

    def __init__(self, port: str, baud: int = 115200, timeout: float = 3.0,
                 attempts: int = 4, pace: float = 0.002,
                 say: Callable[[str], None] = print) -> None:
        self.port = port
        self.baud = baud
        self.timeout = timeout  # seconds of silence before the link counts as broken
        self.attempts = attempts
        self.pace = pace  # pause between WRITE_BLOCKs
        self.say = say
        self.retries = 0  # how many times a step had to be repeated
        self._t: SerialTransport | None = None

    # -- opening -------------------------------------------------------------
    def open(self) -> Board:
        try:
            with _quiet():
                self._t = SerialTransport(self.port, baudrate=self.baud, timeout=self.timeout)
        except (TransportError, OSError) as exc:
            raise NoBoard(self.port, str(exc)) from None
        self._t.use_raw_paste = False  # plain raw REPL works on every MicroPython
        self.retry(self._enter_raw, "entering the raw REPL")
        return self

    def close(self) -> None:
        if self._t is not None:
            with contextlib.suppress(OSError, TransportError):
                self._t.serial.write(b"\r\x02")  # back to the friendly REPL
                self._t.close()
            self._t = None

    def __enter__(self) -> Board:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def transport(self) -> SerialTransport:
        if self._t is None:
            raise LinkError(f"{self.port} is not open")
        return self._t

    def _drain(self, quiet_for: float = 0.2) -> None:
        """Read and drop whatever the board still sends (a late answer, a banner)."""
        serial = self.transport.serial
        last = time.monotonic()
        while time.monotonic() - last < quiet_for:
            if serial.in_waiting:
                serial.read(serial.in_waiting)
                last = time.monotonic()
            else:
                time.sleep(0.02)

    def _enter_raw(self) -> None:
        t = self.transport
        try:
            t.serial.write(b"\r\x03\x03")  # stop a running program (twice: it may catch one)
            self._drain()
            t.serial.write(b"\r\x01")
            data = t.read_until(1, RAW_BANNER, timeout=self.timeout)
        except (OSError, TransportError) as exc:
            raise LinkError(f"serial error on {self.port}: {exc}") from None
        if not data.endswith(RAW_BANNER):
            raise LinkError("the board did not enter the raw REPL "
                            f"(busy, or not running MicroPython?) - it sent {data[-60:]!r}")
        t.in_raw_repl = True

    # -- running code --------------------------------------------------------
    def run(self, code: str, timeout: float | None = None, what: str = "command") -> str:
        """stdout of `code` run once on the board; DeviceError if it raised."""
        t = self.transport
        try:
            prompt = t.read_until(1, b">", timeout=self.timeout)
            if not prompt.endswith(b">"):
                raise LinkError(f"no raw REPL prompt from the board (got {prompt[-40:]!r})")
            raw = code.encode()
            for i in range(0, len(raw), WRITE_BLOCK):
                t.serial.write(raw[i:i + WRITE_BLOCK])
                if self.pace:
                    time.sleep(self.pace)
            t.serial.write(b"\x04")
            ok = t.serial.read(2)
            if ok != b"OK":
                raise LinkError(f"the board did not accept the {what} (answered {ok!r})")
            out, err = self._follow(timeout or self.timeout, what)
        except TransportError as exc:
            raise LinkError(f"{what}: {exc} (no complete answer within "
                            f"{timeout or self.timeout:.0f}s)") from None
        except OSError as exc:
            raise LinkError(f"serial error on {self.port}: {exc}") from None
        if err:
            raise DeviceError(what, err.decode("utf-8", "replace"))
        return out.decode("utf-8", "replace")

    def _follow(self, timeout: float, what: str) -> tuple[bytes, bytes]:
        """(stdout, stderr) of the code running now; a LinkError after
        `timeout` seconds of silence says what the board printed until then
        (a board that cannot start prints why, then waits)."""
        parts: list[bytes] = []
        for _ in range(2):  # stdout, then stderr, each ended by Ctrl-D
            got = bytearray()
            self.transport.read_until(1, b"\x04", timeout=timeout, data_consumer=got.extend)
            if not got.endswith(b"\x04"):
                printed = (b"".join(parts) + got).decode("utf-8", "replace").strip()
                raise LinkError(f"{what}: no complete answer within {timeout:.0f}s; "
                                f"the board printed: {printed[-500:] or '(nothing)'}")
            parts.append(bytes(got[:-1]))
        return parts[0], parts[1]

    def eval(self, expr: str, setup: str = "", what: str = "query") -> object:
        """A Python literal computed on the board (repr parsed on the host)."""
        out = self.run(f"{setup}\nprint(repr({expr}))", what=what)
        try:
            return ast.literal_eval(out.strip())
        except (ValueError, SyntaxError):
            raise LinkError(f"{what}: garbled answer from the board: {out[-80:]!r}") from None

    # -- resilience ----------------------------------------------------------
    def recover(self) -> None:
        """Interrupt the board and get back to a clean raw REPL prompt."""
        self._enter_raw()

    def retry(self, step: Callable[[], T], what: str,
              retry_on: tuple[type[Exception], ...] = (LinkError,)) -> T:
        """step(), repeated after a recover() when it fails with a link problem."""
        last: Exception | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                if last is not None:
                    self.recover()
                return step()
            except retry_on as exc:
                last = exc
                self.retries += 1
                if attempt < self.attempts:
                    self.say(f"{exc} - retrying ({attempt}/{self.attempts - 1})")
        assert last is not None
        raise GaveUp(what, self.attempts, last)
