r"""The gateway pipeline for one received message, stage by stage:

    FRONT (on the source's thread, one message at a time)
      retained   a broker's stale retained copy is dropped     -> `retained`
      verify     hg.protocol's checks 1-11 (fast path first);  -> a reason
                 a message past the clock window that waited in
                 the broker's queue is let through as late (freshness.py)
      timestamp  receive time, event time, skew                -> the Event
    COMMIT (by kind to a lane, lane.py, which commits in batches)
      dedup      identity (device, seq): new, duplicate, replay; a shared
                 state (Redis) is checked a batch at a time
      store      one transaction (one fsync) per batch; what the store did
                 not take, or a duplicate, is settled by content: the same
                 message, or a seq_conflict (same identity, other content)
      remember   the committed identities into the de-dup state (a shared
                 one in one round trip), only after the commit
      ack        `stored` to the device (or a signed `nak`), then the
                 sinks are woken; telemetry's PUBACKs follow its commit

The order is declared once, at the end of this module: FRONT (a Stage per
message: `process(pipeline, received) -> received`, or a drop with its
Outcome: raise Drop / protocol.Reject) and COMMIT (a BatchStage per batch
of events on the event lane: dedup, store, remember, ack, each over the
whole Batch); STAGES names them all in that order. Telemetry takes the same
de-dup check on its way to the telemetry lane (lane.py), which commits
points in batches and releases their PUBACKs (no ack to the device). Every
drop is counted and logged with its reason. handle() never raises for a bad
message: it returns the Outcome (or a Deferred that a lane completes), and
the source acknowledges the broker's delivery afterwards. A store failure
propagates (the source retries the message, unacknowledged); an unexpected
error before the store returns HELD (not acknowledged, the broker
redelivers it on the next connect) so one message cannot stall the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from gateway import dedup, metrics
from gateway.ack import Acker
from gateway.config import Config
from gateway.freshness import Away
from gateway.gaps import Gaps, Missing
from gateway.lane import EventLane, TelemetryLane
from gateway.outcome import Outcome
from gateway.registry import Registry
from gateway.source import Deferred
from gateway.store import Event, Point, Store
from gateway.timestamp import stamp
from gateway.verify import Rejections, verify
from hg import protocol

log = logging.getLogger("homeguard.gateway")

# the outcomes by their old names (callers and tests compare with these)
STORED = Outcome.STORED
DUPLICATE = Outcome.DUPLICATE
CONFLICT = Outcome.SEQ_CONFLICT
TELEMETRY = Outcome.TELEMETRY
RETAINED = Outcome.RETAINED
# kinds whose arrival the device waits for (flash outbox entries)
ACKED_KINDS = frozenset({"alarm", "restore", "cancel", "test", "fault"})
# the broker session each uplink leaf comes on (source.py), for freshness.Away
SESSION_OF = {leaf: "telemetry" if leaf == "telemetry" else "events"
              for leaf in protocol.UPLINK}


class Drop(protocol.Reject):
    """A front stage's verdict that the message goes no further."""


class Received:
    """One message on its way through the front stages."""

    __slots__ = ("topic", "leaf", "payload", "received_ms", "retained", "msg", "event")

    def __init__(self, topic: str, payload: bytes, received_ms: int, retained: bool) -> None:
        self.topic = topic
        self.leaf = topic.rsplit("/", 1)[-1]
        self.payload = payload
        self.received_ms = received_ms
        self.retained = retained
        self.msg: dict | None = None
        self.event: Event | None = None


class Stage(NamedTuple):
    """A front stage: the message further on, or raise Drop (an Outcome)."""

    name: str
    process: Callable[[Pipeline, Received], Received]


class Batch:
    """Events a lane commits together, on their way through the commit
    stages: each event's outcome so far, and the new ones to insert."""

    __slots__ = ("items", "outcomes", "fresh")

    def __init__(self, items: list[tuple[Event, str]]) -> None:
        self.items = items  # (event, topic)
        self.outcomes: list[Outcome] = []  # one per item once dedup has run
        self.fresh: list[tuple[Event, Point | None]] = []  # to insert (a heartbeat's point)


class BatchStage(NamedTuple):
    """A commit stage: runs over the whole batch (one round trip, one fsync)."""

    name: str
    run: Callable[[Pipeline, Batch], None]


