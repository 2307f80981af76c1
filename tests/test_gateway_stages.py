"""Gateway stages without servers: verify -> timestamp -> dedup -> store -> ack,
driven through Pipeline.handle with a real SQLite store and registry file, and
the gateway's config and registry loaders.

Acks go through a real Acker whose publish function records (topic, payload);
every recorded ack is checked with the device's key like a device would.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import tomllib
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from gateway import dedup
from gateway.ack import Acker
from gateway.config import Config, ConfigError, load
from gateway.pipeline import DUPLICATE, STORED, TELEMETRY, Pipeline, Received
from gateway.registry import Registry, RegistryError
from gateway.source import HOLD
from gateway.store import Event, Store, StoreError
from gateway.timestamp import stamp
from hg import protocol
from tests.harness.proc import wait_until

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "tests/vectors/protocol_v1.json").read_text())
NOW = VECTORS["now_ms"]
KEYS = {dev: bytes.fromhex(k) for dev, k in VECTORS["keys"].items()}
BUTTON = "hg-b-0001"
SAMPLE = ROOT / "gateway/sample.toml"


def wire_of(vector: dict) -> bytes:
    if "wire_hex" in vector:
        return bytes.fromhex(vector["wire_hex"])
    return vector["wire"].encode()


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("hg_gateway_rejected_total", {"reason": reason}) or 0.0


def write_registry(path: Path, keys: dict[str, bytes]) -> None:
    path.write_text(json.dumps({"devices": [
        {"id": dev, "key": key.hex(), "type": "button"} for dev, key in keys.items()]}))


class Rig:
    """A pipeline over a store file in tmp, with every published ack recorded."""

    def __init__(self, tmp: Path, window: int = 4096, db: str = "gw.db",
                 redis_url: str = "") -> None:
        reg = tmp / "devices.json"
        if not reg.exists():
            write_registry(reg, KEYS)
        self.cfg = Config.model_validate({
            "gateway": {"data_dir": str(tmp)},
            "registry": {"path": str(reg)},
            "dedup": {"window": window, **({"backend": "redis", "redis_url": redis_url}
                                           if redis_url else {})},
            "verify": {"behind_ms": VECTORS["behind_ms"], "ahead_ms": VECTORS["ahead_ms"]},
            "centre": {"url": "http://127.0.0.1:9", "token": "stage-test"},
        })
        self.store = Store(tmp / db, sinks=("centre",))
        self.registry = Registry(reg)
        self.sent: list[tuple[str, bytes]] = []
        self.acker = Acker(self.store, self.registry.key_of,
                           lambda t, p: self.sent.append((t, p)))
        self.pipeline = Pipeline(self.cfg, self.store, self.registry, self.acker,
                                 sinks=("centre",))

    def handle(self, topic: str, wire: bytes, now: int = NOW) -> str:
        return self.pipeline.handle(topic, wire, now)

    def rows(self) -> list[tuple[str, int]]:
        return [(e.device, e.seq) for e in self.store.pending("centre", 1000)]

    def acks(self) -> list[dict]:
        """Every ack sent so far, verified with the device's key."""
        out = []
        for topic, payload in self.sent:
            dev = protocol.parse_topic(topic)[0]
            out.append(protocol.verify(topic, payload, KEYS.get))
            assert out[-1]["dev"] == dev
        return out


def alarm(seq: int, ts: int | None = NOW - 500, age: int = 0, dev: str = BUTTON) -> bytes:
    return protocol.encode(KEYS[dev], dev, seq, "alarm", "fire", age, {"btn": "f"}, ts)


EVENT = protocol.topic(BUTTON, "event")


# --- verify ------------------------------------------------------------------

@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["name"])
def test_invalid_vector_is_rejected_counted_and_not_stored(tmp_path: Path, vector: dict) -> None:
    rig = Rig(tmp_path)
    before = rejected(vector["reason"])
    assert rig.handle(vector["topic"], wire_of(vector)) == vector["reason"]
    assert rejected(vector["reason"]) == before + 1
    assert rig.rows() == []
    assert list(rig.store.recent_seqs(4096)) == []
    if vector["reason"] != protocol.R_SKEW:
        assert rig.sent == [], "only a correctly signed, skewed message is NAKed"


