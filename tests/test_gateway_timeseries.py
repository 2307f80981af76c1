"""The time-series sink and the telemetry lane: telemetry and heartbeat
points through a real gateway process (real Mosquitto, real HTTP centre)
into a real VictoriaMetrics and InfluxDB 1.x; the embedded SQLite table
when no server is configured; the cursor across a restart; shedding.
"""

from __future__ import annotations

import functools
import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from gateway.config import TimeseriesSection
from gateway.lane import TelemetryLane
from gateway.sinks.timeseries import SINK, TimeseriesSink, to_line
from gateway.store import SHED_COUNTER, Point, Store
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
        # the sink rewriting its last batch (a crash before the cursor moved) overwrites
        with sqlite3.connect(rig.db) as db:
            db.execute("UPDATE counters SET value = 0 WHERE name = 'cursor:timeseries'")
        rig.telemetry(2, ts + 5, i_ma=43)
        rig.wait(lambda: len(rows()) == 2, "the second point")
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


def test_point_without_integer_fields_is_skipped_and_counted() -> None:
    assert to_line(point(1, fw=1), None) is not None
    p = Point(SENSOR, 2, "heartbeat", 5, 5, {"fw": "1.0", "ok": True})
    assert to_line(p, {"type": "sensor"}) is None
    line = to_line(point(3, a=1), {"type": "sensor", "household": "H 1,x", "grid": ""})
    assert line == (f"telemetry,device={SENSOR},device_type=sensor,household=H\\ 1\\,x "
                    "a=1i 1700000000003")


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