class Pipeline:
    def __init__(self, cfg: Config, store: Store, registry: Registry, acker: Acker,
                 on_stored: Callable[[], None] = lambda: None,
                 sinks: tuple[str, ...] = (), lane: TelemetryLane | None = None,
                 on_seen: Callable[[Event], None] = lambda e: None,
                 event_lane: bool = False,
                 on_conflict: Callable[[str, int, int], None] = lambda d, s, hi: None,
                 away: Away | None = None,
                 on_missing: Callable[[list[Missing]], None] = lambda found: None) -> None:
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
        # seqs that never arrive (gaps.py); not in a share group, where each
        # gateway sees only part of a device's messages
        self.gaps: Gaps | None = None if self.dedup.shared else Gaps(
            self.dedup.highest, int(cfg.dedup.missing_grace_s * 1000))
        self.on_missing = on_missing  # runs counted missing: (the service reports them)
        self.missing: dict[str, int] = {}  # device -> seqs counted missing since start
        self._gaps_lock = threading.Lock()  # handle() runs on each session's thread
        self._gaps_checked_ms = 0
        # events committed in batches on their own thread (None: on the caller's)
        self.events: EventLane[tuple[Event, str]] | None = (
            EventLane(self.commit_events) if event_lane else None)
        # a shared state (Redis) is checked a batch of points at a time on the
        # lane, not a round trip per message on the source's thread
        self.screened = self.dedup.shared and lane is not None
        if lane is not None and self.screened:
            lane.screen = self.screen_points
            lane.settle = self.settle_points

    def handle(self, topic: str, payload: bytes, received_ms: int,
               retained: bool = False) -> Outcome | Deferred:
        m = Received(topic, payload, received_ms, retained)
        metrics.RECEIVED_BY_LEAF[m.leaf if m.leaf in protocol.UPLINK else "other"].inc()
        try:
            event = self.front(m)
        except protocol.Reject as exc:  # Drop included
            reason = Outcome(exc.reason)
            self.rejections.record(reason, topic, exc.detail)
            if reason is Outcome.CLOCK_SKEW:
                self._nak_skew(payload)
            return reason
        except Exception:  # noqa: BLE001 - a gateway bug must not stall every message
            # not a verdict on the message: neither drop it nor retry it here
            # (it would fail again and hold up the ones behind it); the broker
            # redelivers it on the next connect, perhaps to a fixed gateway
            metrics.HELD.inc()
            log.exception("held topic=%s: unexpected error before the store; not "
                          "acknowledged, redelivered on reconnect", topic)
            return Outcome.HELD
        if self.gaps is not None:
            self._gaps(event, received_ms)
        if event.kind == "telemetry":
            return self._telemetry(event, topic)
        return self._store(event, topic)

    def _gaps(self, event: Event, now_ms: int) -> None:
        """Note the seq; once a second, count the runs past their grace."""
        assert self.gaps is not None
        online = event.kind == "status" and event.type == "online"
        with self._gaps_lock:
            self.gaps.seen(event.device, event.seq, now_ms, online)
            if now_ms - self._gaps_checked_ms < 1000:
                return
            self._gaps_checked_ms = now_ms
            found = self.gaps.expire(now_ms)
            metrics.SEQ_PENDING.set(self.gaps.pending())
        for m in found:
            metrics.SEQ_MISSING.inc(m.count)
            self.missing[m.device] = self.missing.get(m.device, 0) + m.count
            log.warning("device %s: %d seq(s) never arrived verified (%d-%d): lost on the "
                        "way (broker queue full, device shedding, a link) or refused "
                        "(hg_gateway_rejected_total)", m.device, m.count, m.lo, m.hi)
        if found:
            self.on_missing(found)

    # --- the front stages -----------------------------------------------------

    def front(self, m: Received) -> Event:
        """Run the front stages: the Event, or protocol.Reject (Drop)."""
        for stage in FRONT:
            m = stage.process(self, m)
        assert m.event is not None
        return m.event

    def drop_retained(self, m: Received) -> Received:
        """The live copy came when it was published (an established
        subscription gets it with the flag clear): a copy with the retain
        flag is the broker's snapshot, sent again at every subscribe. Dropped
        and counted; never NAKed, whatever its age (docs/protocol.md)."""
        if m.retained:
            raise Drop(Outcome.RETAINED, "retained copy ignored")
        return m

    def verify(self, m: Received) -> Received:
        """hg.protocol's stateless checks, with the clock window widened for a
        message that waited in the broker's queue while the gateway was away."""
        try:
            m.msg = self._verify(m, self.cfg.verify.behind_ms)
        except protocol.Reject as exc:
            late = self._late(exc, m)
            if late is None:
                raise
            m.msg = self._verify(m, late)  # every other check again
            metrics.LATE.labels(m.leaf).inc()
        if self.away is not None and m.msg.get("ts") is not None:
            self.away.observe(SESSION_OF.get(m.leaf, ""), m.msg["dev"],
                              m.msg["ts"] + m.msg["age"], m.received_ms)
        if m.leaf not in protocol.UPLINK:  # after verify: its order decides the reason
            raise Drop(Outcome.TOPIC_MISMATCH, "not an uplink topic: " + m.topic)
        return m

    def timestamp(self, m: Received) -> Received:
        assert m.msg is not None
        m.event = stamp(m.msg, m.received_ms)
        return m

    def _verify(self, m: Received, behind_ms: int) -> dict:
        return verify(m.topic, m.payload, self.registry.key_of, m.received_ms, behind_ms,
                      self.cfg.verify.ahead_ms)

    def _late(self, exc: protocol.Reject, m: Received) -> int | None:
        """For a message refused as clock_skew that was sent while the gateway
        was away (it waited in the broker's queue: freshness.py), or that is a
        copy of what is stored, the window that admits it; None when it is
        really off the clock."""
        if exc.reason != protocol.R_SKEW:
            return None
        msg = protocol.parse(m.payload)[0]
        sent = msg["ts"] + msg["age"]
        if self.dedup.check(msg["dev"], msg["seq"]) == dedup.DUPLICATE:
            # a copy of what is stored (a redelivery, or a board resending from
            # flash after a reboot): not a clock to correct. A NAK would make
            # the device stamp it anew, see a seq_conflict and send the same
            # press again under a new seq: one alarm shown twice (chaos run).
            # Let it through: de-dup re-acks it, or names a real conflict.
            return max(m.received_ms - sent, 0)
        if self.away is None:
            return None
        # signed (the signature is checked before the clock): its lateness is
        # evidence of the session's queue delay for OTHER devices' messages
        self.away.observe(SESSION_OF.get(m.leaf, ""), msg["dev"], sent, m.received_ms)
        if sent > m.received_ms or not self.away.explains(
                sent, m.received_ms, self.cfg.verify.behind_ms,
                SESSION_OF.get(m.leaf, ""), msg["dev"]):
            return None
        return m.received_ms - sent

    # --- to the lanes ----------------------------------------------------------

    def _telemetry(self, event: Event, topic: str) -> Outcome | Deferred:
        """dedup -> the telemetry lane; the PUBACK waits for its commit."""
        if self.screened:
            assert self.lane is not None
            return self.lane.put(Screened.of(event, topic), TELEMETRY)
        point = to_point(event)
        with self._lock:
            # a queued point is remembered in the local state before its commit:
            # it is committed, or counted as shed, unless the process dies, and
            # then the window is rebuilt from the store
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
            refused = Outcome(verdict)
            self._refuse(event, topic, refused)
            return refused
        metrics.TELEMETRY.inc()
        self.on_seen(event)
        return TELEMETRY if self.lane is None else self.lane.put(point, TELEMETRY)

    def _store(self, event: Event, topic: str) -> Outcome | Deferred:
        """dedup -> store (commit) -> ack; on the event lane when there is one."""
        if self.events is not None:
            return self.events.put((event, topic))
        return self.commit_events([(event, topic)])[0]

    def commit_events(self, items: list[tuple[Event, str]]) -> list[Outcome]:
        """Run a batch of events through the COMMIT stages: one transaction,
        then each counted, logged and acked; the outcome per event (stored,
        duplicate, seq_conflict or replay). A store failure propagates before
        anything is remembered or acked: the lane retries the whole batch."""
        batch = Batch(items)
        for stage in COMMIT:
            stage.run(self, batch)
        return batch.outcomes

    # --- the commit stages (a batch of events, on the event lane) -------------

    def dedup_batch(self, b: Batch) -> None:
        """Each identity's verdict in the de-dup state, for the batch at once."""
        with self._lock:  # short: the telemetry path on the source's thread takes it too
            verdicts = self.dedup.check_many([(e.device, e.seq) for e, _ in b.items])
        for (event, _), verdict in zip(b.items, verdicts, strict=True):
            # the store's UNIQUE(device, seq) has the last word on NEW
            b.outcomes.append(STORED if verdict == dedup.NEW else Outcome(verdict))
            if verdict == dedup.NEW:
                b.fresh.append((event, to_point(event) if event.kind == "heartbeat" else None))

    def store_batch(self, b: Batch) -> None:
        """The new events in one transaction (one fsync); one the store did
        not take, or a duplicate verdict, is settled by content: the same
        message again, or other content under its identity (a conflict)."""
        # the commit (an fsync) runs without the lock, so telemetry keeps flowing;
        # this lane is the only writer of events, so nothing slips in between
        new = iter(self.store.insert_many(b.fresh)) if b.fresh else iter(())
        outcomes = b.outcomes
        for i, (event, _) in enumerate(b.items):
            if outcomes[i] == STORED and not next(new):
                outcomes[i] = DUPLICATE  # taken by a point, or earlier in this batch
            if outcomes[i] == DUPLICATE:
                outcomes[i] = self._same_or_conflict(event)

    def remember_batch(self, b: Batch) -> None:
        """What is committed goes into the de-dup state (only after the commit)."""
        with self._lock:
            self.dedup.remember_many([
                (event.device, event.seq, self._content(event))
                for (event, _), outcome in zip(b.items, b.outcomes, strict=True)
                if outcome in (STORED, DUPLICATE)])

    def ack_batch(self, b: Batch) -> None:
        """Count, log and answer each: `stored` (a duplicate: again), or a
        signed NAK for a refused identity; then the sinks are woken."""
        for (event, topic), outcome in zip(b.items, b.outcomes, strict=True):
            try:
                if outcome.refused:
                    self._refuse(event, topic, outcome)
                else:
                    self._after_commit(event, outcome == STORED)
            except Exception:  # noqa: BLE001 - committed: the device resends if an ack is lost
                log.exception("after storing device=%s seq=%d", event.device, event.seq)

    def screen_points(self, points: list[Point]) -> list[str]:
        """The telemetry lane's de-dup stage with a shared state: the batch's
        verdicts in one round trip before its commit; TELEMETRY for a point to
        commit, else DUPLICATE, REPLAY or CONFLICT (not stored; settle_points
        counts and answers them)."""
        with self._lock:
            verdicts = self.dedup.check_many([(p.device, p.seq) for p in points])
        seen: set[tuple[str, int]] = set()
        outcomes: list[str] = []
        for point, verdict in zip(points, verdicts, strict=True):
            if verdict == dedup.NEW and (point.device, point.seq) in seen:
                verdict = dedup.DUPLICATE  # twice in this batch (a redelivery)
            seen.add((point.device, point.seq))
            if verdict == dedup.DUPLICATE:
                assert isinstance(point, Screened)
                verdict = self._same_or_conflict(point.event)
            outcomes.append(TELEMETRY if verdict == dedup.NEW else Outcome(verdict))
        return outcomes

    def settle_points(self, points: list[Point], outcomes: list[str]) -> None:
        """After the lane's commit: remember the committed points in one round
        trip (a Redis error propagates: the lane retries the batch, the
        PUBACKs held), then count and answer each point."""
        with self._lock:
            self.dedup.remember_many([(p.device, p.seq, None) for p, o
                                      in zip(points, outcomes, strict=True) if o == TELEMETRY])
        for point, outcome in zip(points, outcomes, strict=True):
            assert isinstance(point, Screened)
            if outcome == TELEMETRY:
                metrics.TELEMETRY.inc()
            elif outcome == DUPLICATE:
                metrics.DUPLICATES.inc()
            else:
                self._refuse(point.event, point.topic, Outcome(outcome))
                continue
            self.on_seen(point.event)  # a duplicate is still a sign of life

    @staticmethod
    def _content(event: Event) -> str | None:
        """The digest a shared de-dup state keeps: for events a device waits for;
        without a device time (no `ts`), `<digest>@<event_time_ms>`, the time
        told apart within a tolerance (_same_time), not by the digest."""
        if event.kind not in ACKED_KINDS:
            return None
        digest = dedup.digest(event.kind, event.type, event.device_time_ms, event.data)
        if event.device_time_ms is not None:
            return digest
        return f"{digest}@{event.event_time_ms}"

    def _same_time(self, event: Event, stored_ms: int) -> bool:
        """Whether an event time derived as receive time - age can be that of
        the stored event: a resend's age grows with the time it waited, so
        the two differ by the difference of their transit times; within the
        clock window (`[verify] behind_ms`), or later by a wait in the broker's
        queue that the gateway's away periods explain (docs/protocol.md
        *Identity*). Beyond it, the same content under the seq is another
        event: refused, so at worst shown twice, never lost."""
        late = event.event_time_ms - stored_ms
        window = self.cfg.verify.behind_ms
        if abs(late) <= window:
            return True
        session = "telemetry" if event.kind == "telemetry" else "events"
        return late > 0 and self.away is not None and self.away.explains(
            stored_ms, event.gateway_time_ms, window, session, event.device)

    def _same_digest(self, event: Event, content: str) -> bool:
        """A shared state's remembered content against this event's."""
        digest, _, at = content.partition("@")
        mine, _, _ = (self._content(event) or "").partition("@")
        # refilled from a store (dedup_backend) the digest comes without a time
        return digest == mine and (not at or self._same_time(event, int(at)))

    def _same_or_conflict(self, event: Event) -> Outcome:
        """DUPLICATE when what holds the identity is this very message, CONFLICT
        when it is other content under a reused seq."""
        stored = self.store.content_of(event.device, event.seq)
        if stored is not None:
            kind, typ, ts, data, at = stored
            same = (kind, typ, ts, data) == (event.kind, event.type, event.device_time_ms,
                                             event.data)
            if not same and event.kind not in ACKED_KINDS and kind == event.kind:
                # a point's row keeps neither its type nor its ts
                same = data == event.data
            # with a ts both event times are that ts; without, the derived ones
            # tell a resend from the same content sent again by a counter that
            # went back (an unsynced board wiped)
            return DUPLICATE if same and self._same_time(event, at) else CONFLICT
        if not self.dedup.shared:
            return DUPLICATE  # remembered but no longer stored: nothing to tell apart
        content = self.dedup.content(event.device, event.seq)
        if content is None:
            # every event a device waits for is remembered with its digest, so
            # the seq went to a point or heartbeat another gateway stored; for a
            # point or heartbeat nothing is known (documented in docs/gateway.md)
            return CONFLICT if event.kind in ACKED_KINDS else DUPLICATE
        return DUPLICATE if self._same_digest(event, content) else CONFLICT

    def _refuse(self, event: Event, topic: str, reason: Outcome) -> None:
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


@dataclass(slots=True, kw_only=True)
class Screened(Point):
    """A point on its way to the telemetry lane before its de-dup verdict
    (a shared state: screen_points), with the message and topic it came in."""

    event: Event
    topic: str

    @classmethod
    def of(cls, e: Event, topic: str) -> Screened:
        return cls(device=e.device, seq=e.seq, kind=e.kind, event_time_ms=e.event_time_ms,
                   gateway_time_ms=e.gateway_time_ms, data=e.data, event=e, topic=topic)


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


# The pipeline, in order. The front stages, per message on the source's thread:
FRONT: tuple[Stage, ...] = (
    Stage("retained", Pipeline.drop_retained),
    Stage("verify", Pipeline.verify),
    Stage("timestamp", Pipeline.timestamp),
)
# then, for events, the commit stages, a batch at a time on the event lane:
COMMIT: tuple[BatchStage, ...] = (
    BatchStage("dedup", Pipeline.dedup_batch),
    BatchStage("store", Pipeline.store_batch),
    BatchStage("remember", Pipeline.remember_batch),
    BatchStage("ack", Pipeline.ack_batch),
)
STAGES: tuple[str, ...] = tuple(s.name for s in FRONT) + tuple(s.name for s in COMMIT)