def test_rejections_are_all_counted_but_logged_once_a_minute_per_device_and_reason(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(tmp_path)
    forged = protocol.encode(b"k" * 32, BUTTON, 1, "alarm", "fire", 0, {}, NOW)
    other = protocol.topic("hg-s-0002", "event")
    before = rejected(protocol.R_SIGNATURE)
    with caplog.at_level(logging.WARNING, logger="homeguard.gateway.verify"):
        for _ in range(3):
            assert rig.handle(EVENT, forged) == protocol.R_SIGNATURE
        forged2 = protocol.encode(b"k" * 32, "hg-s-0002", 1, "alarm", "fire", 0, {}, NOW)
        assert rig.handle(other, forged2) == protocol.R_SIGNATURE
        assert rig.handle(EVENT, b"{") == protocol.R_MALFORMED
    assert rejected(protocol.R_SIGNATURE) == before + 4
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert sum(f"device={BUTTON}" in m and "reason=bad_signature" in m for m in lines) == 1
    assert any("device=hg-s-0002" in m for m in lines)
    assert any("reason=malformed" in m for m in lines)


def test_every_rejection_reason_has_a_vector() -> None:
    assert {v["reason"] for v in VECTORS["invalid"]} == set(protocol.REASONS)


@pytest.mark.parametrize("vector", [v for v in VECTORS["valid"]
                                    if v["topic"].rsplit("/", 1)[1] in protocol.UPLINK],
                         ids=lambda v: v["name"])
def test_valid_uplink_vector_is_stored_or_counted(tmp_path: Path, vector: dict) -> None:
    rig = Rig(tmp_path)
    outcome = rig.handle(vector["topic"], wire_of(vector))
    msg = vector["input"]
    if msg["kind"] == "telemetry":
        assert outcome == TELEMETRY
        assert rig.rows() == []  # the telemetry lane, not the centre's outbox
        assert [(p.device, p.seq, p.data) for p in rig.store.points_after(0, 10)] == [
            (msg["dev"], msg["seq"], msg["data"])]
        return
    assert outcome == STORED
    assert rig.rows() == [(msg["dev"], msg["seq"])]
    stored = rig.store.pending("centre", 10)[0]
    assert (stored.kind, stored.type, stored.data) == (msg["kind"], msg["type"], msg["data"])
    acks = rig.acks()
    if msg["kind"] in ("heartbeat", "status"):
        assert acks == []
    else:
        assert [(a["type"], a["data"]["ref"]) for a in acks] == [("stored", msg["seq"])]


def test_downlink_topic_is_not_taken_as_uplink(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    ack = next(v for v in VECTORS["valid"] if v["topic"].endswith("/ack"))
    before = rejected(protocol.R_TOPIC)
    assert rig.handle(ack["topic"], wire_of(ack)) == protocol.R_TOPIC
    assert rejected(protocol.R_TOPIC) == before + 1
    assert rig.rows() == []


# --- timestamp ---------------------------------------------------------------

def test_event_time_is_the_device_clock_when_synced() -> None:
    msg = {"dev": BUTTON, "seq": 1, "kind": "alarm", "type": "fire",
           "ts": 1_000_000, "age": 1200, "data": {}}
    e = stamp(msg, received_ms=1_001_500)
    assert e.event_time_ms == 1_000_000
    assert e.device_time_ms == 1_000_000
    assert e.gateway_time_ms == 1_001_500
    assert e.age_ms == 1200
    # device clock at sending (ts + age) minus receive: 300 ms behind -> negative
    assert e.skew_ms == -300


def test_event_time_without_clock_is_receive_time_minus_age() -> None:
    msg = {"dev": BUTTON, "seq": 1, "kind": "alarm", "type": "medical", "age": 90_000, "data": {}}
    e = stamp(msg, received_ms=5_000_000)
    assert e.event_time_ms == 5_000_000 - 90_000
    assert e.device_time_ms is None
    assert e.skew_ms is None


def test_device_clock_ahead_gives_positive_skew(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    assert rig.handle(EVENT, alarm(7, ts=NOW + 2000, age=1000)) == STORED
    e = rig.store.pending("centre", 10)[0]
    assert e.skew_ms == 3000
    assert e.event_time_ms == NOW + 2000
    assert e.gateway_time_ms == NOW


# --- dedup -------------------------------------------------------------------

def test_duplicate_is_acked_again_and_stored_once(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    dups = REGISTRY.get_sample_value("hg_gateway_duplicates_total") or 0.0
    wire = alarm(42)
    assert rig.handle(EVENT, wire) == STORED
    assert rig.handle(EVENT, wire) == DUPLICATE
    assert rig.rows() == [(BUTTON, 42)]
    assert REGISTRY.get_sample_value("hg_gateway_duplicates_total") == dups + 1
    assert [(a["type"], a["data"]["ref"]) for a in rig.acks()] == [("stored", 42), ("stored", 42)]
    # every ack has its own downlink seq
    assert len({a["seq"] for a in rig.acks()}) == 2


def test_duplicate_of_a_delivered_alarm_is_also_acked_delivered(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    assert rig.handle(EVENT, alarm(5)) == STORED
    e = rig.store.pending("centre", 10)[0]
    assert e.id is not None
    rig.store.mark_done("centre", [(e.id, "accepted")])  # what the sink does after a 200
    rig.sent.clear()
    assert rig.handle(EVENT, alarm(5)) == DUPLICATE
    assert [a["type"] for a in rig.acks()] == ["stored", "delivered"]


def test_duplicate_of_a_dead_letter_is_not_acked_delivered(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.handle(EVENT, alarm(5))
    e = rig.store.pending("centre", 10)[0]
    assert e.id is not None
    rig.store.mark_done("centre", [(e.id, "refused")], "422: bad type")
    rig.sent.clear()
    assert rig.handle(EVENT, alarm(5)) == DUPLICATE
    assert [a["type"] for a in rig.acks()] == ["stored"]


def test_seq_below_the_window_is_a_replay(tmp_path: Path) -> None:
    rig = Rig(tmp_path, window=16)
    before = rejected(dedup.REPLAY)
    assert rig.handle(EVENT, alarm(100)) == STORED
    assert rig.handle(EVENT, alarm(84)) == dedup.REPLAY  # 84 <= 100 - 16
    assert rejected(dedup.REPLAY) == before + 1
    assert rig.handle(EVENT, alarm(85)) == STORED  # inside the window: late, not a replay
    assert sorted(rig.rows()) == [(BUTTON, 85), (BUTTON, 100)]
    # a replay is NAKed with the highest seq, so a device whose counter went
    # back can move past it (only the device's own account can publish here)
    assert [(a["type"], a["data"]["ref"], a["data"].get("reason"), a["data"].get("hi"))
            for a in rig.acks()] == [("stored", 100, None, None), ("nak", 84, "replay", 100),
                                     ("stored", 85, None, None)]


def test_same_seq_other_content_is_a_conflict_not_a_duplicate(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    raised: list[tuple[str, int, int]] = []
    rig.pipeline.on_conflict = lambda d, s, hi: raised.append((d, s, hi))
    before = rejected(dedup.CONFLICT)
    assert rig.handle(EVENT, alarm(7)) == STORED
    assert rig.handle(EVENT, alarm(9)) == STORED
    medical = protocol.encode(KEYS[BUTTON], BUTTON, 7, "alarm", "medical", 0, {"btn": "m"},
                              NOW - 400)
    assert rig.handle(EVENT, medical) == dedup.CONFLICT
    assert rejected(dedup.CONFLICT) == before + 1
    assert raised == [(BUTTON, 7, 9)]
    # not stored, not acked `stored`: NAKed with the highest seq
    assert sorted(rig.rows()) == [(BUTTON, 7), (BUTTON, 9)]
    assert [(a["type"], a["data"]["ref"]) for a in rig.acks()][-1] == ("nak", 7)
    assert rig.acks()[-1]["data"] == {"ref": 7, "reason": "seq_conflict", "hi": 9}
    # the same alarm again, later (only age changes): a duplicate
    assert rig.handle(EVENT, alarm(7, age=3000)) == DUPLICATE
    # the same content at another time is another event (a wiped board's first alarm)
    assert rig.handle(EVENT, alarm(9, ts=NOW - 20_000)) == dedup.CONFLICT


def test_an_alarm_under_a_seq_a_point_took_is_a_conflict(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    point = protocol.encode(KEYS[BUTTON], BUTTON, 3, "telemetry", "periodic", 0, {"ma": 5},
                            NOW - 500)
    assert rig.handle(protocol.topic(BUTTON, "telemetry"), point) == "telemetry"
    assert rig.handle(EVENT, alarm(3)) == dedup.CONFLICT
    assert rig.handle(protocol.topic(BUTTON, "telemetry"), point) == DUPLICATE


def test_two_contents_for_one_seq_in_one_batch(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    fire = rig.pipeline.front(Received(EVENT, alarm(4), NOW, False))
    medical = rig.pipeline.front(Received(EVENT, protocol.encode(
        KEYS[BUTTON], BUTTON, 4, "alarm", "medical", 0, {}, NOW - 100), NOW, False))
    assert rig.pipeline.commit_events([(fire, EVENT), (medical, EVENT), (fire, EVENT)]) == [
        STORED, dedup.CONFLICT, DUPLICATE]


def test_conflicts_are_told_apart_across_gateways_sharing_redis(
        tmp_path: Path, redis_server) -> None:  # noqa: ANN001
    """Gateway b's store never saw what gateway a stored: the shared state
    still tells a resend (duplicate) from other content (conflict)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Rig(tmp_path / "a", redis_url=redis_server.url)
    b = Rig(tmp_path / "b", redis_url=redis_server.url)
    dev = "hg-b-0001"
    assert a.handle(EVENT, alarm(501)) == STORED
    assert b.handle(EVENT, alarm(501, age=2000)) == DUPLICATE
    other = protocol.encode(KEYS[dev], dev, 501, "alarm", "security", 0, {}, NOW - 500)
    assert b.handle(EVENT, other) == dedup.CONFLICT
    assert b.acks()[-1]["data"] == {"ref": 501, "reason": "seq_conflict", "hi": 501}
    point = protocol.encode(KEYS[dev], dev, 502, "telemetry", "periodic", 0, {"ma": 1}, NOW)
    assert a.handle(protocol.topic(dev, "telemetry"), point) == TELEMETRY
    # the seq went to a point at a: an alarm under it at b is a conflict
    assert b.handle(EVENT, alarm(502)) == dedup.CONFLICT
    # a fresh gateway refills the shared state from its store, digests included
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    a.store.close()
    again = Rig(tmp_path / "a", redis_url=redis_server.url)
    assert again.pipeline.dedup.content(dev, 501) is not None
    assert b.handle(EVENT, other) == dedup.CONFLICT


def test_without_ts_the_derived_event_time_tells_a_resend_from_a_reused_seq(
        tmp_path: Path) -> None:
    """An unsynced board sends no ts: the same content under a stored seq is
    a resend while receive time - age agrees within the clock window, and
    another event (a wiped board's new press) when it does not."""
    from gateway.freshness import Away

    rig = Rig(tmp_path)
    raised: list[tuple[str, int, int]] = []
    rig.pipeline.on_conflict = lambda d, s, hi: raised.append((d, s, hi))
    behind = rig.cfg.verify.behind_ms
    assert rig.handle(EVENT, alarm(11, ts=None), NOW) == STORED
    assert rig.handle(EVENT, alarm(13, ts=None), NOW) == STORED
    # resent after 30 s with the age it waited: the same event
    assert rig.handle(EVENT, alarm(11, ts=None, age=30_000), NOW + 30_000) == DUPLICATE
    # the same bytes (age 0) again within the window: transit only
    assert rig.handle(EVENT, alarm(11, ts=None), NOW + behind) == DUPLICATE
    # the same content pressed anew minutes later under the reused seq: refused
    assert rig.handle(EVENT, alarm(11, ts=None), NOW + 600_000) == dedup.CONFLICT
    assert raised == [(BUTTON, 11, 13)]
    assert rig.acks()[-1]["data"] == {"ref": 11, "reason": "seq_conflict", "hi": 13}
    assert rig.rows() == [(BUTTON, 11), (BUTTON, 13)]
    # under the device's highest seq too: a board whose counter went back
    # may send it before the NAK for a lower one reaches it
    assert rig.handle(EVENT, alarm(13, ts=None), NOW + 600_000) == dedup.CONFLICT
    # the same bytes again after waiting in the broker's queue while the
    # gateway was away: the away period explains it, a duplicate
    rig.pipeline.away = away = Away(NOW + 1_000, backlog_max_ms=86_400_000)
    away.back(NOW + 300_000)
    assert rig.handle(EVENT, alarm(11, ts=None), NOW + 301_000) == DUPLICATE
    # a point's time is compared too (its row keeps the derived time)
    tm = protocol.topic(BUTTON, "telemetry")
    point = protocol.encode(KEYS[BUTTON], BUTTON, 12, "telemetry", "periodic", 0, {"ma": 5})
    assert rig.handle(tm, point, NOW + 400_000) == TELEMETRY
    assert rig.handle(EVENT, alarm(14, ts=None), NOW + 400_000) == STORED
    assert rig.handle(tm, point, NOW + 400_000 + behind + 60_000) == dedup.CONFLICT


def test_without_ts_a_shared_state_compares_the_derived_time_too(
        tmp_path: Path, redis_server) -> None:  # noqa: ANN001
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Rig(tmp_path / "a", redis_url=redis_server.url)
    b = Rig(tmp_path / "b", redis_url=redis_server.url)
    assert a.handle(EVENT, alarm(601, ts=None), NOW) == STORED
    assert a.handle(EVENT, alarm(602, ts=None), NOW) == STORED
    assert b.handle(EVENT, alarm(601, ts=None, age=5_000), NOW + 5_000) == DUPLICATE
    assert b.handle(EVENT, alarm(601, ts=None), NOW + 600_000) == dedup.CONFLICT
    assert b.handle(EVENT, alarm(602, ts=None), NOW + 600_000) == dedup.CONFLICT
    # refilled from a store, the digest comes without the time: a resend is
    # still a duplicate and other content still a conflict
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    a.store.close()
    Rig(tmp_path / "a", redis_url=redis_server.url)
    assert b.handle(EVENT, alarm(601, ts=None, age=9_000), NOW + 9_000) == DUPLICATE
    other = protocol.encode(KEYS[BUTTON], BUTTON, 601, "alarm", "medical", 0, {"btn": "m"})
    assert b.handle(EVENT, other, NOW + 9_000) == dedup.CONFLICT


def test_a_retained_copy_is_ignored_and_counted_without_a_nak(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    before = rejected("retained")
    status = protocol.encode(KEYS[BUTTON], BUTTON, 11, "status", "online", 0, {},
                             NOW - 3_600_000)  # an hour old: would be clock_skew
    assert rig.pipeline.handle(protocol.topic(BUTTON, "status"), status, NOW,
                               retained=True) == "retained"
    assert rig.pipeline.handle(EVENT, alarm(12), NOW, retained=True) == "retained"
    assert rejected("retained") == before + 2
    assert rig.sent == [] and rig.rows() == []


def test_window_survives_a_restart_on_the_same_store(tmp_path: Path) -> None:
    first = Rig(tmp_path, window=16)
    assert first.handle(EVENT, alarm(100)) == STORED
    first.store.close()
    again = Rig(tmp_path, window=16)
    assert again.handle(EVENT, alarm(84)) == dedup.REPLAY
    assert again.handle(EVENT, alarm(100)) == DUPLICATE
    assert again.rows() == [(BUTTON, 100)]


def test_windows_are_per_device(tmp_path: Path) -> None:
    rig = Rig(tmp_path, window=16)
    sensor = "hg-s-0002"
    assert rig.handle(EVENT, alarm(1000)) == STORED
    assert rig.handle(protocol.topic(sensor, "event"), alarm(3, dev=sensor)) == STORED


def test_dedup_check_is_pure_and_remember_fills_the_window() -> None:
    state = dedup.State(window=8)
    assert dedup.check(state, BUTTON, 10) == dedup.NEW
    assert dedup.check(state, BUTTON, 10) == dedup.NEW, "check alone changes nothing"
    dedup.remember(state, BUTTON, 10)
    assert dedup.check(state, BUTTON, 10) == dedup.DUPLICATE
    assert dedup.check(state, BUTTON, 9) == dedup.NEW  # late, inside the window
    assert dedup.check(state, BUTTON, 3) == dedup.NEW  # 3 > 10 - 8
    assert dedup.check(state, BUTTON, 2) == dedup.REPLAY  # 2 <= 10 - 8
    dedup.remember(state, BUTTON, 9)
    dedup.remember(state, BUTTON, 13)  # the window slides: 9 and 10 stay seen
    assert [dedup.check(state, BUTTON, s) for s in (9, 10, 11, 12, 13, 14)] == [
        dedup.DUPLICATE, dedup.DUPLICATE, dedup.NEW, dedup.NEW, dedup.DUPLICATE, dedup.NEW]
    assert dedup.check(state, BUTTON, 5) == dedup.REPLAY  # 5 <= 13 - 8
    assert dedup.check(state, "hg-s-0002", 1) == dedup.NEW  # per device


def test_dedup_jump_past_the_window_starts_afresh() -> None:
    state = dedup.State(window=8)
    dedup.remember(state, BUTTON, 1)
    dedup.remember(state, BUTTON, protocol.MAX_SEQ)  # no 2**31-bit shift
    assert state.devices[BUTTON].bits == 1
    assert dedup.check(state, BUTTON, protocol.MAX_SEQ) == dedup.DUPLICATE
    assert dedup.check(state, BUTTON, protocol.MAX_SEQ - 1) == dedup.NEW
    assert dedup.check(state, BUTTON, 1) == dedup.REPLAY


def test_dedup_rebuild_from_any_order_equals_remembering() -> None:
    pairs = [(BUTTON, s) for s in (5, 40, 38, 12, 39)] + [("hg-s-0002", 7)]
    built = dedup.rebuild(16, reversed(pairs))
    state = dedup.State(16)
    for dev, seq in pairs:
        dedup.remember(state, dev, seq)
    assert built == state
    assert [dedup.check(built, BUTTON, s) for s in (24, 25, 38, 37, 40, 41)] == [
        dedup.REPLAY, dedup.NEW, dedup.DUPLICATE, dedup.NEW, dedup.DUPLICATE, dedup.NEW]


def test_window_rebuilt_from_the_store_knows_late_seqs(tmp_path: Path) -> None:
    first = Rig(tmp_path, window=16)
    for seq in (100, 90, 95):
        assert first.handle(EVENT, alarm(seq)) == STORED
    first.store.close()
    again = Rig(tmp_path, window=16)
    assert [again.handle(EVENT, alarm(s)) for s in (90, 95, 100, 91, 84)] == [
        DUPLICATE, DUPLICATE, DUPLICATE, STORED, dedup.REPLAY]


# --- store -------------------------------------------------------------------

def event(seq: int, dev: str = BUTTON) -> Event:
    return Event(dev, seq, "alarm", "fire", NOW, NOW, NOW, 0, 0, {"btn": "f"})


def test_store_keeps_one_row_per_device_and_seq(tmp_path: Path) -> None:
    store = Store(tmp_path / "gw.db", sinks=("centre", "archive"))
    assert store.insert(event(1)) is True
    assert store.insert(event(1)) is False
    assert store.insert(event(1, "hg-s-0002")) is True
    for sink in ("centre", "archive"):
        assert [(e.device, e.seq) for e in store.pending(sink, 10)] == [
            (BUTTON, 1), ("hg-s-0002", 1)]
    with sqlite3.connect(tmp_path / "gw.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO events (device, seq, kind, type, event_time_ms, "
                       "gateway_time_ms, age_ms, data) VALUES (?, 1, 'alarm', 'fire', 0, 0, 0, "
                       "'{}')", (BUTTON,))


def test_store_records_attempts_and_outcome_per_sink(tmp_path: Path) -> None:
    store = Store(tmp_path / "gw.db", sinks=("centre", "archive"))
    store.insert(event(1))
    store.insert(event(2))
    [e1, e2] = store.pending("centre", 10)
    assert e1.id is not None and e2.id is not None
    store.mark_failed("centre", [e1.id, e2.id], "ConnectError: refused")
    store.mark_done("centre", [(e1.id, "accepted"), (e2.id, "duplicate")])
    one = store.delivery("centre", BUTTON, 1)
    assert one is not None and one["outcome"] == "accepted" and one["attempts"] == 2
    assert one["last_error"] == "ConnectError: refused" and one["delivered_at"] >= NOW
    assert store.delivered("centre", BUTTON, 2)
    assert store.pending("centre", 10) == []
    assert store.backlog("centre") == (0, None)
    # the other sink still has both, untouched
    assert store.backlog("archive") == (2, NOW)
    assert store.delivery("archive", BUTTON, 1) == {
        "delivered_at": None, "outcome": None, "attempts": 0, "last_error": None}
    store.mark_failed("centre", [e1.id], "late failure")  # done rows are not touched
    assert store.delivery("centre", BUTTON, 1) == one


def test_store_from_the_cursor_schema_keeps_what_was_delivered(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    with sqlite3.connect(path) as db:
        db.executescript(V1_SCHEMA)
        for seq in (1, 2, 3):
            db.execute("INSERT INTO events (device, seq, kind, type, event_time_ms, "
                       "gateway_time_ms, age_ms, data) VALUES (?, ?, 'alarm', 'fire', 0, 0, 0, "
                       "'{}')", (BUTTON, seq))
        db.execute("INSERT INTO cursors VALUES ('centre', 2)")
        db.execute("INSERT INTO dead_letters VALUES (2, 'centre', '422', 0)")
    store = Store(path, sinks=("centre",))
    assert [e.seq for e in store.pending("centre", 10)] == [3]
    assert store.delivered("centre", BUTTON, 1)
    assert not store.delivered("centre", BUTTON, 2)
    assert store.insert(event(4)) is True
    assert [e.seq for e in store.pending("centre", 10)] == [3, 4]


def test_store_from_a_newer_gateway_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "gw.db") as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer than this gateway"):
        Store(tmp_path / "gw.db", sinks=("centre",))


V1_SCHEMA = """
CREATE TABLE events (id INTEGER PRIMARY KEY, device TEXT NOT NULL, seq INTEGER NOT NULL,
    kind TEXT NOT NULL, type TEXT NOT NULL, event_time_ms INTEGER NOT NULL,
    device_time_ms INTEGER, gateway_time_ms INTEGER NOT NULL, age_ms INTEGER NOT NULL,
    skew_ms INTEGER, data TEXT NOT NULL, UNIQUE (device, seq));
CREATE TABLE cursors (sink TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
CREATE TABLE dead_letters (event_id INTEGER NOT NULL, sink TEXT NOT NULL, reason TEXT NOT NULL,
    at_ms INTEGER NOT NULL, PRIMARY KEY (event_id, sink));
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


# --- clock skew --------------------------------------------------------------

def test_clock_skew_is_nakked_with_the_gateway_time(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    vector = next(v for v in VECTORS["invalid"] if v["reason"] == protocol.R_SKEW)
    assert rig.handle(vector["topic"], wire_of(vector)) == protocol.R_SKEW
    [nak] = rig.acks()
    assert rig.sent[0][0] == protocol.topic(BUTTON, "ack")
    assert nak["type"] == "nak"
    assert nak["data"] == {"ref": 42, "reason": protocol.R_SKEW}
    assert nak["ts"] is not None and abs(nak["ts"] - NOW) < 10 ** 9  # the gateway's clock
    assert rig.rows() == []


def test_skewed_message_with_a_bad_signature_is_not_nakked(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    forged = protocol.encode(KEYS["hg-s-0002"], BUTTON, 9, "alarm", "fire", 0, {},
                             NOW - 3_600_000)
    assert rig.handle(EVENT, forged) == protocol.R_SIGNATURE
    assert rig.sent == []


# --- config ------------------------------------------------------------------

def write_config(tmp: Path, text: str) -> Path:
    path = tmp / "gateway.toml"
    path.write_text(text)
    return path


def test_config_unknown_key_is_named(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[mqtt]\nhots = "x"\n[centre]\nurl = "http://c"\ntoken = "t"\n')
    with pytest.raises(ConfigError, match=r"mqtt\.hots: Extra inputs are not permitted"):
        load(path, env={})


def test_config_unknown_section_is_named(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[centre]\nurl = "http://c"\ntoken = "t"\n[sinks]\nx = 1\n')
    with pytest.raises(ConfigError, match=r"sinks: Extra inputs"):
        load(path, env={})


def test_config_needs_centre_url(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[centre]\ntoken = "t"\n')
    with pytest.raises(ConfigError, match=r"centre\.url: Field required"):
        load(path, env={})


def test_config_needs_a_centre_token(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[centre]\nurl = "http://c"\n')
    with pytest.raises(ConfigError, match="HG_GATEWAY_CENTRE_TOKEN"):
        load(path, env={})


def test_config_secrets_come_from_the_environment(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[mqtt]\npassword = "file-pw"\n'
                                  '[centre]\nurl = "http://c"\ntoken = "file-token"\n')
    cfg = load(path, env={"HG_GATEWAY_MQTT_PASSWORD": "env-pw",
                          "HG_GATEWAY_CENTRE_TOKEN": "env-token"})
    assert (cfg.mqtt.password, cfg.centre.token) == ("env-pw", "env-token")
    assert load(path, env={}).centre.token == "file-token"


def test_config_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="cannot read config"):
        load(write_config(tmp_path, "[centre\n"), env={})


def test_config_backoff_order(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[centre]\nurl = "http://c"\ntoken = "t"\n'
                                  "backoff_min_s = 5.0\nbackoff_max_s = 1.0\n")
    with pytest.raises(ConfigError, match="backoff_max_s"):
        load(path, env={})


def sample_defaults() -> dict[str, dict]:
    """sample.toml with every commented-out `# key = value` line switched on."""
    text = SAMPLE.read_text()
    return tomllib.loads(re.sub(r"(?m)^# ?([a-z_]+ = .*)$", r"\1", text))


def test_sample_config_loads(tmp_path: Path) -> None:
    cfg = load(SAMPLE, env={"HG_GATEWAY_CENTRE_TOKEN": "sample-token"})
    assert cfg.centre.token == "sample-token"


def test_sample_config_shows_every_option_with_its_default() -> None:
    shown = sample_defaults()
    for name, field in Config.model_fields.items():
        section = field.annotation
        assert name in shown, f"[{name}] missing from sample.toml"
        for key, opt in section.model_fields.items():  # type: ignore[union-attr]
            assert key in shown[name], f"{name}.{key} missing from sample.toml"
            if opt.is_required() or opt.default is None or name == "centre" and key == "token":
                continue
            assert str(shown[name][key]) == str(opt.default), f"{name}.{key} default"
        assert set(shown[name]) <= set(section.model_fields), f"[{name}] has unknown keys"


def test_sample_config_comments_every_option() -> None:
    lines = SAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^#? ?[a-z_]+ = ", line):
            above = lines[i - 1]
            assert above.startswith("# ") and not re.match(r"^# ?[a-z_]+ = ", above), \
                f"line {i + 1} ({line!r}) has no comment sentence above it"
            assert above.rstrip().endswith((".", ")")), f"line {i}: {above!r} is not a sentence"


# --- registry ----------------------------------------------------------------

def test_registry_rejects_a_bad_file_at_start(tmp_path: Path) -> None:
    path = tmp_path / "devices.json"
    path.write_text('{"devices": [{"id": "hg-b-0001", "key": "00"}]}')
    with pytest.raises(RegistryError, match="must be 16..64 bytes, not 1"):
        Registry(path)
    with pytest.raises(RegistryError, match="not found"):
        Registry(tmp_path / "missing.json")


def test_registry_reloads_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "devices.json"
    write_registry(path, {BUTTON: KEYS[BUTTON]})
    reg = Registry(path)
    assert reg.key_of(BUTTON) == KEYS[BUTTON]
    assert reg.key_of("hg-s-0002") is None
    write_registry(path, KEYS)
    wait_until(lambda: reg.key_of("hg-s-0002") == KEYS["hg-s-0002"], 5, "registry reload")


def test_registry_keeps_the_last_good_copy(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "devices.json"
    write_registry(path, {BUTTON: KEYS[BUTTON]})
    reg = Registry(path)
    path.write_text('{"devices": [')  # a half-written file
    with caplog.at_level(logging.ERROR, logger="homeguard.gateway.registry"):
        wait_until(lambda: reg.key_of(BUTTON) is not None and "registry reload failed"
                   in caplog.text, 5, "reload failure to be logged")
    assert reg.key_of(BUTTON) == KEYS[BUTTON]
    write_registry(path, {"hg-s-0002": KEYS["hg-s-0002"]})
    wait_until(lambda: reg.key_of(BUTTON) is None, 5, "good file to be taken")
    assert reg.key_of("hg-s-0002") == KEYS["hg-s-0002"]


def test_new_device_in_the_registry_is_accepted_without_restart(tmp_path: Path) -> None:
    write_registry(tmp_path / "devices.json", {BUTTON: KEYS[BUTTON]})
    rig = Rig(tmp_path)
    sensor = "hg-s-0002"
    topic = protocol.topic(sensor, "event")
    assert rig.handle(topic, alarm(1, dev=sensor)) == protocol.R_DEVICE
    write_registry(tmp_path / "devices.json", KEYS)
    wait_until(lambda: rig.handle(topic, alarm(1, dev=sensor)) == STORED, 5, "new device")


def test_stored_ack_is_sent_before_the_sinks_are_woken(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    acks_at_wakeup: list[int] = []
    rig.pipeline.on_stored = lambda: acks_at_wakeup.append(len(rig.sent))
    assert rig.handle(EVENT, alarm(3)) == STORED
    assert acks_at_wakeup == [1]
    assert rig.handle(EVENT, alarm(3)) == DUPLICATE
    assert acks_at_wakeup == [1], "a duplicate has nothing new to deliver"


def test_unexpected_error_before_the_store_holds_the_message_and_the_next_flows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(tmp_path)
    held = REGISTRY.get_sample_value("hg_gateway_held_total") or 0.0
    real_key_of = rig.registry.key_of

    def broken_key_of(dev: str) -> bytes | None:  # a gateway bug, not a bad message
        raise RuntimeError("registry bug")

    monkeypatch.setattr(rig.registry, "key_of", broken_key_of)
    with caplog.at_level(logging.ERROR, logger="homeguard.gateway"):
        assert rig.handle(EVENT, alarm(1)) == HOLD
    assert "held topic=" + EVENT in caplog.text and "registry bug" in caplog.text
    assert REGISTRY.get_sample_value("hg_gateway_held_total") == held + 1
    assert rig.rows() == [] and rig.sent == []
    monkeypatch.setattr(rig.registry, "key_of", real_key_of)
    assert rig.handle(EVENT, alarm(2)) == STORED
    assert rig.handle(EVENT, alarm(1)) == STORED, "the redelivered message is not a duplicate"
    assert sorted(rig.rows()) == [(BUTTON, 1), (BUTTON, 2)]


# --- freshness: a backlog the broker queued while the gateway was away -----------

def test_late_message_sent_while_away_is_accepted_with_its_time(tmp_path: Path) -> None:
    from gateway.freshness import Away

    rig = Rig(tmp_path)
    behind = rig.cfg.verify.behind_ms
    rig.pipeline.away = away = Away(NOW - 600_000, backlog_max_ms=86_400_000)
    away.back(NOW - 60_000)  # away for 9 minutes, back a minute ago
    queued = alarm(70, ts=NOW - 300_000)  # sent while away: waited in the queue
    assert rig.handle(EVENT, queued) == STORED
    assert rig.store.pending("centre", 10)[0].event_time_ms == NOW - 300_000
    # sent after the gateway was back: the clock window decides as before
    assert rig.handle(EVENT, alarm(71, ts=NOW - behind - 5_000)) == protocol.R_SKEW
    # before the period began (less the window) or ahead of the clock: refused
    assert rig.handle(EVENT, alarm(72, ts=NOW - 700_000)) == protocol.R_SKEW
    assert rig.handle(EVENT, alarm(73, ts=NOW + 60_000)) == protocol.R_SKEW
    # still one identity: the same late message again is a duplicate
    assert rig.handle(EVENT, queued) == DUPLICATE
    # older than the broker keeps a queue: refused
    rig.pipeline.away = Away(NOW - 10 * 86_400_000, backlog_max_ms=86_400_000)
    assert rig.handle(EVENT, alarm(74, ts=NOW - 2 * 86_400_000)) == protocol.R_SKEW


def test_away_periods_open_and_close() -> None:
    from gateway.freshness import Away

    away = Away(None, backlog_max_ms=10**9)
    assert not away.explains(100, 200, 0)
    away.left(1_000)
    assert away.explains(1_500, 9_000, 0)  # still away: open-ended
    away.back(2_000)
    away.left(5_000)
    away.left(6_000)  # already away: the period keeps its start
    away.back(7_000)
    assert list(away.periods) == [(1_000, 2_000), (5_000, 7_000)]
    assert not away.explains(3_000, 9_000, 0) and away.explains(3_000, 9_000, 2_500)


def test_a_flooding_device_does_not_hold_back_another_devices_alarm(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    flood, other = BUTTON, "hg-s-0002"
    for seq in range(1, 1201):  # queued for the centre before the other's alarm
        assert rig.handle(EVENT, alarm(seq, ts=NOW - 1000 + seq % 500)) == STORED
    other_topic = protocol.topic(other, "event")
    assert rig.handle(other_topic, alarm(5, dev=other)) == STORED
    plain = rig.store.pending("centre", 500)
    assert other not in {e.device for e in plain}  # in store order: after 1200 others
    fair = rig.store.pending("centre", 500, per_device=20,
                             first=("alarm", "restore", "cancel", "test", "fault"))
    assert len(fair) == 500 and fair[1].device == other
    # each device's own events stay in store order
    seqs = [e.seq for e in fair if e.device == flood]
    assert seqs == sorted(seqs) == list(range(1, 500))
    # the centre sink's other request in flight has the flooding device
    assert [(e.device, e.seq) for e in rig.store.pending(
        "centre", 500, per_device=20, skip={flood})] == [(other, 5)]
    assert len(rig.store.pending("centre", 500, per_device=20, skip={other})) == 500


def test_a_lagging_session_shown_by_other_devices_explains_late_messages(
        tmp_path: Path) -> None:
    """Connected, yet the session lags (a backlog still draining after the
    subscriptions were granted, or an overloaded gateway): when other devices'
    messages on the same session arrive as late, a late message is explained;
    one device alone with a slow clock is still refused."""
    from gateway.freshness import Away

    other, third = "hg-s-0002", "hg-b-0003"
    third_key = b"3" * 32
    write_registry(tmp_path / "devices.json", {**KEYS, third: third_key})
    rig = Rig(tmp_path)
    behind = rig.cfg.verify.behind_ms
    rig.pipeline.away = Away(None, backlog_max_ms=86_400_000, sessions=("events", "telemetry"))
    lag = 90_000  # every message waits 90 s in the queue
    # a lone device, 90 s late, no other evidence: its clock, as far as anyone can tell
    assert rig.handle(EVENT, alarm(1, ts=NOW - lag)) == protocol.R_SKEW
    # a second device as late: one other device does not vouch (a shared bad time server)
    other_topic = protocol.topic(other, "event")
    assert rig.handle(other_topic, alarm(1, ts=NOW - lag - 500, dev=other)) == protocol.R_SKEW
    # a third as late: two others show the session's queue delay
    third_alarm = protocol.encode(third_key, third, 1, "alarm", "fire", 0, {}, NOW - lag)
    assert rig.handle(protocol.topic(third, "event"), third_alarm) == STORED
    assert rig.store.pending("centre", 10)[0].event_time_ms == NOW - lag
    # and now each is explained by the others: stored with its true time
    assert rig.handle(EVENT, alarm(2, ts=NOW - lag)) == STORED
    assert rig.handle(other_topic, alarm(2, ts=NOW - lag, dev=other)) == STORED
    # far later than the others show: a slow clock, refused
    assert rig.handle(EVENT, alarm(3, ts=NOW - lag - behind - 10_000)) == protocol.R_SKEW
    # the evidence is per session: telemetry's queue is not the events'
    tel = protocol.encode(KEYS[BUTTON], BUTTON, 4, "telemetry", "periodic", 0, {"i_max": 1},
                          NOW - lag)
    assert rig.handle(protocol.topic(BUTTON, "telemetry"), tel, NOW) == protocol.R_SKEW


def test_a_late_copy_of_a_stored_alarm_is_a_duplicate_not_a_nak(tmp_path: Path) -> None:
    """A board that rebooted resends its flash outbox as stored: an alarm the
    gateway stored (its ack lost in the reboot) comes again, now past the
    clock window. A clock_skew NAK would have the board stamp it anew, hit a
    seq_conflict and send the same press under a new seq: shown twice. It is
    a duplicate: re-acked, stored once."""
    rig = Rig(tmp_path)
    behind = rig.cfg.verify.behind_ms
    first = alarm(40, ts=NOW - 1_000)
    assert rig.handle(EVENT, first, NOW) == STORED
    later = NOW + behind + 30_000  # the same bytes, much later
    assert rig.handle(EVENT, first, later) == DUPLICATE
    assert not any(a["type"] == "nak" for a in rig.acks())
    assert rig.rows() == [(BUTTON, 40)]
    # a late message under a stored seq with other content is still a conflict
    other = alarm(40, ts=NOW - 2_000)
    assert rig.handle(EVENT, other, later) == protocol.R_CONFLICT


def test_the_centre_sink_tries_a_centre_that_was_away_at_least_every_5_s() -> None:
    """Alarms that queued while the centre was down wait for the sink's next
    try after it is back; its backoff must not grow past 5 s by default (30 s
    made a 60 s outage's backlog arrive ~45 s late in the chaos runs)."""
    from gateway.config import CentreSection

    assert CentreSection(url="http://127.0.0.1:1").backoff_max_s <= 5.0


def test_a_conflict_fault_carries_the_refused_content_within_the_centres_limits() -> None:
    from gateway.sinks.centre import conflict_fault

    fire = Event(BUTTON, 70, "alarm", "fire", NOW, None, NOW, 0, None, {"btn": "f"})
    assert conflict_fault(fire) == {"seq": 70, "kind": "alarm", "type": "fire",
                                    "event_time_ms": NOW, "at": "centre", "btn": "f"}
    # at most the centre's 24 data keys: the meta keys win, the rest is counted
    many = {f"k{i:02d}": i for i in range(protocol.MAX_DATA_KEYS)} | {"type": "x"}
    fault = conflict_fault(Event(BUTTON, 71, "alarm", "fire", NOW, NOW, NOW, 0, 0, many))
    assert len(fault) == protocol.MAX_DATA_KEYS and fault["type"] == "fire"
    assert fault["cut"] == len(many) - (protocol.MAX_DATA_KEYS - 6)
    assert [k for k in fault if k[1:].isdigit()] == [f"k{i:02d}" for i in range(18)]
