"""Store retention: old rows go once every sink is done with them.

Every `[gateway] retention_check_s` the gateway deletes, in batches of at
most BATCH rows per table:

- events created more than `retention_days` ago whose every delivery is
  finished (an event still waiting for a sink is never deleted, however
  old), except the newest `dedup.window` seqs of each device, which the
  de-dup window is rebuilt from after a restart, and each device's latest
  supervision event, which supervision restarts from;
- telemetry points older than that which every time-series sink has
  written (with no time-series server the table is the embedded store and
  keeps `retention_days`), again except each device's newest window.

So pruning never weakens replay detection and never loses an undelivered
item. `retention_days = 0` keeps everything.
"""

from __future__ import annotations

import logging
import time

from gateway.store import SUPERVISION, Store
from gateway.worker import Worker

log = logging.getLogger("homeguard.gateway.retention")
BATCH = 10000
DAY_MS = 86_400_000

_OLD_EVENTS = """
WITH tops AS (SELECT device, max(seq) AS top FROM events WHERE kind != :sup GROUP BY device),
     sups AS (SELECT device, max(id) AS top FROM events WHERE kind = :sup GROUP BY device)
SELECT e.id FROM events e
  LEFT JOIN tops t ON t.device = e.device
  LEFT JOIN sups s ON s.device = e.device
 WHERE e.created_ms < :cut
   AND NOT EXISTS (SELECT 1 FROM deliveries d
                    WHERE d.event_id = e.id AND d.delivered_at IS NULL)
   AND CASE WHEN e.kind = :sup THEN e.id < s.top ELSE e.seq <= t.top - :window END
 LIMIT :limit
"""

_OLD_POINTS = """
WITH tops AS (SELECT device, max(seq) AS top FROM telemetry GROUP BY device)
SELECT p.id FROM telemetry p JOIN tops t ON t.device = p.device
 WHERE p.gateway_time_ms < :cut AND p.id <= :written AND p.seq <= t.top - :window
 LIMIT :limit
"""


def prune(store: Store, cutoff_ms: int, window: int, point_sinks: tuple[str, ...] = ()
          ) -> tuple[int, int]:
    """Delete one batch of old, finished rows; (events, points) deleted."""
    written = min((store.cursor(s) for s in point_sinks), default=2**62)
    with store.transaction() as db:
        ids = [(r[0],) for r in db.execute(_OLD_EVENTS, {
            "sup": SUPERVISION, "cut": cutoff_ms, "window": window, "limit": BATCH})]
        db.executemany("DELETE FROM deliveries WHERE event_id = ?", ids)
        db.executemany("DELETE FROM events WHERE id = ?", ids)
        points = [(r[0],) for r in db.execute(_OLD_POINTS, {
            "cut": cutoff_ms, "written": written, "window": window, "limit": BATCH})]
        db.executemany("DELETE FROM telemetry WHERE id = ?", points)
    return len(ids), len(points)


class Retention(Worker):
    """The pruning thread."""

    name = "retention"

    def __init__(self, store: Store, days: float, check_s: float, window: int,
                 point_sinks: tuple[str, ...]) -> None:
        super().__init__(backoff_min_s=check_s, backoff_max_s=check_s)
        self.idle_s = check_s
        self.store = store
        self.days = days
        self.window = window
        self.point_sinks = point_sinks

    def once(self) -> bool:
        self.run_once()
        return False

    def run_once(self) -> tuple[int, int]:
        """Prune until nothing old is left; totals deleted (events, points)."""
        cutoff = int(time.time() * 1000 - self.days * DAY_MS)
        total = [0, 0]
        while not self.stopping.is_set():
            events, points = prune(self.store, cutoff, self.window, self.point_sinks)
            total[0] += events
            total[1] += points
            if events < BATCH and points < BATCH:
                break
        if total != [0, 0]:
            log.info("retention deleted events=%d points=%d older_than_days=%s",
                     total[0], total[1], self.days)
        return total[0], total[1]
