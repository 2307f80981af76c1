"""What a person or the world does to a simulated board's hardware
(homeguard/simulator/board.py), held until the app reacts: a button pressed until the
button app sends its event, a residual current above the set point until the
sensor app raises its alarm and, once the current is back to normal, its
restore.  The app decides everything (hold time, latching, detection); the
action only moves the input and watches what the app sends."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from homeguard.simulator.board import SimBoard

Done = Callable[[int | None], None]  # told the seq the app sent, or None
CANCEL_MS = 5000  # apps/button/guard.py: a latched button held this long cancels
LEAK_MA = 330  # 110 % of the default residual-current set point (300 mA)


class Press:
    """A button held until the app sends an event for it: the alarm after
    the hold time, or a cancel when that button's alarm was still latched;
    released after max_ms when neither came."""

    def __init__(self, typ: str, max_ms: int, done: Done | None = None) -> None:
        self.typ = typ
        self.max_ms = max_ms
        self.done = done
        self.pin = ""
        self.deadline = 0

    def start(self, board: SimBoard, now: int) -> None:
        self.pin = board.profile["buttons"][self.typ]
        self.deadline = now + self.max_ms
        board.pins[self.pin] = 1

    def on_event(self, board: SimBoard, seq: int, kind: str, typ: str) -> None:
        if typ == self.typ and kind in ("alarm", "cancel"):
            self._end(board, seq)

    def drive(self, board: SimBoard, now: int) -> None:
        if now >= self.deadline:
            self._end(board, None)

    def _end(self, board: SimBoard, seq: int | None) -> None:
        board.pins[self.pin] = 0
        board.action = None
        if self.done is not None:
            self.done(seq)


class Leak:
    """The residual current raised to `ma` until the sensor app sends its
    alarm, then back to what it was until the app sends the restore; given
    up after max_ms."""

    CHANNEL, TYPE = "residual", "residual_current"

    def __init__(self, ma: int, max_ms: int, done: Done | None = None) -> None:
        self.ma = ma
        self.max_ms = max_ms
        self.done = done
        self.normal: int | None = None
        self.seq: int | None = None
        self.deadline = 0

    def start(self, board: SimBoard, now: int) -> None:
        self.normal = board.values.get(self.CHANNEL)
        self.deadline = now + self.max_ms
        board.values[self.CHANNEL] = self.ma

    def on_event(self, board: SimBoard, seq: int, kind: str, typ: str) -> None:
        if typ != self.TYPE:
            return
        if kind == "alarm" and self.seq is None:
            self.seq = seq
            board.values[self.CHANNEL] = self.normal
            if self.done is not None:
                self.done(seq)
        elif kind == "restore" and self.seq is not None:
            board.action = None

    def drive(self, board: SimBoard, now: int) -> None:
        if now < self.deadline:
            return
        board.values[self.CHANNEL] = self.normal
        board.action = None
        if self.seq is None and self.done is not None:
            self.done(None)
