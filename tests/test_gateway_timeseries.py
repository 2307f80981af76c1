"""The time-series sink and the telemetry lane: telemetry and heartbeat
points through a real gateway process (real Mosquitto, real HTTP centre)
into a real VictoriaMetrics and InfluxDB 1.x; the embedded SQLite table
when no server is configured; the cursor across a restart and a kill -9;
shedding. Without the gateway process: batches offered in memory (written
without reading the store), the store read for what was not offered, a
sink that falls behind, a dead server, and line protocol escaping.
"""

from __future__ import annotations

import functools
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from gateway.lane import TelemetryLane
from gateway.sinks import lineproto, timeseries
from gateway.sinks.lineproto import Encoder
from gateway.sinks.timeseries import SINK, TimeseriesSection, TimeseriesSink
from gateway.store import SHED_COUNTER, Event, Point, Store
from hg import protocol
from tests.harness.proc import wait_until
from tests.test_gateway_flow import WAIT, Centre, Device, Gateway

SENSOR = "hg-s-0301"


class Rig:
    """Gateway process with a sensor in a household and grid, and its device."""

    def __init__(self, broker, tmp: Path, timeseries: str) -> None:  # noqa: ANN001
        self.key = secrets.token_bytes(32)
        self.id = f"hg-s-{secrets.token_hex(4)}"  # its own series in the shared server
        self.centre = Centre().start()
        self.gateway = Gateway(broker, tmp, self.centre, {self.id: self.key})
        (tmp / "devices.json").write_text(json.dumps({"devices": [
            {"id": self.id, "key": self.key.hex(), "type": "sensor", "household": "H-0301",
             "grid": "G-03"}]}))
        self.gateway.config.write_text(self.gateway.config.read_text() + timeseries)
        self.gateway.start()
        self.device = Device(broker, self.id, self.key)
        self.db = tmp / "gw" / "gateway.db"

    def telemetry(self, seq: int, ts: int, **data: int) -> bytes:
        wire = protocol.encode(self.key, self.id, seq, "telemetry", "periodic", 0, data, ts)
        self.device.publish(wire, leaf="telemetry")
        return wire

    def rows(self) -> list[tuple]:
        with sqlite3.connect(self.db) as db:
            return db.execute("SELECT device, seq, kind, event_time_ms, data FROM telemetry "
                              "ORDER BY id").fetchall()

    def wait(self, check, what: str) -> None:  # noqa: ANN001
        wait_until(check, WAIT, f"{what}\n--- gateway log ---\n{self.gateway.logs()[-3000:]}")

    def close(self) -> None:
        self.device.stop()
        self.gateway.stop()
        self.centre.stop()


@pytest.fixture
def victoria_rig(mosquitto, victoria, tmp_path: Path) -> Iterator[Rig]:  # noqa: ANN001
    rig = Rig(mosquitto, tmp_path, f'\n[timeseries]\nurl = "{victoria.influx_url}"\n'
              "backoff_min_s = 0.1\nbackoff_max_s = 0.5\n")
    yield rig
    rig.close()


def series(victoria, match: str) -> dict[str, tuple[dict, list]]:  # noqa: ANN001
    """name -> (labels, [(ts, value), ...]) of every series matching."""
    return {s["metric"]["__name__"]: (s["metric"], list(zip(s["timestamps"], s["values"],
                                                              strict=True)))
            for s in victoria.export(match)}


def test_points_arrive_with_tags_and_exact_event_times(victoria_rig: Rig, victoria) -> None:  # noqa: ANN001
    t0 = int(time.time() * 1000) - 5000
    victoria_rig.telemetry(1, t0 + 1, i_ma=1500, v_mv=229000)
    victoria_rig.telemetry(2, t0 + 1002, i_ma=1600, v_mv=231000)
    match = f'{{__name__=~"telemetry_.*",device="{victoria_rig.id}"}}'
    victoria.wait_for_samples(match, 4)
    got = series(victoria, match)
    labels, points = got["telemetry_i_ma"]
    assert {k: v for k, v in labels.items() if k != "__name__"} == {
        "device": victoria_rig.id, "device_type": "sensor", "household": "H-0301", "grid": "G-03"}
    assert points == [(t0 + 1, 1500), (t0 + 1002, 1600)]
    assert got["telemetry_v_mv"][1] == [(t0 + 1, 229000), (t0 + 1002, 231000)]
    assert [r[:4] for r in victoria_rig.rows()] == [
        (victoria_rig.id, 1, "telemetry", t0 + 1), (victoria_rig.id, 2, "telemetry", t0 + 1002)]


