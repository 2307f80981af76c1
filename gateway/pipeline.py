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
TELEMETRY = "telemetry"
# kinds whose arrival the device waits for (flash outbox entries)
ACKED_KINDS = frozenset({"alarm", "restore", "cancel", "test", "fault"})


class Pipeline:
    def __init__(self, cfg: Config, store: Store, registry: Registry, acker: Acker,
                 on_stored: Callable[[], None] = lambda: None,
                 sinks: tuple[str, ...] = (), lane: TelemetryLane | None = None,
                 on_seen: Callable[[Event], None] = lambda e: None,
                 event_lane: bool = False) -> None:
        self.cfg = cfg
        self.store = store
        self.registry = registry
        self.acker = acker
        self.on_stored = on_stored
        self.sinks = sinks  # names whose delivery a duplicate's `delivered` ack repeats
        self.lane = lane  # None: telemetry is committed on the caller's thread
        self.on_seen = on_seen  # every verified message, new or duplicate (supervision)
        self.rejections = Rejections()
        self.dedup = dedup_backend(cfg, store)
        self._lock = threading.Lock()
        # events committed in batches on their own thread (None: on the caller's)
        self.events: EventLane[tuple[Event, str]] | None = (
            EventLane(self.commit_events) if event_lane else None)

    def handle(self, topic: str, payload: bytes, received_ms: int) -> str | Deferred:
        leaf = topic.rsplit("/", 1)[-1]
        metrics.RECEIVED_BY_LEAF[leaf if leaf in protocol.UPLINK else "other"].inc()
        try:
            event = self._check(topic, leaf, payload, received_ms)
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

    def _check(self, topic: str, leaf: str, payload: bytes, received_ms: int) -> Event:
        """verify -> timestamp: the Event, or Reject."""
        msg = verify(topic, payload, self.registry.key_of, received_ms,
                     self.cfg.verify.behind_ms, self.cfg.verify.ahead_ms)
        if leaf not in protocol.UPLINK:  # after verify: its order decides the reason
            raise protocol.Reject(protocol.R_TOPIC, "not an uplink topic: " + topic)
        return stamp(msg, received_ms)

    def _telemetry(self, event: Event, topic: str) -> str | Deferred:
        """dedup -> the telemetry lane; the PUBACK waits for its commit."""
        point = to_point(event)
        with self._lock:
            # a queued point is remembered before its commit (one round trip with
            # Redis): it is committed, or counted as shed, unless the process
            # dies, and then the window is rebuilt from the store
            verdict = (self.dedup.check_remember(event.device, event.seq) if self.lane
                       else self.dedup.check(event.device, event.seq))
            if verdict == dedup.REPLAY:
                self.rejections.record(dedup.REPLAY, topic, f"seq {event.seq}")
                return dedup.REPLAY
            if verdict == dedup.DUPLICATE:
                metrics.DUPLICATES.inc()
                self.on_seen(event)  # still a sign of life (supervision)
                return DUPLICATE
            if self.lane is None:
                self.store.insert_points([point])
                metrics.PERSISTED_TELEMETRY.inc()
                self.dedup.remember(event.device, event.seq)
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
        ack each; the outcome per event (stored, duplicate or replay)."""
        fresh: list[tuple[Event, Point | None]] = []
        outcomes: list[str] = []
        with self._lock:  # short: the telemetry path on the source's thread takes it too
            verdicts = [self.dedup.check(e.device, e.seq) for e, _ in items]
        for (event, topic), verdict in zip(items, verdicts, strict=True):
            if verdict == dedup.REPLAY:
                self.rejections.record(dedup.REPLAY, topic, f"seq {event.seq}")
                outcomes.append(dedup.REPLAY)
                continue
            # the store's UNIQUE(device, seq) has the last word on NEW
            outcomes.append(STORED if verdict == dedup.NEW else DUPLICATE)
            if verdict == dedup.NEW:
                fresh.append((event, to_point(event) if event.kind == "heartbeat" else None))
        # the commit (an fsync) runs without the lock, so telemetry keeps flowing;
        # this lane is the only writer of events, so nothing slips in between
        new = iter(self.store.insert_many(fresh)) if fresh else iter(())
        with self._lock:
            for i, (event, _) in enumerate(items):
                if outcomes[i] == STORED and not next(new):
                    outcomes[i] = DUPLICATE
                if outcomes[i] != dedup.REPLAY:
                    self.dedup.remember(event.device, event.seq)
        for (event, _), outcome in zip(items, outcomes, strict=True):
            if outcome == dedup.REPLAY:
                continue
            try:
                self._after_commit(event, outcome == STORED)
            except Exception:  # noqa: BLE001 - committed: the device resends if an ack is lost
                log.exception("after storing device=%s seq=%d", event.device, event.seq)
        return outcomes

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
        return RedisDedup(cfg.dedup.redis_url, cfg.dedup.window, stored)
    return dedup.LocalDedup(cfg.dedup.window, stored)
