"""One simulated board: the real firmware on the simulated hardware layer.

A SimBoard does under CPython what hg.board does on a board: it writes the
board's flash as provisioning does (`<root>/config.json`), boots hg.device
with the device app exactly as installed (apps.button or apps.sensor) on
hg.simhal, and runs the board loop one turn at a time (`step()`: the app's
inputs, then the device's network work).  Whatever a person or the world
does goes through the hardware: a press is the button's input pin held until
the app reacts (`Press`), a leakage is the residual-current channel above
the set point (`Leak`).  The flash (outbox, seq reservation) stays in `root`,
so `power_cycle()` (all RAM lost, a new runtime on the same flash) keeps
every pending event and never reuses a seq.

What the board did is observed from outside the firmware, through its
public seams (homeguard/simulator/watch.py: `report`, `acks`, `wires`).  A SimBoard
belongs to one thread (a fleet's, homeguard/simulator/fleet.py): `step()` and the
actions run there; other threads go through `call()`, `press()`, ...
"""

from __future__ import annotations

import importlib
import json
import socket
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from hg import config
from hg.device import Device
from hg.outbox import LIGHT
from hg.seqres import SeqRes
from hg.simhal import SimHAL, open_stream
from homeguard.simulator.actions import CANCEL_MS, LEAK_MA, Leak, Press
from homeguard.simulator.watch import Watch

# the apps installed with this package (firmware.apps; from a checkout,
# firmware/apps) import as on a board: apps.<type>
FIRMWARE = str(Path(str(resources.files("firmware.apps"))).parent)
if FIRMWARE not in sys.path:
    sys.path.append(FIRMWARE)
BOARDS = Path(str(resources.files("hardware"))) / "boards"  # hardware/boards/<board>.json
PROFILE = {"button": "button-c3", "sensor": "sensor-esp32"}
APP = {"button": "ButtonApp", "sensor": "SensorApp"}
# a sensor's channels on a healthy circuit (mA, mV, mA, 0.1 degC)
NORMAL = {"current": 5000, "voltage": 230000, "residual": 40, "temp_ntc": 312}
T = TypeVar("T")


@dataclass
class BoardSpec:
    """What provisioning puts on the board, and where its flash is."""
    device_id: str
    key_hex: str
    password: str
    host: str
    port: int
    root: Path
    type: str = "button"
    tls_ca: str | None = None
    household: str = ""
    grid: str = ""
    heartbeat_s: int = 300
    telemetry_s: int = 10
    hold_ms: int = 1000
    resend_ms: int = 30000  # hg.device's resend of an event without `stored`
    seq_floor: int = 0  # seqs up to this were used before this flash existed

    def config(self) -> dict[str, Any]:
        return {"v": 1, "device_id": self.device_id, "key_hex": self.key_hex,
                "type": self.type, "board": PROFILE[self.type],
                "household": self.household, "grid": self.grid,
                "broker": {"host": self.host, "port": self.port, "tls": bool(self.tls_ca),
                           "ca": self.tls_ca or "", "username": self.device_id,
                           "password": self.password},
                "heartbeat_s": self.heartbeat_s, "telemetry_s": self.telemetry_s,
                "button": {"hold_ms": self.hold_ms}}


def stand_in_floor(state_dir: Path, device_id: str) -> int:
    """The last seq the stand-in device used before devices ran the firmware
    (it kept the next one in <state_dir>/<id>.seq.json); 0 when none."""
    path = state_dir / f"{device_id}.seq.json"
    return int(json.loads(path.read_text())["next"]) - 1 if path.exists() else 0


def provision(spec: BoardSpec) -> None:
    """The board's config.json (and a seq floor) as provisioning writes them."""
    spec.root.mkdir(parents=True, exist_ok=True)
    path = str(spec.root / config.FILE)
    config.write_atomic(path, json.dumps(spec.config()).encode())
    seq = spec.root / "seq"
    if spec.seq_floor and not seq.exists():
        SeqRes(str(seq), floor=spec.seq_floor).next()  # reserves above the floor


