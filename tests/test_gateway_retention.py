"""The gateway's own store over time: retention (old rows every sink has
finished with go; undelivered rows, each device's newest de-dup window and
its latest supervision event stay) and the embedded telemetry served for
charts (real SQLite store, real gateway process and Mosquitto)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx

from gateway import dedup
from gateway.retention import Retention, prune
from gateway.store import SUPERVISION, Event, Point, Store
from hg import protocol
from tests.harness.proc import wait_until
from tests.test_gateway_flow import LOOPBACK, WAIT, Centre, Device, Gateway

DAY_MS = 86_400_000
WINDOW = 16
OLD = 1_000  # created_ms far in the past


def ev(dev: str, seq: int, kind: str = "alarm") -> Event:
    return Event(device=dev, seq=seq, kind=kind, type="fire", event_time_ms=seq,
                 device_time_ms=None, gateway_time_ms=OLD, age_ms=0, skew_ms=None, data={})


def pt(dev: str, seq: int) -> Point:
    return Point(device=dev, seq=seq, kind="telemetry", event_time_ms=seq,
                 gateway_time_ms=OLD, data={"v": seq})


def backdate(store: Store) -> None:
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE events SET created_ms = ?", (OLD,))


def seqs(store: Store, table: str, dev: str) -> list[int]:
    with sqlite3.connect(store.path) as db:
        return [r[0] for r in db.execute(
            f"SELECT seq FROM {table} WHERE device = ? ORDER BY seq", (dev,))]  # noqa: S608


def deliver_all(store: Store) -> None:
    pending = store.pending("centre", 1000)
    store.mark_done("centre", [(e.id, "accepted") for e in pending if e.id is not None])


def test_old_delivered_events_go_except_the_dedup_window(tmp_path: Path) -> None:
    store = Store(tmp_path / "gw.db", sinks=("centre",))
    for s in range(1, 41):
        store.insert(ev("hg-b-0001", s))
    deliver_all(store)
    assert not store.insert(ev("hg-b-0001", 3))  # a duplicate changes nothing
    backdate(store)
    assert prune(store, cutoff_ms=OLD + 1, window=WINDOW) == (40 - WINDOW, 0)
    assert seqs(store, "events", "hg-b-0001") == list(range(41 - WINDOW, 41))
    # the window rebuilt from what is left still calls an old seq a replay
    rebuilt = dedup.LocalDedup(WINDOW, store.recent_seqs(WINDOW))
    assert rebuilt.check("hg-b-0001", 3) == dedup.REPLAY
    assert rebuilt.check("hg-b-0001", 40) == dedup.DUPLICATE


def test_undelivered_and_recent_events_stay(tmp_path: Path) -> None:
    store = Store(tmp_path / "gw.db", sinks=("centre",))
    for s in range(1, 41):
        store.insert(ev("hg-b-0002", s))
    backdate(store)  # old, but the centre has none of them yet
    assert prune(store, cutoff_ms=OLD + 1, window=WINDOW) == (0, 0)
    deliver_all(store)
    assert prune(store, cutoff_ms=OLD, window=WINDOW) == (0, 0)  # not older than the cutoff
    assert len(seqs(store, "events", "hg-b-0002")) == 40


def test_latest_supervision_event_of_a_device_stays(tmp_path: Path) -> None:
    store = Store(tmp_path / "gw.db", sinks=("centre",))
    for s in range(1, 5):
        store.insert(ev("hg-b-0003", -(1000 + s), kind=SUPERVISION))
    deliver_all(store)
    backdate(store)
    prune(store, cutoff_ms=OLD + 1, window=WINDOW)
    assert seqs(store, "events", "hg-b-0003") == [-1004]
    assert list(store.last_supervision())[0][2] == -1004


def test_points_go_only_after_the_timeseries_sink_wrote_them(tmp_path: Path) -> None:
    store = Store(tmp_path / "gw.db", sinks=("centre",))
    store.insert_points([pt("hg-s-0001", s) for s in range(1, 41)])
    assert prune(store, OLD + 1, WINDOW, point_sinks=("timeseries",)) == (0, 0)
    store.set_cursor("timeseries", 10)  # the server has the first ten
    assert prune(store, OLD + 1, WINDOW, point_sinks=("timeseries",)) == (0, 10)
    store.set_cursor("timeseries", 40)
    assert prune(store, OLD + 1, WINDOW, point_sinks=("timeseries",)) == (0, 40 - WINDOW - 10)
    assert seqs(store, "telemetry", "hg-s-0001") == list(range(41 - WINDOW, 41))


def test_embedded_store_keeps_points_for_the_retention_days(tmp_path: Path) -> None:
    store = Store(tmp_path / "gw.db", sinks=("centre",))
    store.insert_points([pt("hg-s-0002", s) for s in range(1, 41)])
    keep = Retention(store, days=30, check_s=3600, window=WINDOW, point_sinks=())
    assert keep.run_once() == (0, 40 - WINDOW)  # gateway time 1970: far older than 30 days
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE telemetry SET gateway_time_ms = strftime('%s','now') * 1000")
    store.insert_points([pt("hg-s-0002", s) for s in range(41, 81)])
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE telemetry SET gateway_time_ms = strftime('%s','now') * 1000")
    assert keep.run_once() == (0, 0)  # recent points stay


def test_embedded_telemetry_is_served_for_charts(mosquitto, tmp_path: Path) -> None:  # noqa: ANN001
    """Telemetry through a real gateway process lands in its embedded store and
    comes back from GET /telemetry in event-time order; bad input gets a 400."""
    sensor = "hg-s-0301"
    key = b"k" * 32
    centre = Centre().start()
    gw = Gateway(mosquitto, tmp_path, centre, {sensor: key})
    gw.start()
    dev = Device(mosquitto, sensor, key)
    url = f"http://{LOOPBACK}:{gw.metrics_port}/telemetry"
    try:
        now = int(time.time() * 1000)
        for seq in (3, 1, 2):  # out of order on purpose
            dev.publish(protocol.encode(key, sensor, seq, "telemetry", "periodic", 0,
                                        {"leak_ma": 10 * seq}, now - 1000 * (10 - seq)),
                        "telemetry")

        def points() -> list[dict]:
            return httpx.get(url, params={"device": sensor, "since_ms": now - 60000},
                             timeout=5).json()["points"]

        wait_until(lambda: len(points()) == 3, WAIT, "three points served")
        assert [p["data"]["leak_ma"] for p in points()] == [10, 20, 30]
        assert httpx.get(url, params={"device": "Bad!"}, timeout=5).status_code == 400
        assert httpx.get(url, params={"device": sensor, "limit": "0"}, timeout=5).status_code == 400
    finally:
        dev.stop()
        gw.stop()
        centre.stop()