def test_replayed_telemetry_is_acked_but_written_once(victoria_rig: Rig, victoria) -> None:  # noqa: ANN001
    t0 = int(time.time() * 1000) - 3000
    wire = victoria_rig.telemetry(1, t0, i_ma=700)
    match = f'telemetry_i_ma{{device="{victoria_rig.id}"}}'
    victoria.wait_for_samples(match, 1)
    victoria_rig.device.publish(wire, leaf="telemetry")  # a resend: same (device, seq)
    victoria_rig.telemetry(2, t0 + 10, i_ma=701)
    victoria.wait_for_samples(match, 2)
    gw = victoria_rig.gateway
    victoria_rig.wait(lambda: gw.metric("hg_gateway_delivered_total", sink=SINK) == 2,
                      "two points written")
    assert gw.metric("hg_gateway_duplicates_total") == 1
    assert len(victoria_rig.rows()) == 2
    assert series(victoria, match)["telemetry_i_ma"][1] == [(t0, 700), (t0 + 10, 701)]


def test_dead_server_backs_off_and_writes_everything_once_when_back(
        victoria_rig: Rig, victoria) -> None:  # noqa: ANN001
    t0 = int(time.time() * 1000) - 5000
    match = f'telemetry_leak_ua{{device="{victoria_rig.id}"}}'
    gw = victoria_rig.gateway
    victoria.stop()
    try:
        for seq in range(1, 6):
            victoria_rig.telemetry(seq, t0 + seq, leak_ua=seq * 10)
        victoria_rig.wait(lambda: len(victoria_rig.rows()) == 5, "five points in the lane")
        victoria_rig.wait(lambda: gw.metric("hg_gateway_sink_failures_total", sink=SINK) >= 2,
                          "failed writes while the server is down")
        assert gw.metric("hg_gateway_outbox_depth", sink=SINK) == 5
        assert "timeseries write failed" in gw.logs()
    finally:
        victoria.start()
    found = victoria.wait_for_samples(match, 5, timeout=WAIT)
    assert found[0]["timestamps"] == [t0 + s for s in range(1, 6)]
    assert found[0]["values"] == [s * 10 for s in range(1, 6)]
    victoria_rig.wait(lambda: gw.metric("hg_gateway_outbox_depth", sink=SINK) == 0,
                      "backlog drained")
    assert gw.metric("hg_gateway_delivered_total", sink=SINK) == 5  # each written once


def test_heartbeat_numbers_are_points_and_the_heartbeat_still_reaches_the_centre(
        victoria_rig: Rig, victoria) -> None:  # noqa: ANN001
    ts = int(time.time() * 1000) - 2000
    wire = protocol.encode(victoria_rig.key, victoria_rig.id, 1, "heartbeat", "periodic", 0,
                           {"up_s": 120, "rssi": -61, "fw": "1.2.0"}, ts)
    victoria_rig.device.publish(wire, leaf="heartbeat")
    found = victoria.wait_for_samples(f'heartbeat_rssi{{device="{victoria_rig.id}"}}', 1)
    assert (found[0]["timestamps"], found[0]["values"]) == ([ts], [-61])
    assert not victoria.export(f'{{__name__=~"heartbeat_fw.*",device="{victoria_rig.id}"}}')
    victoria_rig.wait(lambda: victoria_rig.centre.seqs(victoria_rig.id) == [1],
                      "heartbeat at the centre")


def test_without_a_server_telemetry_stays_in_the_embedded_table(mosquitto, tmp_path: Path) -> None:  # noqa: ANN001
    rig = Rig(mosquitto, tmp_path, "")
    try:
        ts = int(time.time() * 1000) - 1000
        rig.telemetry(1, ts, i_ma=5)
        rig.wait(lambda: len(rig.rows()) == 1, "the point in the telemetry table")
        assert rig.rows() == [(rig.id, 1, "telemetry", ts, '{"i_ma":5}')]  # as on the wire
        assert rig.centre.seqs(rig.id) == []  # telemetry is not the centre's
    finally:
        rig.close()


