"""The shared de-dup state (Redis) a batch at a time: each lane checks a whole
batch before its commit and remembers it after, in one round trip each
(gateway/dedup_redis.py check_many / remember_many), instead of a round
trip per message on the source's thread. Against a real Redis: its own
INFO commandstats counts the script calls, and the client's writes to the
socket count the round trips."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import REGISTRY
from redis.connection import Connection

from gateway import dedup
from gateway.ack import Acker
from gateway.config import Config
from gateway.dedup_redis import RedisDedup
from gateway.lane import TelemetryLane
from gateway.pipeline import DUPLICATE, STORED, TELEMETRY, Pipeline, Received
from gateway.registry import Registry
from gateway.source import Deferred
from gateway.store import Store
from hg import protocol
from tests.test_gateway_stages import KEYS, NOW, VECTORS, alarm, write_registry

BUTTON, SENSOR = "hg-b-0001", "hg-s-0002"
EVENT = protocol.topic(BUTTON, "event")


@pytest.fixture
def redis_url(redis_server) -> Iterator[str]:  # noqa: ANN001
    redis.Redis.from_url(redis_server.url).flushall()  # fixed device ids: a clean state
    yield redis_server.url


def evalsha_calls(url: str) -> int:
    stats = redis.Redis.from_url(url).info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def persisted_points() -> float:
    return REGISTRY.get_sample_value("hg_gateway_persisted_total", {"kind": "telemetry"}) or 0.0


class RoundTrips:
    """Counts the writes redis-py's connections make: one per round trip (a
    pipeline sends all its commands in one write)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        send = Connection.send_packed_command

        def counted(conn: Connection, command: object, check_health: bool = True) -> None:
            self.count += 1
            send(conn, command, check_health)

        monkeypatch.setattr(Connection, "send_packed_command", counted)


class LaneRig:
    """A gateway's pipeline with its telemetry lane and event lane (neither
    thread started: the test runs their rounds), de-dup state in Redis."""

    def __init__(self, tmp: Path, redis_url: str, window: int = 4096) -> None:
        tmp.mkdir(exist_ok=True)
        reg = tmp / "devices.json"
        write_registry(reg, KEYS)
        cfg = Config.model_validate({
            "gateway": {"data_dir": str(tmp)},
            "registry": {"path": str(reg)},
            "dedup": {"window": window, "backend": "redis", "redis_url": redis_url},
            "verify": {"behind_ms": VECTORS["behind_ms"], "ahead_ms": VECTORS["ahead_ms"]},
            "centre": {"url": "http://127.0.0.1:9", "token": "stage-test"},
        })
        self.store = Store(tmp / "gw.db", sinks=("centre",))
        self.sent: list[tuple[str, bytes]] = []
        registry = Registry(reg)
        acker = Acker(self.store, registry.key_of, lambda t, p: self.sent.append((t, p)))
        self.lane = TelemetryLane(self.store, queue_max=10_000)
        self.pipeline = Pipeline(cfg, self.store, registry, acker, sinks=("centre",),
                                 lane=self.lane, event_lane=True)

    def point(self, seq: int, dev: str = SENSOR, ma: int = 1) -> Deferred:
        wire = protocol.encode(KEYS[dev], dev, seq, "telemetry", "periodic", 0, {"ma": ma}, NOW)
        out = self.pipeline.handle(protocol.topic(dev, "telemetry"), wire, NOW)
        assert isinstance(out, Deferred), out
        return out

    def commit(self) -> None:
        while self.lane.once():
            pass

    def stored_points(self) -> list[tuple[str, int]]:
        return sorted(self.store._db().execute("SELECT device, seq FROM telemetry"))

    def naks(self) -> list[dict]:
        acks = [protocol.verify(t, p, KEYS.get) for t, p in self.sent]
        return [a["data"] for a in acks if a["type"] == "nak"]

    def close(self) -> None:
        self.pipeline.dedup.close()
        self.store.close()


