"""Time that survives queues: when a late message is still fresh.

The clock window (`[verify] behind_ms`, 40 s) compares the device's clock
at sending (`ts + age`) with the gateway's receive time. A message that
waited in the broker's queue for this gateway's persistent session arrives
later than that by the time it waited, and the device cannot know: after a
gateway outage every queued timestamped message would look "behind".

The gateway knows when nobody consumed its session: from its last sign of
life before a (re)start, and from a lost connection, to the moment the
broker granted its subscriptions again. Those are the `Away` periods. A
message whose sending time lies in one of them (from `behind_ms` before it
began to when it ended) may have waited in the queue since: it is accepted
as *late* with its true device time, counted in hg_gateway_late_total,
instead of being refused as `clock_skew`. A message sent after the gateway
came back, or ahead of its clock, is judged by the window as before.

Security (docs/protocol.md *Time*): replays are stopped by the seq window,
not by the clock (a late message still needs a new seq and a valid
signature); what the window guards is the truth of event times. Only
messages sent while the gateway could not hear anything are given the
benefit of the doubt, at most `backlog_max_s` old (the broker's
persistent_client_expiration, after which it drops the queue anyway).
"""

from __future__ import annotations

import threading
from collections import deque

KEEP = 64  # past away periods remembered (each is two integers)


class Away:
    """Periods when one of this gateway's broker sessions was not being
    consumed. The gateway has two (events and telemetry, source.py); a period
    lasts from the moment the first session is lost until every one has its
    subscriptions again, so a message of either session that waited is
    explained (a little wider than each session's own periods, never
    narrower)."""

    def __init__(self, since_ms: int | None, backlog_max_ms: int,
                 sessions: tuple[str, ...] = ("",)) -> None:
        self.backlog_max_ms = backlog_max_ms
        self.periods: deque[tuple[int, int]] = deque(maxlen=KEEP)
        self.since: int | None = since_ms  # an open period: not subscribed yet
        self._away = set(sessions) if since_ms is not None else set()
        self._lock = threading.Lock()

    def left(self, now_ms: int, session: str = "") -> None:
        """A broker connection is lost (its session starts queueing)."""
        with self._lock:
            self._away.add(session)
            if self.since is None:
                self.since = now_ms

    def back(self, now_ms: int, session: str = "") -> None:
        """The broker granted a session's subscriptions: its queue is being delivered."""
        with self._lock:
            self._away.discard(session)
            if self.since is not None and not self._away:
                self.periods.append((self.since, now_ms))
                self.since = None

    def explains(self, sent_ms: int, received_ms: int, behind_ms: int) -> bool:
        """True when a message sent (by the device's clock) at sent_ms and
        received at received_ms may have waited in the broker's queue."""
        if received_ms - sent_ms > self.backlog_max_ms:
            return False
        with self._lock:
            periods = list(self.periods)
            if self.since is not None:
                periods.append((self.since, received_ms))
        return any(start - behind_ms <= sent_ms <= end for start, end in periods)
