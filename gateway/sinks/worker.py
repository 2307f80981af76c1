"""One delivery loop for every sink: read the store, deliver, back off on failure.

A sink subclasses SinkWorker and provides deliver_once() (deliver the next
batch from the store; return how many items it moved, raise on failure) and
log_failure(). The loop never dies on an error: it counts it, logs it, waits
a backoff that starts at backoff_min_s and doubles up to backoff_max_s, and
tries again from what the store still holds. New items wake it at once
(`wakeup.set()`); otherwise it polls the store every POLL_S seconds. After a
round that moved something it waits LINGER_S (20 ms) before the next, so
under load one request carries many events instead of one each.
"""

from __future__ import annotations

import threading

from gateway import metrics
from gateway.store import Store

POLL_S = 1.0
LINGER_S = 0.02


class SinkWorker:
    """The thread, wakeup and backoff of a sink; `name` labels its metrics."""

    name = "sink"

    def __init__(self, store: Store, backoff_min_s: float, backoff_max_s: float) -> None:
        self.store = store
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.wakeup = threading.Event()
        self.stopping = threading.Event()
        self.failing = False  # the last attempt failed (for /health)
        self._thread = threading.Thread(target=self.run, name=f"sink-{self.name}", daemon=True)

    def deliver_once(self) -> int:
        raise NotImplementedError

    def log_failure(self, exc: Exception, backoff: float) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the sink's client after its thread has stopped."""

    def start(self) -> None:
        self._thread.start()

    def stop(self, flush_s: float = 5.0) -> None:
        """Let one more delivery round run (up to flush_s), then stop."""
        self.stopping.set()
        self.wakeup.set()
        if self._thread.is_alive():
            self._thread.join(flush_s)
        self.close()

    def run(self) -> None:
        self.store.relax()  # delivery marks are idempotent to repeat: no fsync
        backoff = self.backoff_min_s
        while True:
            self.wakeup.clear()  # before reading the store: a later insert wakes us
            try:
                sent = self.deliver_once()
                backoff = self.backoff_min_s
                self.failing = False
            except Exception as exc:  # noqa: BLE001 - the sink thread must never die
                self.failing = True
                metrics.FAILED.labels(self.name).inc()
                self.log_failure(exc, backoff)
                if self.stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            if self.stopping.is_set() and sent == 0:
                return
            if sent == 0:
                self.wakeup.wait(POLL_S)
            elif not self.stopping.is_set():
                # events are flowing: let the next batch fill for a moment rather
                # than send one request per event (a lone alarm never waits: the
                # round before it sent nothing)
                self.stopping.wait(LINGER_S)