def test_check_many_and_remember_many_decide_like_the_local_window(redis_url: str) -> None:
    local, shared = dedup.LocalDedup(64), RedisDedup(redis_url, 64)
    rnd = random.Random(17)
    seqs = {BUTTON: 100, SENSOR: 300}
    for _ in range(60):
        batch = []
        for _ in range(rnd.randint(1, 12)):
            dev = rnd.choice([BUTTON, SENSOR])
            seqs[dev] = max(1, seqs[dev] + rnd.choice([-70, -40, -3, -1, 0, 1, 1, 2, 5, 90]))
            batch.append((dev, seqs[dev]))
        verdicts = shared.check_many(batch)
        assert verdicts == local.check_many(batch) == [local.check(d, s) for d, s in batch]
        kept = [(d, s, None) for (d, s), v in zip(batch, verdicts, strict=True)
                if v == dedup.NEW and rnd.random() < 0.8]
        shared.remember_many(kept)
        local.remember_many(kept)
    for dev in (BUTTON, SENSOR):
        assert shared.highest(dev) == local.highest(dev)
    shared.close()


def test_remember_many_keeps_the_digest_of_an_event(redis_url: str) -> None:
    shared = RedisDedup(redis_url, 64)
    shared.remember_many([(BUTTON, 7, "abc"), (SENSOR, 7, None), (BUTTON, 8, "")])
    assert shared.content(BUTTON, 7) == "abc"
    assert shared.content(SENSOR, 7) is None and shared.content(BUTTON, 8) is None
    shared.close()


def test_a_redis_that_lost_its_scripts_gets_them_again(redis_url: str) -> None:
    shared = RedisDedup(redis_url, 64)
    assert shared.check_many([(BUTTON, 1)]) == [dedup.NEW]
    redis.Redis.from_url(redis_url).script_flush()  # as after a Redis restart
    shared.remember_many([(BUTTON, 1, None)])
    assert shared.check_many([(BUTTON, 1), (BUTTON, 2)]) == [dedup.DUPLICATE, dedup.NEW]
    shared.close()


