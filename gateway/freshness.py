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

A session can also lag while the gateway is connected: after a restart the
backlog drains for longer than the window, and messages sent after the
subscriptions were granted wait behind it; an overloaded gateway falls
behind its queue. Then every device's messages arrive about equally late.
`observe` keeps, per session and second, the least latenesses seen (one per
device, three kept); a message is explained when it is no later than what at least two
OTHER devices show on the same session in the last QUEUE_S seconds, plus
the window. One
device with a slow clock stands out against the rest and is refused as
before; a lone device is judged by the away periods only.

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
QUEUE_S = 10  # seconds of other devices' lateness that show a session's queue delay
EVIDENCE = 2  # other devices needed to show it


class Lag:
    """Per second, the least latenesses seen, one per device, EVIDENCE + 1 kept."""

    def __init__(self) -> None:
        self.seconds: deque[tuple[int, list[tuple[int, str]]]] = deque(maxlen=QUEUE_S + 1)

    def observe(self, device: str, late_ms: int, now_ms: int) -> None:
        second = now_ms // 1000
        if not self.seconds or self.seconds[-1][0] != second:
            self.seconds.append((second, []))
        least = self.seconds[-1][1]
        for i, (ms, dev) in enumerate(least):
            if dev == device:
                if late_ms < ms:
                    least[i] = (late_ms, device)
                    least.sort()
                return
        least.append((late_ms, device))
        least.sort()
        del least[EVIDENCE + 1:]  # enough that, the asking device left out, EVIDENCE remain

    def others(self, device: str, now_ms: int) -> int | None:
        """The least lateness OTHER devices showed lately, when at least
        EVIDENCE of them did (None: no evidence; two devices sharing one
        wrong time server do not vouch for each other)."""
        since = now_ms // 1000 - QUEUE_S
        seen = [(ms, dev) for second, least in self.seconds if second >= since
                for ms, dev in least if dev != device]
        if len({dev for _, dev in seen}) < EVIDENCE:
            return None
        return min(ms for ms, _ in seen)


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
        self.lag: dict[str, Lag] = {s: Lag() for s in sessions}

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

    def observe(self, session: str, device: str, sent_ms: int, received_ms: int) -> None:
        """A message of `session` from `device`, sent and received then."""
        lag = self.lag.get(session)
        if lag is not None:
            with self._lock:
                lag.observe(device, received_ms - sent_ms, received_ms)

    def explains(self, sent_ms: int, received_ms: int, behind_ms: int,
                 session: str = "", device: str = "") -> bool:
        """True when a message sent (by the device's clock) at sent_ms and
        received at received_ms may have waited in the broker's queue: it was
        sent while the gateway was away, or other devices' messages on the
        same session arrive as late (the session's queue lags)."""
        if received_ms - sent_ms > self.backlog_max_ms:
            return False
        with self._lock:
            periods = list(self.periods)
            if self.since is not None:
                periods.append((self.since, received_ms))
            lag = self.lag.get(session)
            queue = lag.others(device, received_ms) if lag is not None else None
        if queue is not None and received_ms - sent_ms <= queue + behind_ms:
            return True
        return any(start - behind_ms <= sent_ms <= end for start, end in periods)
