"""Commit lanes: a thread that commits queued messages in batches, then
releases their PUBACKs (each message's Deferred).

Two lanes run side by side so telemetry never delays an alarm:

- the event lane (alarms, restores, heartbeats, status: everything kept in
  the centre's outbox) has no bound and sheds nothing. Under load a batch
  of events shares one fsync ("group commit"); an alarm arriving at an idle
  gateway is committed on its own at once.
- the telemetry lane commits points in batches. When its queue holds
  `queue_max` points (sustained overload) a new point is shed: counted in
  hg_gateway_shed_total{lane="telemetry", reason="queue_full"}, logged at
  most once a minute, and PUBACKed so the broker does not send it again.

A gateway killed before a commit never sent those PUBACKs, so the broker
hands the messages over again when it reconnects. A failed commit is
retried with backoff, holding the batch (and the PUBACKs) until it works.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from gateway import metrics
from gateway.source import Deferred
from gateway.store import Point, Store

log = logging.getLogger("homeguard.gateway.lane")
BATCH = 500
LOG_EVERY_S = 60.0
QUEUE_FULL = "queue_full"

T = TypeVar("T")


class Lane(Generic[T]):
    """Queue + writer thread; subclasses say how a batch is committed."""

    name = "lane"

    def __init__(self, queue_max: int = 0) -> None:
        self.queue: queue.Queue[tuple[T, Deferred]] = queue.Queue(queue_max)
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, flush_s: float = 5.0) -> None:
        """Commit what is queued (up to flush_s), then stop."""
        self.stopping.set()
        if self._thread.is_alive():
            self._thread.join(flush_s)

    def commit(self, items: list[T]) -> list[str]:
        """Commit the items in one transaction; one outcome per item."""
        raise NotImplementedError

    def _take(self) -> list[tuple[T, Deferred]]:
        try:
            batch = [self.queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(batch) < BATCH:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                if self.stopping.is_set():
                    return
                continue
            outcomes = self._commit(batch)
            if outcomes is None:
                return
            for (_, deferred), outcome in zip(batch, outcomes, strict=True):
                deferred.outcome = outcome
                try:
                    deferred.done()  # the PUBACK
                except Exception:  # noqa: BLE001 - committed; the broker may send it again
                    log.exception("PUBACK after the %s commit failed", self.name)

    def _commit(self, batch: list[tuple[T, Deferred]]) -> list[str] | None:
        delay = 0.1
        while True:
            try:
                return self.commit([item for item, _ in batch])
            except Exception:  # noqa: BLE001 - keep the batch; the broker still has it
                log.exception("%s commit failed items=%d; retrying in %.1fs",
                              self.name, len(batch), delay)
                if self.stopping.wait(delay):
                    return None  # no PUBACK: redelivered on the next start
                delay = min(delay * 2, 10.0)


class EventLane(Lane[T]):
    """Events in arrival order, committed by `commit_fn` (the pipeline's)."""

    name = "event-lane"

    def __init__(self, commit_fn: Callable[[list[T]], list[str]]) -> None:
        super().__init__(0)
        self.commit_fn = commit_fn

    def put(self, item: T) -> Deferred:
        deferred = Deferred("queued")
        self.queue.put_nowait((item, deferred))
        return deferred

    def commit(self, items: list[T]) -> list[str]:
        return self.commit_fn(items)


class TelemetryLane(Lane[Point]):
    name = "telemetry-lane"

    def __init__(self, store: Store, queue_max: int,
                 on_written: Callable[[], None] = lambda: None) -> None:
        super().__init__(queue_max)
        self.store = store
        self.on_written = on_written
        self.shed = 0
        self._unrecorded = 0  # shed since the last commit, not yet in the store's counter
        self._shed_lock = threading.Lock()
        self._logged = -LOG_EVERY_S

    def put(self, point: Point, outcome: str) -> Deferred:
        """Queue a point; the returned Deferred is done once it is committed (or shed)."""
        deferred = Deferred(outcome)
        try:
            self.queue.put_nowait((point, deferred))
        except queue.Full:
            self._shed(point)
            deferred.done()
        metrics.LANE_DEPTH.set(self.queue.qsize())
        return deferred

    def commit(self, items: list[Point]) -> list[str]:
        with self._shed_lock:
            shed, self._unrecorded = self._unrecorded, 0
        try:
            # the shed count is kept durably with the points, for reconciliation
            self.store.insert_points(items, shed=shed)
        except BaseException:
            with self._shed_lock:
                self._unrecorded += shed
            raise
        metrics.PERSISTED.labels("telemetry").inc(len(items))
        metrics.LANE_DEPTH.set(self.queue.qsize())
        self.on_written()
        return ["telemetry"] * len(items)

    def _shed(self, point: Point) -> None:
        self.shed += 1
        with self._shed_lock:
            self._unrecorded += 1
        metrics.SHED.labels("telemetry", QUEUE_FULL).inc()
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY_S:
            self._logged = now
            log.warning("shed telemetry reason=%s device=%s seq=%d queued=%d total=%d",
                        QUEUE_FULL, point.device, point.seq, self.queue.qsize(), self.shed)