def test_influxdb1_v1_write_overwrites_a_replay(mosquitto, influxdb1, tmp_path: Path) -> None:  # noqa: ANN001
    influxdb1.create_database("hgtest")
    rig = Rig(mosquitto, tmp_path, f'\n[timeseries]\nurl = "{influxdb1.url}"\napi = "v1"\n'
              'bucket = "hgtest"\nbackoff_min_s = 0.1\nbackoff_max_s = 0.5\n')
    try:
        ts = int(time.time() * 1000) - 1000
        rig.telemetry(1, ts, i_ma=42)

        def rows() -> list:
            res = influxdb1.query("hgtest", f"SELECT * FROM telemetry WHERE device = '{rig.id}'",
                                  epoch="ms")["results"][0]
            return res["series"][0]["values"] if "series" in res else []

        rig.wait(lambda: len(rows()) == 1, "the point in InfluxDB")
        res = influxdb1.query("hgtest", "SELECT * FROM telemetry", epoch="ms")
        cols = res["results"][0]["series"][0]["columns"]
        point = dict(zip(cols, rows()[0], strict=True))
        assert point == {"time": ts, "device": rig.id, "device_type": "sensor",
                         "household": "H-0301", "grid": "G-03", "i_ma": 42}
        # the sink rewriting what it wrote (a kill before the cursor was saved) overwrites
        rig.gateway.stop()
        with sqlite3.connect(rig.db) as db:
            db.execute("UPDATE counters SET value = 0 WHERE name = 'cursor:timeseries'")
        rig.gateway.start()
        rig.telemetry(2, ts + 5, i_ma=43)
        rig.wait(lambda: len(rows()) == 2, "the second point")
        rig.wait(lambda: rig.gateway.metric("hg_gateway_delivered_total", sink=SINK) == 2,
                 "the first point written again after the restart, with the second")
        assert [r[cols.index("i_ma")] for r in rows()] == [42, 43]
    finally:
        rig.close()


# --- without the gateway process ---------------------------------------------------

def point(seq: int, **data: int) -> Point:
    return Point(device=SENSOR, seq=seq, kind="telemetry", event_time_ms=1_700_000_000_000 + seq,
                 gateway_time_ms=1_700_000_000_000 + seq, data=data)


def delivered() -> float:
    return REGISTRY.get_sample_value("hg_gateway_delivered_total", {"sink": SINK}) or 0.0


def test_restarted_sink_resumes_after_its_cursor(victoria, tmp_path: Path) -> None:  # noqa: ANN001
    dev = f"hg-s-{secrets.token_hex(3)}"
    store = Store(tmp_path / "gw.db", sinks=("centre",))
    cfg = TimeseriesSection(url=victoria.influx_url)
    pts = [Point(dev, s, "telemetry", 1_700_000_000_000 + s, 0, {"n": s}) for s in (1, 2, 3)]
    store.insert_points(pts)
    sink = TimeseriesSink(cfg, store, lambda d: None)
    before = delivered()
    assert sink.deliver_once() == 3 and sink.deliver_once() == 0
    sink.close()
    store.close()
    store = Store(tmp_path / "gw.db", sinks=("centre",))  # a restart
    store.insert_points([Point(dev, 4, "telemetry", 1_700_000_000_004, 0, {"n": 4})])
    sink = TimeseriesSink(cfg, store, lambda d: None)
    assert sink.deliver_once() == 1
    sink.close()
    assert delivered() == before + 4
    found = victoria.wait_for_samples(f'telemetry_n{{device="{dev}"}}', 4)
    assert found[0]["values"] == [1, 2, 3, 4]


def test_point_without_integer_fields_has_no_line() -> None:
    enc = Encoder(lambda d: None)
    assert enc.encode([point(1, fw=1)])[1:] == (1, 0)
    p = Point(SENSOR, 2, "heartbeat", 5, 5, {"fw": "1.0", "ok": True})
    assert enc.encode([p]) == (b"", 0, 1)


