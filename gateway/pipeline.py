r"""The gateway pipeline for one received message:

    verify -> timestamp -> event lane: dedup -> store (group commit) -> ack `stored`
                       \-> telemetry lane: dedup -> batched commit (lane.py)

handle() never raises for a bad message: it returns the outcome, counts it,
and the caller acknowledges the broker's delivery afterwards. A store
failure propagates (the source retries the message, unacknowledged); an
unexpected error before the store returns HOLD (not acknowledged, the broker
redelivers it on the next connect) so one message cannot stall the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from gateway import dedup, metrics
from gateway.ack import Acker
from gateway.config import Config
from gateway.freshness import Away
from gateway.lane import EventLane, TelemetryLane
from gateway.registry import Registry
from gateway.source import HOLD, Deferred
from gateway.store import Event, Point, Store
from gateway.timestamp import stamp
from gateway.verify import Rejections, verify
from hg import protocol

log = logging.getLogger("homeguard.gateway")

STORED = "stored"
DUPLICATE = dedup.DUPLICATE
CONFLICT = dedup.CONFLICT
TELEMETRY = "telemetry"
# a copy the broker keeps and hands over again at every (re)subscription:
# a stale snapshot, not a message from the device (docs/protocol.md)
RETAINED = "retained"
# kinds whose arrival the device waits for (flash outbox entries)
ACKED_KINDS = frozenset({"alarm", "restore", "cancel", "test", "fault"})


class Pipeline:
    def __init__(self, cfg: Config, store: Store, registry: Registry, acker: Acker,
                 on_stored: Callable[[], None] = lambda: None,
                 sinks: tuple[str, ...] = (), lane: TelemetryLane | None = None,
                 on_seen: Callable[[Event], None] = lambda e: None,
                 event_lane: bool = False,
                 on_conflict: Callable[[str, int, int], None] = lambda d, s, hi: None,
                 away: Away | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.registry = registry
        self.acker = acker
        self.on_stored = on_stored
        self.sinks = sinks  # names whose delivery a duplicate's `delivered` ack repeats
        self.lane = lane  # None: telemetry is committed on the caller's thread
        self.on_seen = on_seen  # every verified message, new or duplicate (supervision)
        self.on_conflict = on_conflict  # (device, seq, highest): a reused seq (a device fault)
        self.away = away  # when the broker session went unconsumed (None: never late)
        self.rejections = Rejections()
        self.dedup = dedup_backend(cfg, store)
        self._lock = threading.Lock()
        # events committed in batches on their own thread (None: on the caller's)
        self.events: EventLane[tuple[Event, str]] | None = (
            EventLane(self.commit_events) if event_lane else None)

    def handle(self, topic: str, payload: bytes, received_ms: int,
               retained: bool = False) -> str | Deferred:
        leaf = topic.rsplit("/", 1)[-1]
        metrics.RECEIVED_BY_LEAF[leaf if leaf in protocol.UPLINK else "other"].inc()
        if retained:
            # the live copy came when it was published (an established
            # subscription gets it with the flag clear): this one is the
            # broker's snapshot, sent again at every subscribe. Ignored and
            # counted; never NAKed, whatever its age
            self.rejections.record(RETAINED, topic, "retained copy ignored")
            return RETAINED
        try:
            try:
                event = self._check(topic, leaf, payload, received_ms)
            except protocol.Reject as exc:
                late = self._late(exc, topic, leaf, payload, received_ms)
                if late is None:
                    raise
                event = late
        except protocol.Reject as exc:
            self.rejections.record(exc.reason, topic, exc.detail)
            if exc.reason == protocol.R_SKEW:
                self._nak_skew(payload)
            return exc.reason
        except Exception:  # noqa: BLE001 - a gateway bug must not stall every message
            # not a verdict on the message: neither drop it nor retry it here
            # (it would fail again and hold up the ones behind it); the broker
            # redelivers it on the next connect, perhaps to a fixed gateway
            metrics.HELD.inc()
            log.exception("held topic=%s: unexpected error before the store; not "
                          "acknowledged, redelivered on reconnect", topic)
            return HOLD
        if event.kind == "telemetry":
            return self._telemetry(event, topic)
        return self._store(event, topic)

    def _check(self, topic: str, leaf: str, payload: bytes, received_ms: int,
               behind: int | None = None) -> Event:
        """verify -> timestamp: the Event, or Reject."""
        msg = verify(topic, payload, self.registry.key_of, received_ms,
                     self.cfg.verify.behind_ms if behind is None else behind,
                     self.cfg.verify.ahead_ms)
        if leaf not in protocol.UPLINK:  # after verify: its order decides the reason
            raise protocol.Reject(protocol.R_TOPIC, "not an uplink topic: " + topic)
        return stamp(msg, received_ms)

    def _late(self, exc: protocol.Reject, topic: str, leaf: str, payload: bytes,
              received_ms: int) -> Event | None:
        """The Event of a message refused as clock_skew that was sent while the
        gateway was away (it waited in the broker's queue: freshness.py); None
        when it is really off the clock."""
        if exc.reason != protocol.R_SKEW or self.away is None:
            return None
        msg = protocol.parse(payload)[0]
        sent = msg["ts"] + msg["age"]
        behind = self.cfg.verify.behind_ms
        if sent > received_ms or not self.away.explains(sent, received_ms, behind):
            return None
        # every other check again, with the window widened to this message's wait
        event = self._check(topic, leaf, payload, received_ms, behind=received_ms - sent)
        metrics.LATE.labels(leaf).inc()
        return event

    def _telemetry(self, event: Event, topic: str) -> str | Deferred:
        """dedup -> the telemetry lane; the PUBACK waits for its commit."""
        point = to_point(event)
        with self._lock:
            # a queued point is remembered before its commit (one round trip with
            # Redis): it is committed, or counted as shed, unless the process
            # dies, and then the window is rebuilt from the store
            verdict = (self.dedup.check_remember(event.device, event.seq) if self.lane
                       else self.dedup.check(event.device, event.seq))
            if verdict == dedup.DUPLICATE:
                verdict = self._same_or_conflict(event)
            if verdict == dedup.DUPLICATE:
                metrics.DUPLICATES.inc()
                self.on_seen(event)  # still a sign of life (supervision)
                return DUPLICATE
            if verdict == dedup.NEW and self.lane is None:
                self.store.insert_points([point])
                metrics.PERSISTED_TELEMETRY.inc()
                self.dedup.remember(event.device, event.seq)
        if verdict != dedup.NEW:
            self._refuse(event, topic, verdict)
            return verdict
        metrics.TELEMETRY.inc()
        self.on_seen(event)
        return TELEMETRY if self.lane is None else self.lane.put(point, TELEMETRY)

    def _store(self, event: Event, topic: str) -> str | Deferred:
        """dedup -> store (commit) -> ack; on the event lane when there is one."""
        if self.events is not None:
            return self.events.put((event, topic))
        return self.commit_events([(event, topic)])[0]

    def commit_events(self, items: list[tuple[Event, str]]) -> list[str]:
        """Commit a batch of events in one transaction, then count, log and
        ack each; the outcome per event (stored, duplicate, seq_conflict or
        replay)."""
        fresh: list[tuple[Event, Point | None]] = []
        outcomes: list[str] = []
        with self._lock:  # short: the telemetry path on the source's thread takes it too
            verdicts = [self.dedup.check(e.device, e.seq) for e, _ in items]
        for (event, _), verdict in zip(items, verdicts, strict=True):
            # the store's UNIQUE(device, seq) has the last word on NEW
            outcomes.append(STORED if verdict == dedup.NEW else verdict)
            if verdict == dedup.NEW:
                fresh.append((event, to_point(event) if event.kind == "heartbeat" else None))
        # the commit (an fsync) runs without the lock, so telemetry keeps flowing;
        # this lane is the only writer of events, so nothing slips in between
        new = iter(self.store.insert_many(fresh)) if fresh else iter(())
        for i, (event, _) in enumerate(items):
            if outcomes[i] == STORED and not next(new):
                outcomes[i] = DUPLICATE  # taken by a point, or earlier in this batch
            if outcomes[i] == DUPLICATE:
                outcomes[i] = self._same_or_conflict(event)
        with self._lock:
            for (event, _), outcome in zip(items, outcomes, strict=True):
                if outcome in (STORED, DUPLICATE):
                    self.dedup.remember(event.device, event.seq, self._content(event))
        for (event, topic), outcome in zip(items, outcomes, strict=True):
            try:
                if outcome in (dedup.REPLAY, CONFLICT):
                    self._refuse(event, topic, outcome)
                else:
                    self._after_commit(event, outcome == STORED)
            except Exception:  # noqa: BLE001 - committed: the device resends if an ack is lost
                log.exception("after storing device=%s seq=%d", event.device, event.seq)
        return outcomes

    @staticmethod
    def _content(event: Event) -> str | None:
        """The digest a shared de-dup state keeps: for events a device waits for."""
        if event.kind not in ACKED_KINDS:
            return None
        return dedup.digest(event.kind, event.type, event.device_time_ms, event.data)

    def _same_or_conflict(self, event: Event) -> str:
        """DUPLICATE when what holds the identity is this very message, CONFLICT
        when it is other content under a reused seq."""
        stored = self.store.content_of(event.device, event.seq)
        if stored is not None:
            kind, typ, ts, data = stored
            same = (kind, typ, ts, data) == (event.kind, event.type, event.device_time_ms,
                                             event.data)
            if not same and event.kind not in ACKED_KINDS and kind == event.kind:
                # a point's row keeps neither its type nor its ts
                same = data == event.data
            return DUPLICATE if same else CONFLICT
        if not self.dedup.shared:
            return DUPLICATE  # remembered but no longer stored: nothing to tell apart
        content = self.dedup.content(event.device, event.seq)
        if content is None:
            # every event a device waits for is remembered with its digest, so
            # the seq went to a point or heartbeat another gateway stored; for a
            # point or heartbeat nothing is known (documented in docs/gateway.md)
            return CONFLICT if event.kind in ACKED_KINDS else DUPLICATE
        return DUPLICATE if content == self._content(event) else CONFLICT

    def _refuse(self, event: Event, topic: str, reason: str) -> None:
        """Count and log a refused identity, and tell the device (signed `nak`
        with the gateway's highest seq for it, so it can move past it)."""
        hi = self.dedup.highest(event.device)
        self.rejections.record(reason, topic, f"seq {event.seq} highest {hi}")
        self.acker.send(event.device, event.seq, "nak", {"reason": reason, "hi": hi})
        if reason == CONFLICT:
            self.on_conflict(event.device, event.seq, hi)

    def _after_commit(self, event: Event, new: bool) -> None:
        if new:
            metrics.PERSISTED.labels(event.kind).inc()
            log.info("stored device=%s seq=%d kind=%s type=%s event_time_ms=%d skew_ms=%s",
                     event.device, event.seq, event.kind, event.type, event.event_time_ms,
                     event.skew_ms)
        else:
            metrics.DUPLICATES.inc()
            log.info("duplicate device=%s seq=%d acked again", event.device, event.seq)
        if event.kind in ACKED_KINDS:
            # `stored` is queued before the sinks are woken, so it always reaches
            # the device ahead of their `delivered`
            self.acker.send(event.device, event.seq, "stored")
            if not new and self._delivered(event.device, event.seq):
                # the device resent because an ack was lost: tell it the whole story
                # again, so its indicator does not fall back from "centre received"
                self.acker.send(event.device, event.seq, "delivered")
        if new:
            self.on_stored()
        # a duplicate is still a sign of life: in a share group another gateway
        # may have stored the heartbeat this gateway's supervision needs
        self.on_seen(event)

    def _delivered(self, device: str, seq: int) -> bool:
        return bool(self.sinks) and all(
            self.store.delivered(s, device, seq) for s in self.sinks)

    def _nak_skew(self, payload: bytes) -> None:
        """Tell a correctly signed device its clock is off (with our time)."""
        try:
            msg, _, _ = protocol.parse(payload)
        except protocol.Reject:
            return
        self.acker.send(msg["dev"], msg["seq"], "nak", {"reason": protocol.R_SKEW})


def to_point(e: Event) -> Point:
    return Point(device=e.device, seq=e.seq, kind=e.kind, event_time_ms=e.event_time_ms,
                 gateway_time_ms=e.gateway_time_ms, data=e.data)


def dedup_backend(cfg: Config, store: Store) -> dedup.Backend:
    """The configured de-dup state, filled with what the store holds."""
    stored = store.recent_seqs(cfg.dedup.window)
    if cfg.dedup.backend == "redis":
        from gateway.dedup_redis import RedisDedup
        contents = {(d, s): dedup.digest(k, t, ts, data) for d, s, k, t, ts, data
                    in store.recent_events(cfg.dedup.window, ACKED_KINDS)}
        return RedisDedup(cfg.dedup.redis_url, cfg.dedup.window,
                          ((d, s, contents.get((d, s))) for d, s in stored))
    return dedup.LocalDedup(cfg.dedup.window, stored)
