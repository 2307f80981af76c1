"""The one background-thread base of the gateway: sinks, lanes, key sync,
feedback relay, retention and supervision are all a Worker with its own
`once()` (the ones beside the lanes are built from one table:
gateway/workers.py).

A Worker runs rounds of work on its thread. After a round that says there is
more to do it goes again at once (after `linger_s`, so under load one round
carries many items); after an idle round it waits `idle_s` or until woken
(`wake()`). A round that raises is counted in
hg_gateway_sink_failures_total{sink=<name>}, reported through `failed()`
(by default logged once per streak of failures) and tried again after a
backoff that starts at `backoff_min_s` and doubles up to `backoff_max_s`;
the thread never dies. `stop()` lets a Worker with `flush_on_stop` finish
what is at hand (rounds go on while they report more) before it returns.
"""

from __future__ import annotations

import logging
import threading

from gateway import metrics

log = logging.getLogger("homeguard.gateway")


class Worker:
    name = "worker"
    idle_s = 1.0  # wait this long after an idle round (unless woken)
    linger_s = 0.0  # wait this long after a busy round before the next
    flush_on_stop = False  # on stop: keep going while rounds report more

    def __init__(self, backoff_min_s: float = 1.0, backoff_max_s: float = 60.0) -> None:
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.wakeup = threading.Event()
        self.stopping = threading.Event()
        self.failing = False  # the last round failed (for /health)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    # --- what a worker does ------------------------------------------------------

    def once(self) -> bool:
        """One round of work; True when there is more to do at once."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Run first on the worker's own thread (e.g. per-thread settings)."""

    def failed(self, exc: Exception, backoff: float) -> None:
        """A round failed; by default logged once per streak."""
        if not self.failing:
            log.warning("%s failed error=%r retry_in=%.1fs", self.name,
                        f"{type(exc).__name__}: {exc}", backoff)

    def recovered(self) -> None:
        log.info("%s works again", self.name)

    def idle(self) -> None:
        """Wait after an idle round: idle_s, or until wake()."""
        self.wakeup.wait(self.idle_s)

    def close(self) -> None:
        """Release resources once the thread has stopped."""

    # --- the thread -------------------------------------------------------------

    def wake(self) -> None:
        self.wakeup.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, join_s: float = 10.0) -> None:
        self.stopping.set()
        self.wake()
        if self._thread.is_alive():
            self._thread.join(join_s)
        self.close()

    def _run(self) -> None:
        self.prepare()
        backoff = self.backoff_min_s
        while True:
            self.wakeup.clear()  # before the round: what arrives during it wakes the next
            try:
                more = self.once()
            except Exception as exc:  # noqa: BLE001 - the thread must never die
                metrics.FAILED.labels(self.name).inc()
                self.failed(exc, backoff)
                self.failing = True
                if self.stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            if self.failing:
                self.failing = False
                self.recovered()
            backoff = self.backoff_min_s
            if self.stopping.is_set() and not (more and self.flush_on_stop):
                return
            if not more:
                self.idle()
            elif self.linger_s and not self.stopping.is_set():
                self.stopping.wait(self.linger_s)