def test_line_protocol_integers_only_with_escaped_names_and_tags() -> None:
    entry = {"type": "sensor", "household": "H 1,x=y", "grid": ""}
    assert lineproto.series("telemetry", SENSOR, entry) == (
        f"telemetry,device={SENSOR},device_type=sensor,household=H\\ 1\\,x\\=y")
    assert lineproto.series("tele metry,x", "d", {"type": "", "grid": "a\nb\tc"}) == (
        "tele\\ metry\\,x,device=d,grid=a\\nb\\tc")
    enc = Encoder({SENSOR: entry}.get)
    # integers with `i` (negative and the protocol's largest too); booleans,
    # strings and floats are no fields (a float would clash with an integer field)
    data = {"a": 1, "b": -7, "big": 2**53, "c": 1.5, "ok": True, "s": "x", "odd key=,": 3}
    body, lines, empty = enc.encode([Point(SENSOR, 1, "telemetry", 1_700_000_000_001, 0, data)])
    assert (lines, empty) == (1, 0)
    assert body.decode() == (f"telemetry,device={SENSOR},device_type=sensor,"
                             f"household=H\\ 1\\,x\\=y a=1i,b=-7i,big={2**53}i,"
                             "odd\\ key\\=\\,=3i 1700000000001")
    body, lines, _ = enc.encode([point(1, n=1), point(2, n=2)])  # one line a point
    assert body.split(b"\n") == [f"telemetry,device={SENSOR},device_type=sensor,"
                                  f"household=H\\ 1\\,x\\=y n={n}i 170000000000{n}".encode()
                                  for n in (1, 2)] and lines == 2


def test_escaped_tags_arrive_as_they_are_in_the_registry(victoria, tmp_path: Path) -> None:  # noqa: ANN001
    dev = f"hg-s-{secrets.token_hex(3)}"
    entry = {"type": "sensor", "household": "H 12,东区=3", "grid": "G\\7 b"}
    store = Store(tmp_path / "gw.db", sinks=("centre",))
    sink = TimeseriesSink(TimeseriesSection(url=victoria.influx_url), store, {dev: entry}.get)
    sink.offer(store.insert_points([Point(dev, 1, "telemetry", 1_700_000_000_001, 0,
                                          {"i_ma": -5, "flag": False})]))
    assert sink.deliver_once() == 1
    sink.close()
    found = victoria.wait_for_samples(f'telemetry_i_ma{{device="{dev}"}}', 1)
    assert {k: v for k, v in found[0]["metric"].items() if k != "__name__"} == {
        "device": dev, "device_type": "sensor", "household": "H 12,东区=3", "grid": "G\\7 b"}
    assert (found[0]["timestamps"], found[0]["values"]) == ([1_700_000_000_001], [-5])
    assert not victoria.export(f'telemetry_flag{{device="{dev}"}}')


# --- points offered in memory, the store as the fallback ---------------------------

class Sink:
    """A store and a time-series sink on it (not started: rounds run by hand)."""

    def __init__(self, victoria, tmp: Path) -> None:  # noqa: ANN001
        self.dev = f"hg-s-{secrets.token_hex(3)}"
        self.victoria = victoria
        self.tmp = tmp
        self.store = Store(tmp / "gw.db", sinks=("centre",))
        self.sink = self.new()

    def new(self) -> TimeseriesSink:
        return TimeseriesSink(TimeseriesSection(url=self.victoria.influx_url), self.store,
                              lambda d: None)

    def points(self, seqs: range) -> list[Point]:
        return [Point(self.dev, s, "telemetry", 1_700_000_000_000 + s, 0, {"n": s})
                for s in seqs]

    def commit(self, seqs: range, offer: bool = True) -> None:
        """Commit as the lane does, and offer the batch to the sink."""
        batch = self.store.insert_points(self.points(seqs))
        if offer:
            self.sink.offer(batch)

    def drain(self) -> int:
        """Rounds until one moves nothing; the points written."""
        before = delivered()
        while self.sink.deliver_once():
            pass
        return int(delivered() - before)

    def samples(self, count: int) -> list[tuple[int, float]]:
        found = self.victoria.wait_for_samples(f'telemetry_n{{device="{self.dev}"}}', count)
        return list(zip(found[0]["timestamps"], found[0]["values"], strict=True))


@pytest.fixture
def rig_sink(victoria, tmp_path: Path) -> Iterator[Sink]:  # noqa: ANN001
    s = Sink(victoria, tmp_path)
    yield s
    s.sink.writer.close()
    s.sink.client.close()