def test_a_telemetry_batch_costs_two_round_trips_whatever_its_size(
        tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: one script call per point on the source's thread (200 here)."""
    rig = LaneRig(tmp_path, redis_url)
    rig.point(1)
    rig.commit()  # the scripts are loaded now
    calls = evalsha_calls(redis_url)
    trips = RoundTrips(monkeypatch)
    outs = [rig.point(seq, dev) for seq in range(2, 102) for dev in (BUTTON, SENSOR)]
    assert trips.count == 0, "no round trip on the source's thread"
    rig.commit()
    assert len(rig.stored_points()) == 201
    assert all(o.outcome == TELEMETRY for o in outs)
    batches = -(-200 // 500)
    assert trips.count == 2 * batches  # check before the commit, remember after
    # one script call per device and step (INFO's own call is not counted yet)
    assert evalsha_calls(redis_url) - calls == 2 * 2 * batches
    rig.close()


def test_an_event_batch_costs_two_round_trips(
        tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: a check and a remember per event (100 round trips here)."""
    rig = LaneRig(tmp_path, redis_url)
    front = rig.pipeline.front
    items = [(front(Received(EVENT, alarm(seq), NOW, False)), EVENT) for seq in range(1, 51)]
    rig.pipeline.commit_events(items[:1])  # the scripts are loaded now
    calls = evalsha_calls(redis_url)
    trips = RoundTrips(monkeypatch)
    assert rig.pipeline.commit_events(items[1:]) == [STORED] * 49
    assert trips.count == 2
    assert evalsha_calls(redis_url) - calls == 2
    rig.close()


def test_points_are_remembered_after_their_commit_not_before(
        tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit that fails leaves no trace in the shared state (before, a point
    was remembered when queued: a gateway killed before its commit lost it,
    the broker's redelivery counted as a duplicate)."""
    rig = LaneRig(tmp_path, redis_url)
    out = rig.point(5)
    insert = rig.store.insert_points

    def disk_full(*a: object, **k: object) -> object:
        raise OSError("disk full")

    monkeypatch.setattr(rig.store, "insert_points", disk_full)
    with pytest.raises(OSError):
        rig.lane.once()
    assert rig.pipeline.dedup.check(SENSOR, 5) == dedup.NEW
    monkeypatch.setattr(rig.store, "insert_points", insert)
    rig.commit()  # the held batch again
    assert rig.stored_points() == [(SENSOR, 5)] and out.outcome == TELEMETRY
    assert rig.pipeline.dedup.check(SENSOR, 5) == dedup.DUPLICATE
    rig.close()


def test_a_redis_error_holds_the_batch_and_its_pubacks_until_it_works(
        tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = LaneRig(tmp_path, redis_url)
    released: list[str] = []
    outs = [rig.point(seq) for seq in (1, 2)]
    for n, o in enumerate(outs):
        o.attach(lambda n=n: released.append(f"puback {n}"))
    shared = rig.pipeline.dedup
    assert isinstance(shared, RedisDedup)
    execute = shared._execute
    down = {"check": True, "remember": True}

    def flaky(script, calls):  # noqa: ANN001, ANN202
        step = "check" if script is shared._check_many else "remember"
        if down[step]:
            raise redis.ConnectionError("Redis down")
        return execute(script, calls)

    monkeypatch.setattr(shared, "_execute", flaky)
    persisted = persisted_points()
    with pytest.raises(redis.ConnectionError):
        rig.lane.once()  # the check fails: nothing committed
    assert rig.stored_points() == [] and released == []
    down["check"] = False
    with pytest.raises(redis.ConnectionError):
        rig.lane.once()  # committed, but not remembered: no PUBACK yet
    assert rig.stored_points() == [(SENSOR, 1), (SENSOR, 2)] and released == []
    down["remember"] = False
    rig.commit()
    assert released == ["puback 0", "puback 1"]
    assert persisted_points() == persisted + 2  # counted once, not again on the retry
    assert shared.check_many([(SENSOR, 1), (SENSOR, 2)]) == [dedup.DUPLICATE] * 2
    rig.close()


def test_duplicates_replays_and_conflicts_across_gateways_in_one_batch(
        tmp_path: Path, redis_url: str) -> None:
    """Gateway a stored the sensor's points 1-3 and 60, an alarm under its seq
    4 and the button's point 300; b's batch holds resends of 1 and 2 (one with
    other data), the alarm's seq as a point, a new point twice, one of the
    button's seqs past the window and one within it."""
    a = LaneRig(tmp_path / "a", redis_url, window=64)
    b = LaneRig(tmp_path / "b", redis_url, window=64)
    for seq in (1, 2, 3, 60):
        a.point(seq)
    a.point(300, BUTTON)
    a.commit()
    topic = protocol.topic(SENSOR, "event")
    sensor_alarm = protocol.encode(KEYS[SENSOR], SENSOR, 4, "alarm", "fire", 0, {"ma": 9}, NOW)
    assert a.pipeline.commit_events([(a.pipeline.front(Received(
        topic, sensor_alarm, NOW, False)), topic)]) == [STORED]
    outs = [b.point(1), b.point(2, ma=5), b.point(4), b.point(61), b.point(61),
            b.point(200, BUTTON), b.point(250, BUTTON)]
    b.commit()
    assert [o.outcome for o in outs] == [DUPLICATE, DUPLICATE, dedup.CONFLICT, TELEMETRY,
                                         DUPLICATE, dedup.REPLAY, TELEMETRY]
    # (a point's digest is not kept: other data under a seq another gateway
    # stored for a point cannot be told from a resend: docs/gateway.md)
    assert b.stored_points() == [(BUTTON, 250), (SENSOR, 61)]
    assert [(n["ref"], n["reason"]) for n in b.naks()] == [(4, "seq_conflict"), (200, "replay")]
    a.close()
    b.close()
