"""A sink is a Worker (gateway/worker.py) that delivers from the store.

A sink subclasses SinkWorker and provides deliver_once() (deliver the next
batch from the store; return how many items it moved, raise on failure) and
log_failure(). New items wake it at once (`wakeup.set()`); otherwise it
polls the store every POLL_S seconds. After a round that moved something it
waits LINGER_S (20 ms) before the next, so under load one request carries
many events instead of one each (a lone alarm never waits: the round before
it sent nothing). On stop it delivers what it can before returning.
"""

from __future__ import annotations

from gateway.store import PointBatch, Store
from gateway.worker import Worker

POLL_S = 1.0
LINGER_S = 0.02


class SinkWorker(Worker):
    """A Worker over the store; `name` labels its metrics."""

    name = "sink"
    idle_s = POLL_S
    linger_s = LINGER_S
    flush_on_stop = True

    def __init__(self, store: Store, backoff_min_s: float, backoff_max_s: float) -> None:
        super().__init__(backoff_min_s, backoff_max_s)
        self.store = store

    def deliver_once(self) -> int:
        raise NotImplementedError

    def log_failure(self, exc: Exception, backoff: float) -> None:
        raise NotImplementedError

    def offer(self, batch: PointBatch) -> None:
        """Points the telemetry lane has just committed (to a `takes = "points"`
        sink). By default a wake-up: the sink reads them from the store."""
        self.wake()

    def backlog(self) -> tuple[int, int | None]:
        """(items not yet delivered, gateway time of the oldest) for /health."""
        raise NotImplementedError

    def prepare(self) -> None:
        self.store.relax()  # delivery marks are idempotent to repeat: no fsync

    def once(self) -> bool:
        return self.deliver_once() > 0

    def failed(self, exc: Exception, backoff: float) -> None:
        self.log_failure(exc, backoff)

    def recovered(self) -> None:
        pass  # a sink's next delivery says so in its own log