class Stream:
    """The board's broker connection as hg.mqtt gets it, known to the fleet's
    selector while open; reset() drops it as a lost radio link does."""

    def __init__(self, inner: Any, board: SimBoard) -> None:
        self.inner = inner
        for name in ("recv", "read", "send", "write", "settimeout", "setblocking"):
            if hasattr(inner, name):
                setattr(self, name, getattr(inner, name))
        self.raw = getattr(inner, "raw", inner)  # hg.net wraps the socket
        self.fd = self.raw.fileno()
        self.board = board
        board.on_stream(self, True)

    def reset(self) -> None:
        try:
            self.raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        if self.fd >= 0:
            self.board.on_stream(self, False)
            self.fd = -1
        self.inner.close()


class SimBoard:
    def __init__(self, spec: BoardSpec, clock: Callable[[], int]) -> None:
        self.spec = spec
        self.id = spec.device_id
        self.clock = clock  # the fleet's ms, for actions and schedules
        self.profile = json.loads((BOARDS / f"{PROFILE[spec.type]}.json").read_text())
        self.watch = Watch(spec.type, self._on_event)
        self.report, self.acks, self.wires = self.watch.report, self.watch.acks, self.watch.wires
        self.pins: dict[str, int] = {}  # the hardware: survives a power cycle
        self.values: dict[str, int | None] = dict(NORMAL) if spec.type == "sensor" else {}
        self.clock_offset_ms = 0
        self.action: Press | Leak | None = None
        self.on_step: Callable[[SimBoard, int], None] | None = None
        self.on_output: Callable[[SimBoard, str, str], None] | None = None
        self.on_stream: Callable[[Stream, bool], None] = lambda stream, up: None
        self.post: Callable[[Callable[[], None]], None] | None = None  # into the board's thread
        self.connected = threading.Event()
        self.unacked = 0  # events in flash without the gateway's ack
        self.due = 0  # fleet ms of the next turn
        self.last_error: str | None = None
        self._down_until = 0
        self._stream: Stream | None = None
        self.reset_pending = False  # the firmware asked the hal to reboot
        provision(spec)
        self.boot("power_on")

    # --- the board ------------------------------------------------------------

    def boot(self, cause: str) -> None:
        """hg.board's setup: config + profile -> hal, app, device."""
        root = str(self.spec.root)
        cfg, _ = config.load(config.join(root, config.FILE))
        self.hal = BoardHAL(self, cause)
        app_class = getattr(importlib.import_module(f"apps.{self.spec.type}.app"),
                            APP[self.spec.type])
        self.app = app_class(cfg, self.hal, self.profile)
        self.dev = Device.boot(self.hal, self.app, root, resend_ms=self.spec.resend_ms)
        if self.dev.fault or self.dev.link is None:
            raise ValueError(f"{self.id}: cannot start: {self.dev.fault}")
        self.recorder = self.watch.attach(self.dev, self.app)

    def step(self) -> None:
        """One turn of the board loop (inputs first, then the network)."""
        if self.reset_pending:
            self.power_cycle("soft")
        now = self.clock()
        if self.on_step is not None:
            self.on_step(self, now)
        if self.action is not None:
            self.action.drive(self, now)
        try:
            self.app.step(self.hal.ticks_ms())
        except Exception as e:  # noqa: BLE001 - on a board the watchdog would see to it
            self.report.app_errors += 1
            self.last_error = f"app: {type(e).__name__} {e}"
        self.watch.scan()
        self.dev.poll(self.hal.ticks_ms())
        self.watch.scan()
        self._note_state()

    def interval(self, tick_ms: int, fast_ms: int) -> int:
        """ms to the next turn: fast while the hardware is being handled or
        the link is being set up, else the fleet's tick."""
        link = self.dev.link
        busy = self.action is not None or (not link.connected and link.client.sock is not None)
        return fast_ms if busy else tick_ms

    def power_cycle(self, cause: str = "power_on") -> None:
        """Power off and on: RAM is gone, the flash and the hardware stay."""
        self.reset_pending = False
        self.report.reboots += 1
        self.report.in_flash_at_reboot += self.unacked
        self.dev.link.client.close()  # no DISCONNECT: the broker sends the will
        self.connected.clear()
        self.boot(cause)

    def cut(self, outage_ms: int) -> None:
        """The radio link drops and stays down outage_ms."""
        self.report.outages += 1
        self._down_until = self.clock() + outage_ms
        if self._stream is not None:
            self._stream.reset()

    def shutdown(self) -> None:
        """Stop cleanly: DISCONNECT (no will)."""
        self.watch.close()
        self.dev.close()
        self.dev.link.client.close()
        self.connected.clear()

    def start(self, action: Press | Leak) -> None:
        if self.action is not None:
            raise RuntimeError(f"{self.id}: busy with {type(self.action).__name__}")
        self.action = action
        action.start(self, self.clock())

    def settled(self) -> bool:
        return self.action is None and self.unacked == 0

    def connect(self, host: str, port: int, tls: bool, ca: str | None) -> Stream:
        if self.clock() < self._down_until:
            raise OSError("simulated outage: no network")
        self._stream = Stream(open_stream(host, port, tls, ca), self)
        return self._stream

    # --- from another thread: wait for the board's own thread ------------------

    def call(self, fn: Callable[[], T], timeout: float = 30) -> T:
        """fn() run in the board's thread (here, when it has none yet)."""
        if self.post is None:
            return fn()
        fut: Future[T] = Future()

        def run() -> None:
            try:
                fut.set_result(fn())
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                fut.set_exception(e)
        self.post(run)
        return fut.result(timeout)

    def press(self, typ: str, max_ms: int | None = None, timeout: float = 60) -> int | None:
        """Hold the `typ` button until the app sends its event (max_ms, by
        default the hold time + 1 s; CANCEL_MS + 1 s lets a latched button
        cancel); its seq, or None when the app sent nothing."""
        fut: Future[int | None] = Future()
        self.call(lambda: self.start(Press(typ, max_ms or self.spec.hold_ms + 1000,
                                           fut.set_result)))
        return fut.result(timeout)

    def cancel_press(self, typ: str, timeout: float = 60) -> int | None:
        return self.press(typ, CANCEL_MS + 1000, timeout)

    def leak(self, ma: int = LEAK_MA, timeout: float = 60) -> int | None:
        """Residual current at `ma` until the sensor's alarm; its seq or None."""
        fut: Future[int | None] = Future()
        self.call(lambda: self.start(Leak(ma, 30000, fut.set_result)))
        return fut.result(timeout)

    def send_test(self, timeout: float = 30) -> int:
        """The on-site test event, sent as hg.app.test_event does on a board."""
        return self.call(lambda: self.recorder.send_event("manual", {}, "test"), timeout)

    def wait_connected(self, timeout: float = 10) -> bool:
        return self.connected.wait(timeout)

    def _on_event(self, seq: int, kind: str, typ: str) -> None:
        if self.action is not None:
            self.action.on_event(self, seq, kind, typ)

    def _note_state(self) -> None:
        if self.dev.link.connected != self.connected.is_set():
            (self.connected.set if self.dev.link.connected else self.connected.clear)()
        obx = self.dev.obx
        self.unacked = sum(1 for s in obx.pending() if obx.kind(s) not in LIGHT) if len(obx) else 0


class BoardHAL(SimHAL):
    """hg.simhal wired to the board: the fleet's clock, its sockets, the
    board's pins and channels; the LED, buzzer and reboot reported to it."""

    def __init__(self, board: SimBoard, cause: str) -> None:
        super().__init__(reset_cause=cause, clock=board.clock, connect=board.connect,
                         profile=board.profile)
        self.board = board
        self.pins = board.pins
        self.values = board.values
        self.clock_offset_ms = board.clock_offset_ms

    def led(self, pattern: str) -> None:
        super().led(pattern)
        if self.board.on_output is not None:
            self.board.on_output(self.board, "led", pattern)

    def buzzer(self, pattern: str) -> None:
        super().buzzer(pattern)
        if self.board.on_output is not None:
            self.board.on_output(self.board, "buzzer", pattern)

    def reboot(self) -> None:
        self.reboots += 1
        self.board.reset_pending = True  # on the next turn, as a board resets


