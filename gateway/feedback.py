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
from collections.abc import Callable

import httpx

from gateway import metrics
from gateway.config import CentreSection
from gateway.worker import Worker

log = logging.getLogger("homeguard.gateway.feedback")
LIMIT = 200


class FeedbackRelay(Worker):
    name = "feedback"

    def __init__(self, cfg: CentreSection, gateway_id: str,
                 ack: Callable[[str, int, str], bool]) -> None:
        super().__init__(cfg.backoff_min_s, cfg.backoff_max_s)
        self.idle_s = cfg.feedback_poll_s
        self.cfg = cfg
        self.gateway_id = gateway_id
        self.ack = ack
        self.base = cfg.url.rstrip("/") + "/api/v1/feedback"
        self.http = httpx.Client(timeout=cfg.timeout_s,
                                 headers={"Authorization": f"Bearer {cfg.token}"})

    def close(self) -> None:
        self.http.close()

    def once(self) -> bool:
        return self.relay_once() >= LIMIT  # a full page: more may be waiting

    def relay_once(self) -> int:
        """Relay one page of pending rows; returns how many."""
        r = self.http.get(self.base, params={"gateway": self.gateway_id, "pending": "true",
                                             "limit": LIMIT})
        r.raise_for_status()
        rows = r.json()
        if not rows:
            return 0
        for row in rows:
            if row["seq"] < 1:  # the gateway's own events: nothing the device sent
                log.warning("feedback device=%s seq=%d state=%s not sent: not a seq of the "
                            "device's", row["device"], row["seq"], row["type"])
            elif self.ack(row["device"], row["seq"], row["type"]):
                metrics.DELIVERED.labels("feedback").inc()
                log.info("feedback device=%s seq=%d state=%s", row["device"], row["seq"],
                         row["type"])
            else:
                log.warning("feedback device=%s seq=%d state=%s not sent: no key for the "
                            "device in the registry", row["device"], row["seq"], row["type"])
        done = self.http.post(self.base + "/delivered", json={"ids": [x["id"] for x in rows]})
        done.raise_for_status()
        return len(rows)
