"""Centre feedback -> device: the operator's progress on an alarm.

The centre keeps one feedback row per workflow step a device should show
(acknowledged, dispatched, resolved; see dashboard/api/routes/feedback.py).
This thread fetches the rows for events this gateway delivered that no one
has relayed yet, sends each to its device as a signed `ack` (ref = the
alarm's seq), and reports them relayed. A gateway that dies between the two
sends them again after restart: the device shows the same state twice,
which changes nothing. Rows for devices this gateway has no key for are
reported relayed too, with a warning, so they do not block the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx

from gateway import metrics
from gateway.config import CentreSection

log = logging.getLogger("homeguard.gateway.feedback")
LIMIT = 200


class FeedbackRelay:
    def __init__(self, cfg: CentreSection, gateway_id: str,
                 ack: Callable[[str, int, str], bool]) -> None:
        self.cfg = cfg
        self.gateway_id = gateway_id
        self.ack = ack
        self.base = cfg.url.rstrip("/") + "/api/v1/feedback"
        self.http = httpx.Client(timeout=cfg.timeout_s,
                                 headers={"Authorization": f"Bearer {cfg.token}"})
        self.stopping = threading.Event()
        self.failing = False
        self._thread = threading.Thread(target=self._run, name="feedback", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread.is_alive():
            self._thread.join(self.cfg.timeout_s + 1)
        self.http.close()

    def _run(self) -> None:
        backoff = self.cfg.backoff_min_s
        while not self.stopping.is_set():
            try:
                relayed = self.relay_once()
            except Exception as exc:  # noqa: BLE001 - the thread must never die
                if not self.failing:
                    log.warning("feedback from the centre failed error=%r retry_in=%.1fs",
                                f"{type(exc).__name__}: {exc}", backoff)
                self.failing = True
                metrics.FAILED.labels("feedback").inc()
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, self.cfg.backoff_max_s)
                continue
            if self.failing:
                log.info("feedback from the centre works again")
            self.failing = False
            backoff = self.cfg.backoff_min_s
            if relayed < LIMIT:
                self.stopping.wait(self.cfg.feedback_poll_s)

    def relay_once(self) -> int:
        """Relay one page of pending rows; returns how many."""
        r = self.http.get(self.base, params={"gateway": self.gateway_id, "pending": "true",
                                             "limit": LIMIT})
        r.raise_for_status()
        rows = r.json()
        if not rows:
            return 0
        for row in rows:
            if self.ack(row["device"], row["seq"], row["type"]):
                metrics.DELIVERED.labels("feedback").inc()
                log.info("feedback device=%s seq=%d state=%s", row["device"], row["seq"],
                         row["type"])
            else:
                log.warning("feedback device=%s seq=%d state=%s not sent: no key for the "
                            "device in the registry", row["device"], row["seq"], row["type"])
        done = self.http.post(self.base + "/delivered", json={"ids": [x["id"] for x in rows]})
        done.raise_for_status()
        return len(rows)
