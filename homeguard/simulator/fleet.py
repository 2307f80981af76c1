"""Many simulated boards in one process: the real firmware (homeguard/simulator/board.py)
for `homeguard simulate`, the demo, `homeguard device test --sim` and the tests.

Each board runs the board loop as on its own hardware, one turn at a time:
a fleet thread owns up to `per_thread` boards and turns each one when its
socket has data, when its tick is due (`tick_ms`; `fast_ms` while a button
is held or the link is being set up), and when another thread asks it to do
something (`SimBoard.call`, `press`, ...).  Boards never share state: every
one has its own flash directory, MQTT connection and broker account.

Threads: hg.device's network calls do not wait (hg.net), so one thread can
carry thousands of boards; `per_thread` still caps a thread's boards so that
a connect that does wait (the name lookup of a host name, or firmware older
than hg.net, whose connect waits up to 10 s for the CONNACK) holds up only
its own thread's boards.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import selectors
import socket
import threading
from collections import deque
from collections.abc import Callable

from hg.simhal import Clock
from homeguard.simulator.board import BoardSpec, SimBoard, Stream

log = logging.getLogger("homeguard.fleet")


class Fleet:
    def __init__(self, tick_ms: int = 100, fast_ms: int = 20, per_thread: int = 250) -> None:
        self.tick_ms = tick_ms
        self.fast_ms = fast_ms
        self.per_thread = per_thread
        self.clock = Clock()  # one ms clock for every board of the fleet
        self.boards: list[SimBoard] = []
        self._threads: list[BoardThread] = []
        self.started = False

    def add(self, spec: BoardSpec) -> SimBoard:
        """Provision and boot a board (its loop runs once the fleet is started)."""
        board = SimBoard(spec, self.clock)
        if not self._threads or len(self._threads[-1].boards) >= self.per_thread:
            t = BoardThread(self, len(self._threads))
            self._threads.append(t)
            if self.started:
                t.start()
        self._threads[-1].adopt(board)
        self.boards.append(board)
        return board

    def start(self) -> Fleet:
        self.started = True
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = 30) -> None:
        """Every board disconnects cleanly (no last will); threads end."""
        for t in self._threads:
            t.stop()
        for t in self._threads:
            if t.is_alive():
                t.join(timeout)

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BoardThread(threading.Thread):
    """Turns its boards: on socket data, when due, and on request."""

    def __init__(self, fleet: Fleet, n: int) -> None:
        super().__init__(name=f"fleet-{n}", daemon=True)
        self.fleet = fleet
        self.boards: list[SimBoard] = []
        self.sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._calls: deque[Callable[[], None]] = deque()
        self._due: list[tuple[int, int, SimBoard]] = []
        self._order = itertools.count()
        self._stopping = False
        self.errors = 0

    def adopt(self, board: SimBoard) -> None:
        board.on_stream = self._watch
        board.post = self.call

        def schedule() -> None:
            self.boards.append(board)
            self._schedule(board, self.fleet.clock())
        if self.is_alive():
            self.call(schedule)
        else:
            schedule()

    def call(self, fn: Callable[[], None]) -> None:
        """fn() in this thread at its next turn (from any thread)."""
        self._calls.append(fn)
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # the wake-up pipe is full: a wake-up is pending anyway

    def stop(self) -> None:
        self._stopping = True
        self.call(lambda: None)

    def _watch(self, stream: Stream, on: bool) -> None:
        if on:
            self.sel.register(stream.fd, selectors.EVENT_READ, stream.board)
        else:
            self.sel.unregister(stream.fd)

    def _schedule(self, board: SimBoard, due: int) -> None:
        board.due = due
        heapq.heappush(self._due, (due, next(self._order), board))

    def run(self) -> None:
        try:
            while not self._stopping:
                self._once()
        finally:
            for board in self.boards:
                try:
                    board.shutdown()
                except Exception:  # noqa: BLE001 - stopping: the others still close
                    log.exception("%s: shutdown", board.id)
            self.sel.close()
            self._wake_r.close()
            self._wake_w.close()

    def _once(self) -> None:
        clock = self.fleet.clock
        wait = (self._due[0][0] - clock()) / 1000 if self._due else 1.0
        ready = []
        for key, _ in self.sel.select(min(1.0, max(0.0, wait))):
            if key.data is None:
                try:
                    while self._wake_r.recv(4096):
                        pass
                except BlockingIOError:
                    pass
            else:
                ready.append(key.data)
        while self._calls:
            self._calls.popleft()()
        for board in ready:
            self._turn(board)
        now = clock()
        while self._due and self._due[0][0] <= now:
            due, _, board = heapq.heappop(self._due)
            if due == board.due:
                self._turn(board)

    def _turn(self, board: SimBoard) -> None:
        try:
            board.step()
        except Exception:  # noqa: BLE001 - one board's bug must not stop the others
            self.errors += 1
            log.exception("%s: board loop", board.id)
        self._schedule(board, self.fleet.clock()
                       + board.interval(self.fleet.tick_ms, self.fleet.fast_ms))