def expected(seqs: range) -> list[tuple[int, float]]:
    return [(1_700_000_000_000 + s, s) for s in seqs]


def test_offered_batches_are_written_without_reading_the_store(rig_sink: Sink) -> None:
    rig_sink.commit(range(1, 301))
    rig_sink.commit(range(301, 451))
    with sqlite3.connect(rig_sink.store.path) as db:
        db.execute("DELETE FROM telemetry")  # a read would find nothing now
    assert rig_sink.drain() == 450
    assert rig_sink.samples(450) == expected(range(1, 451))
    assert rig_sink.sink.cursor == 450


def test_what_was_not_offered_is_read_from_the_store_in_order(rig_sink: Sink) -> None:
    rig_sink.commit(range(1, 11))
    # the event lane commits a heartbeat's point (not offered), then the lane goes on
    hb = Event(rig_sink.dev, 11, "heartbeat", "periodic", 1_700_000_000_011, None, 0, 0, None,
               {"n": 11})
    rig_sink.store.insert(hb, Point(rig_sink.dev, 11, "heartbeat", 1_700_000_000_011, 0,
                                    {"n": 11}))
    rig_sink.commit(range(12, 21))
    rig_sink.commit(range(21, 31), offer=False)  # e.g. while the sink was behind
    rig_sink.commit(range(31, 41))
    assert rig_sink.drain() == 40
    got = rig_sink.samples(39)
    assert got == [x for x in expected(range(1, 41)) if x[1] != 11]
    hbs = rig_sink.victoria.wait_for_samples(f'heartbeat_n{{device="{rig_sink.dev}"}}', 1)
    assert hbs[0]["values"] == [11]
    assert rig_sink.sink.cursor == 40 and rig_sink.drain() == 0


def test_a_sink_behind_keeps_memory_bounded_and_reads_the_rest(
        rig_sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeseries, "MEMORY_MAX", 250)
    for first in range(1, 1001, 100):
        rig_sink.commit(range(first, first + 100))
    assert rig_sink.sink._offered_n <= 250  # two batches kept, the rest left in the store
    assert rig_sink.drain() == 1000  # each point once
    assert rig_sink.samples(1000) == expected(range(1, 1001))


def test_a_batch_larger_than_batch_size_is_split(victoria, tmp_path: Path) -> None:  # noqa: ANN001
    s = Sink(victoria, tmp_path)
    s.sink = TimeseriesSink(TimeseriesSection(url=victoria.influx_url, batch_size=64), s.store,
                            lambda d: None)
    s.commit(range(1, 201))
    assert s.sink.deliver_once() == 64 and s.sink.cursor == 64
    assert s.drain() == 200 - 64
    assert s.samples(200) == expected(range(1, 201))
    s.sink.close()


def test_dead_server_then_back_writes_everything(rig_sink: Sink) -> None:
    rig_sink.victoria.stop()
    try:
        rig_sink.commit(range(1, 51))
        with pytest.raises(Exception):  # noqa: B017 - whatever the client raises for a refused connection
            rig_sink.sink.deliver_once()
        rig_sink.commit(range(51, 101))
        with pytest.raises(Exception):  # noqa: B017
            rig_sink.sink.deliver_once()
        assert rig_sink.sink.cursor == 0
        assert rig_sink.sink.backlog()[0] == 100
    finally:
        rig_sink.victoria.start()
    assert rig_sink.drain() == 100
    assert rig_sink.samples(100) == expected(range(1, 101))
    assert rig_sink.sink.backlog()[0] == 0


def test_a_killed_sink_replays_from_its_saved_cursor(rig_sink: Sink) -> None:
    rig_sink.commit(range(1, 101))
    assert rig_sink.drain() == 100
    rig_sink.sink.close()  # stopping saves the cursor
    assert rig_sink.store.cursor(SINK) == 100
    rig_sink.sink = rig_sink.new()
    rig_sink.commit(range(101, 201))
    assert rig_sink.drain() == 100  # within CURSOR_EVERY_S: not saved yet ...
    assert rig_sink.store.cursor(SINK) == 100
    rig_sink.sink = rig_sink.new()  # ... and the process is killed: no close()
    rig_sink.commit(range(201, 301))
    assert rig_sink.drain() == 200  # 101-200 again (they overwrite), then 201-300
    assert rig_sink.samples(300) == expected(range(1, 301))


