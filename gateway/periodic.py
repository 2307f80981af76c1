"""A background thread that does one round of work every so often.

Subclasses set `name` and implement `once()` (return True when there is
more to do at once, e.g. a full page was handled). A failing round is
counted in hg_gateway_sink_failures_total{sink=<name>}, logged once per
streak of failures, and retried after a backoff that starts at
`backoff_min_s` and doubles up to `backoff_max_s`; the thread never dies.
"""

from __future__ import annotations

import logging
import threading

from gateway import metrics

log = logging.getLogger("homeguard.gateway")


class Periodic:
    name = "periodic"

    def __init__(self, every_s: float, backoff_min_s: float = 1.0,
                 backoff_max_s: float = 60.0) -> None:
        self.every_s = every_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.stopping = threading.Event()
        self.failing = False
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def once(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources once the thread has stopped."""

    def start(self) -> None:
        self._thread.start()

    def stop(self, join_s: float = 10.0) -> None:
        self.stopping.set()
        if self._thread.is_alive():
            self._thread.join(join_s)
        self.close()

    def _run(self) -> None:
        backoff = self.backoff_min_s
        while not self.stopping.is_set():
            try:
                more = self.once()
            except Exception as exc:  # noqa: BLE001 - the thread must never die
                metrics.FAILED.labels(self.name).inc()
                if not self.failing:
                    log.warning("%s failed error=%r retry_in=%.1fs", self.name,
                                f"{type(exc).__name__}: {exc}", backoff)
                self.failing = True
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            if self.failing:
                log.info("%s works again", self.name)
            self.failing = False
            backoff = self.backoff_min_s
            if not more:
                self.stopping.wait(self.every_s)
