"""Commit lanes: a thread that commits queued messages in batches, then
releases their PUBACKs (each message's Deferred).

Two lanes run side by side so telemetry never delays an alarm (each fed by
its own broker session, source.py):

- the event lane (alarms, restores, heartbeats, status: everything kept in
  the centre's outbox) sheds nothing; at most EVENT_QUEUE_MAX events wait
  in memory, past that the source waits for room (back-pressure to the
  broker, which keeps the messages it has not had a PUBACK for). Under load a batch
  of events shares one fsync ("group commit"); an alarm arriving at an idle
  gateway is committed on its own at once.
- the telemetry lane commits points in batches and holds at most
  `queue_max` of them. When it is full the source waits for room, up to
  `wait_s` (backpressure: the broker keeps what the gateway has not taken,
  as after an outage when a backlog arrives faster than one commit). A lane
  still full after that is overloaded: new points are shed until it has
  drained to half (never while the store is failing: then the source
  waits, as for the event lane), each counted in hg_gateway_shed_total{lane="telemetry",
  reason="queue_full"}, logged at most once a minute, and PUBACKed so the
  broker does not send it again (shedding telemetry keeps the broker's own
  queue from filling up). It yields to the event lane: it starts no commit
  while events are queued or being committed (`yield_to`), so an alarm
  waits for SQLite's write lock at most behind one telemetry commit already
  under way, and a flood of events is met by shedding telemetry, never by
  delaying events.

A gateway killed before a commit never sent those PUBACKs, so the broker
hands the messages over again when it reconnects. A failed commit is
retried with backoff, holding the batch (and the PUBACKs) until it works.

The hand-over is a deque (one append per message, no lock) with an Event
set only when the lane thread is asleep; after each batch the lane calls
`after_batch` once (the source sends the batch's PUBACKs in one write).
The telemetry lane hands each committed batch, with the points' store ids,
to `on_written` (the points sinks, which write it without reading it back).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from gateway import metrics
from gateway.outcome import Outcome
from gateway.source import Deferred
from gateway.store import Point, PointBatch, Store
from gateway.worker import Worker

log = logging.getLogger("homeguard.gateway.lane")
BATCH = 500
LOG_EVERY_S = 60.0
QUEUE_FULL = "queue_full"
IDLE_WAIT_S = 0.2  # a sleeping lane re-checks its queue at least this often
COMMIT_BACKOFF_S = (0.1, 10.0)  # a failed commit is retried after these, doubling
ROOM_POLL_S = 0.002
FAILING_POLL_S = 0.05  # while the store cannot write, look for room this often
EVENT_QUEUE_MAX = 5000  # events waiting in memory for a commit, at most

T = TypeVar("T")


class Lane(Worker, Generic[T]):
    """Queue + writer (a Worker); subclasses say how a batch is committed.

    A round takes a batch (waiting gather_s for a short one to fill),
    commits it and completes its Deferreds; a failed commit keeps the batch
    (and its PUBACKs) and the Worker retries it with backoff until it works."""

    name = "lane"
    flush_on_stop = True  # commit what is queued before stopping
    idle_s = IDLE_WAIT_S
    gather_s = 0.0  # wait this long for more items before committing a short batch

    def __init__(self) -> None:
        super().__init__(COMMIT_BACKOFF_S[0], COMMIT_BACKOFF_S[1])
        self.items: deque[tuple[T, Deferred]] = deque()
        self.after_batch: Callable[[], object] = lambda: None
        self._held: list[tuple[T, Deferred]] = []  # a batch whose commit failed
        self._asleep = False

    def depth(self) -> int:
        return len(self.items)

    def commit(self, items: list[T]) -> Sequence[str]:
        """Commit the items in one transaction; one outcome per item."""
        raise NotImplementedError

    def _wait_room(self, limit: int) -> None:
        """Block the caller (the source: the broker keeps what it has not
        delivered) until fewer than `limit` items are queued."""
        while len(self.items) >= limit and not self.stopping.is_set():
            time.sleep(ROOM_POLL_S if not self.failing else FAILING_POLL_S)

    def _queue(self, item: T, deferred: Deferred) -> Deferred:
        self.items.append((item, deferred))
        if self._asleep:  # read after the append: see idle
            self.wakeup.set()
        return deferred

    def idle(self) -> None:
        self._asleep = True
        if not self.items:  # an append before this line is seen here, one after wakes us
            self.wakeup.wait(self.idle_s)
        self._asleep = False

    def _take(self, batch: list[tuple[T, Deferred]]) -> list[tuple[T, Deferred]]:
        pop = self.items.popleft
        try:
            while len(batch) < BATCH:
                batch.append(pop())
        except IndexError:
            pass
        return batch

    def once(self) -> bool:
        batch = self._held
        if not batch:
            batch = self._take([])
            if not batch:
                return False
            if len(batch) < BATCH and self.gather_s and not self.stopping.is_set():
                time.sleep(self.gather_s)  # let a batch gather: one commit for many
                self._take(batch)
        self.wait_turn()
        self._held = batch  # kept until committed: the broker still has these
        outcomes = self.commit([item for item, _ in batch])
        self._held = []
        for (_, deferred), outcome in zip(batch, outcomes, strict=True):
            deferred.outcome = outcome
            deferred.done()  # queues the PUBACK
        try:
            self.after_batch()  # sends the PUBACKs
        except Exception:  # noqa: BLE001 - committed; the broker may send them again
            log.exception("PUBACKs after the %s commit failed", self.name)
        return bool(self.items)

    def wait_turn(self) -> None:
        """Before a commit: wait while a lane with priority has work."""

    def busy(self) -> bool:
        """Items queued or a batch being committed; False while commits fail
        (the store cannot write: then every lane waits on its own backoff)."""
        return bool(self.items or self._held) and not self.failing

    def failed(self, exc: Exception, backoff: float) -> None:
        log.error("%s commit failed items=%d error=%r; retrying in %.1fs", self.name,
                  len(self._held), f"{type(exc).__name__}: {exc}", backoff)

    def recovered(self) -> None:
        log.warning("%s commits again", self.name)


class EventLane(Lane[T]):
    """Events in arrival order, committed by `commit_fn` (the pipeline's).

    At most `queue_max` wait in memory: past that the source waits for room
    (while the store cannot write, that is until it can), so a failing store
    costs bounded memory and the broker keeps the rest, unacknowledged."""

    name = "event-lane"

    def __init__(self, commit_fn: Callable[[list[T]], Sequence[str]],
                 queue_max: int = EVENT_QUEUE_MAX) -> None:
        super().__init__()
        self.commit_fn = commit_fn
        self.queue_max = queue_max

    def put(self, item: T) -> Deferred:
        if len(self.items) >= self.queue_max:
            self._wait_room(self.queue_max)
        return self._queue(item, Deferred(Outcome.QUEUED))

    def commit(self, items: list[T]) -> Sequence[str]:
        return self.commit_fn(items)


class TelemetryLane(Lane[Point]):
    name = "telemetry-lane"
    # a point waits up to 10 ms more for its PUBACK; under load that makes
    # batches of hundreds instead of a commit (and an fsync) every few points
    gather_s = 0.01

    def __init__(self, store: Store, queue_max: int,
                 on_written: Callable[[PointBatch], object] = lambda batch: None,
                 wait_s: float = 2.0) -> None:
        super().__init__()
        self.store = store
        self.queue_max = queue_max
        self.wait_s = wait_s
        self.on_written = on_written
        self.shed = 0
        self.overloaded = False  # full for wait_s: shedding until drained to half
        self._unrecorded = 0  # shed since the last commit, not yet in the store's counter
        self.yield_to: Callable[[], bool] = lambda: False  # the event lane's busy()
        # with a shared de-dup state (Redis) the pipeline's screen checks a
        # batch before its commit (an outcome per point: `telemetry` to keep),
        # and settle remembers what was kept after it: a round trip each
        self.screen: Callable[[list[Point]], list[str]] | None = None
        self.settle: Callable[[list[Point], list[str]], object] = lambda points, outcomes: None
        self._shed_lock = threading.Lock()
        self._logged = -LOG_EVERY_S

    def put(self, point: Point, outcome: str) -> Deferred:
        """Queue a point; the returned Deferred is done once it is committed (or shed)."""
        deferred = Deferred(outcome)
        if len(self.items) >= self.queue_max and self.failing:
            # the store cannot write: not an overload to shed, but a wait (the
            # broker keeps the points until the store can take them)
            self._wait_room(self.queue_max)
        if len(self.items) >= self.queue_max and not self._room():
            self._shed(point)
            deferred.done()
            return deferred
        return self._queue(point, deferred)

    def _room(self) -> bool:
        """Wait (up to wait_s) for the lane to have room, unless it is overloaded."""
        if not self.overloaded:
            deadline = time.monotonic() + self.wait_s
            while time.monotonic() < deadline and not self.stopping.is_set():
                time.sleep(ROOM_POLL_S)
                if len(self.items) < self.queue_max:
                    return True
            self.overloaded = True
        return False

    def wait_turn(self) -> None:
        """Events commit first: no telemetry commit starts while they have work."""
        while self.yield_to() and not self.stopping.is_set():
            time.sleep(ROOM_POLL_S)

    def commit(self, items: list[Point]) -> list[str]:
        outcomes = self.screen(items) if self.screen is not None else None
        points = items if outcomes is None else [
            p for p, o in zip(items, outcomes, strict=True) if o == Outcome.TELEMETRY]
        with self._shed_lock:
            shed, self._unrecorded = self._unrecorded, 0
        try:
            # the shed count is kept durably with the points, for reconciliation
            batch = self.store.insert_points(points, shed=shed)
        except BaseException:
            with self._shed_lock:
                self._unrecorded += shed
            raise
        # (screened: a retry after a failed settle finds its points stored already)
        metrics.PERSISTED_TELEMETRY.inc(len(points) if outcomes is None else len(batch.points))
        depth = len(self.items)
        metrics.LANE_DEPTH.set(depth)
        if self.overloaded and depth <= self.queue_max // 2:
            self.overloaded = False
            log.warning("telemetry lane drained to %d; no longer shedding (shed in all: %d)",
                        depth, self.shed)
        self.on_written(batch)  # the points sinks take it from here, in memory
        if outcomes is None:
            return ["telemetry"] * len(items)
        self.settle(items, outcomes)  # raises (Redis down): the batch is retried
        return outcomes

    def _shed(self, point: Point) -> None:
        self.shed += 1
        with self._shed_lock:
            self._unrecorded += 1
        metrics.SHED_TELEMETRY.inc()
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY_S:
            self._logged = now
            log.warning("shed telemetry reason=%s device=%s seq=%d queued=%d total=%d",
                        QUEUE_FULL, point.device, point.seq, len(self.items), self.shed)