def test_gateway_killed_mid_stream_loses_no_point_for_the_time_series(
        victoria_rig: Rig, victoria) -> None:  # noqa: ANN001
    t0 = int(time.time() * 1000) - 3000  # within the verifier's clock window
    n = 600
    sender = threading.Thread(target=lambda: [
        victoria_rig.telemetry(seq, t0 + seq, n=seq) for seq in range(1, n + 1)])
    sender.start()
    victoria_rig.wait(lambda: len(victoria_rig.rows()) >= 100, "some points stored")
    victoria_rig.gateway.kill()  # SIGKILL mid-stream: no PUBACK, no cursor saved
    sender.join(WAIT)
    victoria_rig.gateway.start()
    match = f'telemetry_n{{device="{victoria_rig.id}"}}'
    found = victoria.wait_for_samples(match, n, timeout=WAIT)
    assert found[0]["timestamps"] == [t0 + s for s in range(1, n + 1)]
    assert found[0]["values"] == list(range(1, n + 1))


def test_a_batch_gets_its_ids_from_the_store_never_below_a_saved_cursor(tmp_path: Path) -> None:
    store = Store(tmp_path / "gw.db", sinks=("centre",))
    batch = store.insert_points([point(1, n=1), point(2, n=2)])
    assert (batch.after, batch.last, [p.id for p in batch.points]) == (0, 2, [1, 2])
    store.set_cursor(SINK, 10)
    with store.transaction() as db:
        db.execute("DELETE FROM telemetry")  # retention took every row the sink wrote
    batch = store.insert_points([point(3, n=3), point(4, n=4)])
    assert (batch.after, batch.last, [p.id for p in batch.points]) == (10, 12, [11, 12])
    # a (device, seq) stored already is not in the batch; its id stays unused
    batch = store.insert_points([point(4, n=4), point(5, n=5)])
    assert (batch.after, batch.last, [(p.seq, p.id) for p in batch.points]) == (12, 14, [(5, 14)])
    assert [(p.seq, p.id) for p in store.points_after(0, 10)] == [(3, 11), (4, 12), (5, 14)]


def test_full_lane_sheds_telemetry_with_a_reason(tmp_path: Path) -> None:
    store = Store(tmp_path / "gw.db", sinks=("centre",))
    lane = TelemetryLane(store, queue_max=10, wait_s=0.2)  # not started: nothing drains it
    before = REGISTRY.get_sample_value(
        "hg_gateway_shed_total", {"lane": "telemetry", "reason": "queue_full"}) or 0.0
    outcomes = [lane.put(point(s, n=s), "telemetry") for s in range(1, 13)]
    shed = REGISTRY.get_sample_value(
        "hg_gateway_shed_total", {"lane": "telemetry", "reason": "queue_full"})
    assert shed == before + 2
    released: list[int] = []
    for i, d in enumerate(outcomes):
        d.attach(functools.partial(released.append, i))
    assert released == [10, 11]  # the shed ones are PUBACKed at once; the rest wait
    lane.start()
    wait_until(lambda: len(released) == 12, 5, "the queued points committed and released")
    lane.stop()
    assert [p.seq for p in store.points_after(0, 100)] == list(range(1, 11))
    # the shed count is kept with the points: it survives a restart, for reconciliation
    assert Store(tmp_path / "gw.db", sinks=("centre",)).counter(SHED_COUNTER) == 2


def test_a_full_lane_that_drains_makes_the_source_wait_and_sheds_nothing(tmp_path: Path) -> None:
    # a backlog (the broker handing over what queued during an outage) fills
    # the lane faster than one commit: the source waits for room instead
    store = Store(tmp_path / "gw.db", sinks=("centre",))
    lane = TelemetryLane(store, queue_max=10, wait_s=5.0)
    lane.start()
    released: list[int] = []
    for s in range(1, 301):
        lane.put(point(s, n=s), "telemetry").attach(functools.partial(released.append, s))
    wait_until(lambda: len(released) == 300, 10, "every point committed and released")
    lane.stop()
    assert lane.shed == 0 and not lane.overloaded
    assert [p.seq for p in store.points_after(0, 1000)] == list(range(1, 301))
