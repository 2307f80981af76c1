"""The telemetry lane: telemetry is committed in batches by its own thread,
so a burst of it never delays an alarm (alarms are committed one by one on
the source's thread and never wait behind this queue).

The source hands each verified telemetry message over as a Point with a
Deferred PUBACK; the writer commits up to BATCH points in one transaction
(store.insert_points) and then releases their PUBACKs, so a gateway killed
before the commit gets the messages again from the broker. When the queue
holds `queue_max` points (sustained overload), a new point is shed: counted
in hg_gateway_shed_total{lane="telemetry", reason="queue_full"}, logged at
most once a minute, and PUBACKed so the broker does not send it again.
Alarms have no such queue and are never shed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from gateway import metrics
from gateway.source import Deferred
from gateway.store import Point, Store

log = logging.getLogger("homeguard.gateway.lane")
BATCH = 500
LOG_EVERY_S = 60.0
QUEUE_FULL = "queue_full"


class TelemetryLane:
    def __init__(self, store: Store, queue_max: int,
                 on_written: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.on_written = on_written
        self.queue: queue.Queue[tuple[Point, Deferred]] = queue.Queue(queue_max)
        self.stopping = threading.Event()
        self.shed = 0
        self._logged = -LOG_EVERY_S
        self._thread = threading.Thread(target=self._run, name="telemetry-lane", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, flush_s: float = 5.0) -> None:
        """Commit what is queued (up to flush_s), then stop."""
        self.stopping.set()
        self._thread.join(flush_s)

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

    def _shed(self, point: Point) -> None:
        self.shed += 1
        metrics.SHED.labels("telemetry", QUEUE_FULL).inc()
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY_S:
            self._logged = now
            log.warning("shed telemetry reason=%s device=%s seq=%d queued=%d total=%d",
                        QUEUE_FULL, point.device, point.seq, self.queue.qsize(), self.shed)

    def _take(self) -> list[tuple[Point, Deferred]]:
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
            self._commit(batch)

    def _commit(self, batch: list[tuple[Point, Deferred]]) -> None:
        delay = 0.1
        while True:
            try:
                self.store.insert_points([p for p, _ in batch])
                break
            except Exception:  # noqa: BLE001 - keep the batch; the broker still has it
                log.exception("telemetry commit failed points=%d; retrying in %.1fs",
                              len(batch), delay)
                if self.stopping.wait(delay):
                    return  # no PUBACK: redelivered on the next start
                delay = min(delay * 2, 10.0)
        metrics.PERSISTED.labels("telemetry").inc(len(batch))
        metrics.LANE_DEPTH.set(self.queue.qsize())
        for _, deferred in batch:
            try:
                deferred.done()  # the PUBACK
            except Exception:  # noqa: BLE001 - committed; the broker may send it again
                log.exception("PUBACK after the telemetry commit failed")
        self.on_written()
