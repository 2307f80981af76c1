"""Reports (GET /api/v1/reports, .csv) on SQLite and PostgreSQL against a
seeded set with known answers: eight alarms at known times (Asia/Shanghai)
with known outcomes and step times, two hazards, one offline spell.

    id day time  device  type         outcome  ack  verify dispatch resolve  by
    1  0   09:00 d1 (A)  fire         genuine  10   40     100      1000     olga
    2  0   10:00 d1 (A)  medical      false    20   60     -        300      olga
    3  0   11:00 d2 (B)  fire         false    40!  100!   -        500      admin
    4  1   09:00 d2 (B)  fire         test     5    30     -        200      admin
    5  1   12:00 d3 (-)  panic        -        open, never acknowledged (late twice)
    6  2   08:00 d1 (A)  fire         genuine  30   90     150      2000     olga/admin resolves
    7  2   09:00 d2 (B)  offline      -        closed by the system after 2 h
    8  2   10:00 d1 (A)  low_battery  -        15 (olga), then open (verify late)

(seconds from receipt; ! = later than the SLA of 30 s / 90 s)

Every figure is checked in all, per day and per place, and per day x place.

The three-colour rule is set to a 3-day window, yellow at 1 confirmed
incident, red at 2: d1's household (社区A/小区1) has genuine alarms verified
on day 0 and day 2, d2's (社区B/小区2) none."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from dashboard.app import create_app
from dashboard.db import make_engine, make_sessions
from dashboard.hazards import Hazard
from dashboard.models import Alarm, AlarmAudit, Device, Event, GridCell, Household, User
from dashboard.reports import percentile
from dashboard.restore import SYSTEM_USER
from dashboard.settings import Settings
from tests.test_centre_api import ADMIN, ADMIN_PASSWORD, TOKEN, login

ZONE = ZoneInfo("Asia/Shanghai")
RANGE = "from=2026-03-02&to=2026-03-04"


def t(day: int, hour: int) -> int:
    return int(datetime(2026, 3, 2 + day, hour, tzinfo=ZONE).timestamp() * 1000)


# id: (day, hour, device, type, outcome, state, {step: (seconds, who)})
ALARMS: dict[int, tuple[int, int, str, str, str | None, str, dict[str, tuple[int, str]]]] = {
    1: (0, 9, "d1", "fire", "genuine", "resolved", {
        "ack": (10, "olga"), "verify": (40, "olga"), "dispatch": (100, "olga"),
        "resolve": (1000, "olga")}),
    2: (0, 10, "d1", "medical", "false", "resolved", {
        "ack": (20, "olga"), "verify": (60, "olga"), "resolve": (300, "olga")}),
    3: (0, 11, "d2", "fire", "false", "resolved", {
        "ack": (40, ADMIN), "verify": (100, ADMIN), "resolve": (500, ADMIN)}),
    4: (1, 9, "d2", "fire", "test", "resolved", {
        "ack": (5, ADMIN), "verify": (30, ADMIN), "resolve": (200, ADMIN)}),
    5: (1, 12, "d3", "panic", None, "received", {}),
    6: (2, 8, "d1", "fire", "genuine", "resolved", {
        "ack": (30, "olga"), "verify": (90, "olga"), "dispatch": (150, "olga"),
        "resolve": (2000, ADMIN)}),
    7: (2, 9, "d2", "offline", None, "resolved", {"restore": (7200, SYSTEM_USER)}),
    8: (2, 10, "d1", "low_battery", None, "acknowledged", {"ack": (15, "olga")}),
}
# grid workers: the dispatch that sent the task to a worker's phone, then the
# worker's steps, (seconds from receipt, action, worker); alarm 6's first
# worker never accepts, is marked overdue, and the task goes to a second one
DISPATCHED_TO = {1: "zhang", 6: "zhang"}
WORKER_STEPS = {1: [(160, "accept", "zhang"), (700, "arrive", "zhang")],
                6: [(450, "overdue", "zhang"), (500, "dispatch", "li"),
                    (520, "accept", "li"), (1100, "arrive", "li")]}
STAMP = {"ack": "acked_ms", "verify": "verified_ms", "resolve": "resolved_ms",
         "restore": "resolved_ms"}


def _seed(url: str) -> None:
    engine = make_engine(url)
    try:
        with make_sessions(engine)() as s:
            users = {u.username: u for u in s.query(User)}
            for name in ("olga", SYSTEM_USER):
                if name not in users:
                    users[name] = User(username=name, password_hash="x", role="operator",
                                       created_ms=0)
                    s.add(users[name])
            s.add_all([GridCell(code="G1", name="G1", community="社区A"),
                       GridCell(code="G2", name="G2", community="社区B")])
            s.flush()
            cells = {c.code: c.id for c in s.query(GridCell)}
            s.add_all([Household(code="H1", address="1", compound="小区1", community="社区A",
                                 grid_cell_id=cells["G1"]),
                       Household(code="H2", address="2", compound="小区2", community="社区B",
                                 grid_cell_id=cells["G2"])])
            s.flush()
            homes = {h.code: h.id for h in s.query(Household)}
            s.add_all([Device(device_id="d1", type="button", household_id=homes["H1"],
                              created_ms=0),
                       Device(device_id="d2", type="button", household_id=homes["H2"],
                              created_ms=0)])
            for alarm_id, (day, hour, dev, typ, outcome, state, steps) in ALARMS.items():
                at = t(day, hour)
                s.add(Event(id=alarm_id, device_id=dev, seq=alarm_id, kind="alarm", type=typ,
                            event_time_ms=at, gateway_time_ms=at, received_ms=at, age_ms=0,
                            data={}, gateway="gw-1"))
                s.flush()
                alarm = Alarm(id=alarm_id, event_id=alarm_id, device_id=dev, type=typ,
                              priority=1, state=state, created_ms=at, outcome=outcome)
                for step, (sec, _who) in steps.items():
                    if step in STAMP:
                        setattr(alarm, STAMP[step], at + sec * 1000)
                s.add(alarm)
                s.flush()
                for step, (sec, who) in steps.items():
                    worker = DISPATCHED_TO.get(alarm_id) if step == "dispatch" else None
                    s.add(AlarmAudit(alarm_id=alarm_id, at_ms=at + sec * 1000,
                                     user_id=users[who].id, username=who, action=step,
                                     from_state="x", to_state="y", worker=worker))
                s.flush()
                for sec, action, worker in WORKER_STEPS.get(alarm_id, []):
                    s.add(AlarmAudit(alarm_id=alarm_id, at_ms=at + sec * 1000,
                                     user_id=users["olga"].id, username="olga",
                                     action=action, from_state="x", to_state="y",
                                     worker=worker))
            s.add_all([Hazard(alarm_id=6, device_id="d1", type="over_temp", opened_ms=t(2, 8),
                              state="rectified", rectified_ms=t(2, 18), rectified_by="olga"),
                       Hazard(alarm_id=8, device_id="d1", type="over_temp",
                              opened_ms=t(2, 10), state="open")])
            s.commit()
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    url = (str(request.getfixturevalue("postgres").fresh_database())
           if request.param == "postgresql" else f"sqlite:///{tmp_path / 'centre.db'}")
    app = create_app(Settings(database_url=url, gateway_tokens=[TOKEN],
                              bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}",
                              rating_window_days=3, rating_yellow=1, rating_red=2))
    _seed(url)
    with TestClient(app) as c:
        login(c, ADMIN, ADMIN_PASSWORD)
        yield c


def _get(c: TestClient, query: str) -> dict[str, Any]:
    r = c.get("/api/v1/reports?" + query)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5, 40, 10, 15, 20, 30], 50) == 15
    assert percentile([5, 40, 10, 15, 20, 30], 90) == 40
    assert percentile([7], 90) == 7


def test_counts_rates_and_times_match_the_known_answers(client: TestClient) -> None:
    rep = _get(client, RANGE)
    counts = ("alarms", "by_type", "by_outcome", "false_rate", "ack_late", "verify_late")
    assert {k: rep["totals"][k] for k in counts} == {
        "alarms": 8,
        "by_type": {"fire": 4, "low_battery": 1, "medical": 1, "offline": 1, "panic": 1},
        "by_outcome": {"genuine": 2, "false": 2, "test": 1, "none": 3},
        "false_rate": 0.5, "ack_late": 2, "verify_late": 3}
    assert [(s["bucket"], s["alarms"], s["false_rate"]) for s in rep["series"]] == [
        ("2026-03-02", 3, pytest.approx(2 / 3)), ("2026-03-03", 2, None),
        ("2026-03-04", 3, 0.0)]
    assert rep["timings"] == {
        "ack": {"n": 6, "p50": 15, "p90": 40}, "verify": {"n": 5, "p50": 60, "p90": 100},
        "dispatch": {"n": 2, "p50": 100, "p90": 150},
        "resolve": {"n": 5, "p50": 500, "p90": 2000}}
    ops = {o["operator"]: o for o in rep["operators"]}
    assert set(ops) == {ADMIN, "olga"}  # the system's restore is nobody's time
    assert ops["olga"]["ack"] == {"n": 4, "p50": 15, "p90": 30}
    assert ops["olga"]["verify"] == {"n": 3, "p50": 60, "p90": 90}
    assert ops["olga"]["dispatch"] == {"n": 2, "p50": 100, "p90": 150}
    assert ops["olga"]["resolve"] == {"n": 2, "p50": 300, "p90": 1000}
    assert ops[ADMIN]["ack"] == {"n": 2, "p50": 5, "p90": 40}
    assert ops[ADMIN]["dispatch"] == {"n": 0, "p50": None, "p90": None}
    assert ops[ADMIN]["resolve"] == {"n": 3, "p50": 500, "p90": 2000}
    assert rep["hazards"] == {"opened": 2, "rectified": 1, "still_open": 1, "open_now": 1,
                              "rectify_hours": {"n": 1, "p50": 10, "p90": 10}}
    assert rep["devices"] == {"offline_alarms": 1, "offline_devices": 1, "offline_hours": 2.0,
                              "low_battery_alarms": 1, "low_battery_devices": 1}
    assert rep["sla"] == {"ack_s": 30, "verify_s": 90}
    totals = rep["totals"]
    assert (totals["timings"], totals["devices"]) == (rep["timings"], rep["devices"])
    assert totals["hazards"] == {"opened": 2, "rectified": 1, "still_open": 1,
                                 "rectify_hours": {"n": 1, "p50": 10, "p90": 10}}


def _spread(n: int, p50: float | None = None, p90: float | None = None) -> dict[str, Any]:
    return {"n": n, "p50": p50, "p90": p90}


NO_HAZARD = {"opened": 0, "rectified": 0, "still_open": 0, "rectify_hours": _spread(0)}
AVAILABLE = {"offline_alarms": 0, "offline_devices": 0, "offline_hours": 0,
             "low_battery_alarms": 0, "low_battery_devices": 0}
# per day x community: (ack, verify, dispatch, resolve) times, (ack_late,
# verify_late), hazards opened in it, device availability
PER_DAY_AND_COMMUNITY = {
    ("2026-03-02", "社区A"): ((_spread(2, 10, 20), _spread(2, 40, 60), _spread(1, 100, 100),
                             _spread(2, 300, 1000)), (0, 0), NO_HAZARD, AVAILABLE),
    ("2026-03-02", "社区B"): ((_spread(1, 40, 40), _spread(1, 100, 100), _spread(0),
                             _spread(1, 500, 500)), (1, 1), NO_HAZARD, AVAILABLE),
    ("2026-03-03", ""): ((_spread(0), _spread(0), _spread(0), _spread(0)), (1, 1), NO_HAZARD,
                         AVAILABLE),
    ("2026-03-03", "社区B"): ((_spread(1, 5, 5), _spread(1, 30, 30), _spread(0),
                             _spread(1, 200, 200)), (0, 0), NO_HAZARD, AVAILABLE),
    ("2026-03-04", "社区A"): ((_spread(2, 15, 30), _spread(1, 90, 90), _spread(1, 150, 150),
                             _spread(1, 2000, 2000)), (0, 1),
                            {"opened": 2, "rectified": 1, "still_open": 1,
                             "rectify_hours": _spread(1, 10, 10)},
                            {**AVAILABLE, "low_battery_alarms": 1, "low_battery_devices": 1}),
    # the offline spell closed by the system: in no resolve time
    ("2026-03-04", "社区B"): ((_spread(0), _spread(0), _spread(0), _spread(0)), (0, 0),
                            NO_HAZARD, {**AVAILABLE, "offline_alarms": 1, "offline_devices": 1,
                                        "offline_hours": 2.0}),
}


def test_times_breaches_hazards_and_devices_per_period_and_place(client: TestClient) -> None:
    rep = _get(client, RANGE + "&by=community")
    got = {(r["bucket"], r["place"]): (
        tuple(r["timings"][s] for s in ("ack", "verify", "dispatch", "resolve")),
        (r["ack_late"], r["verify_late"]), r["hazards"], r["devices"]) for r in rep["rows"]}
    assert got == PER_DAY_AND_COMMUNITY
    # per place over the range, and per period over all places
    places = {p["place"]: p for p in rep["places"]}
    assert places["社区A"]["timings"]["ack"] == _spread(4, 15, 30)
    assert places["社区A"]["hazards"]["opened"] == 2
    assert places["社区B"]["devices"]["offline_hours"] == 2.0
    days = {d["bucket"]: d for d in rep["series"]}
    assert days["2026-03-02"]["timings"]["resolve"] == _spread(3, 500, 1000)
    assert days["2026-03-04"]["hazards"]["still_open"] == 1
    week = _get(client, RANGE + "&bucket=week&by=grid_cell")["rows"]
    assert [(r["bucket"], r["place"], r["timings"]["ack"], r["hazards"]["opened"])
            for r in week] == [("2026-03-02", "", _spread(0), 0),
                               ("2026-03-02", "G1", _spread(4, 15, 30), 2),
                               ("2026-03-02", "G2", _spread(2, 5, 40), 0)]


def test_grid_worker_figures(client: TestClient) -> None:
    workers = _get(client, RANGE)["workers"]
    assert workers == {
        "accept": {"n": 2, "p50": 20, "p90": 60}, "arrive": {"n": 2, "p50": 600, "p90": 600},
        "overdue": 1, "by_worker": [
            {"worker": "li", "overdue": 0, "accept": {"n": 1, "p50": 20, "p90": 20},
             "arrive": {"n": 1, "p50": 600, "p90": 600}},
            {"worker": "zhang", "overdue": 1, "accept": {"n": 1, "p50": 60, "p90": 60},
             "arrive": {"n": 1, "p50": 600, "p90": 600}}]}
    r = client.get("/api/v1/reports/workers.csv?" + RANGE)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [tuple(x.values()) for x in rows] == [
        ("", "2", "20.0", "60.0", "2", "600.0", "600.0", "1"),
        ("li", "1", "20.0", "20.0", "1", "600.0", "600.0", "0"),
        ("zhang", "1", "60.0", "60.0", "1", "600.0", "600.0", "1")]
    assert list(rows[0]) == ["worker", "accept_n", "accept_p50_s", "accept_p90_s",
                             "arrive_n", "arrive_p50_s", "arrive_p90_s", "overdue"]


def test_per_place_and_per_period(client: TestClient) -> None:
    rep = _get(client, RANGE + "&by=community")
    places = {p["place"]: p for p in rep["places"]}
    assert {p: (v["alarms"], v["false_rate"], v["ack_late"], v["verify_late"])
            for p, v in places.items()} == {
        "社区A": (4, pytest.approx(1 / 3), 0, 1), "社区B": (3, 1.0, 1, 1), "": (1, None, 1, 1)}
    assert [(r["bucket"], r["place"], r["alarms"]) for r in rep["rows"]] == [
        ("2026-03-02", "社区A", 2), ("2026-03-02", "社区B", 1), ("2026-03-03", "", 1),
        ("2026-03-03", "社区B", 1), ("2026-03-04", "社区A", 2), ("2026-03-04", "社区B", 1)]
    cells = {p["place"]: p["alarms"] for p in _get(client, RANGE + "&by=grid_cell")["places"]}
    assert cells == {"G1": 4, "G2": 3, "": 1}
    week = _get(client, RANGE + "&bucket=week")["series"]
    assert [(s["bucket"], s["alarms"]) for s in week] == [("2026-03-02", 8)]
    month = _get(client, "from=2026-02-01&to=2026-03-31&bucket=month")["series"]
    assert [(s["bucket"], s["alarms"]) for s in month] == [("2026-03-01", 8)]
    # the range ends at the end of its last day in the centre's timezone
    assert _get(client, "from=2026-03-02&to=2026-03-02")["totals"]["alarms"] == 3
    assert _get(client, "from=2026-03-05&to=2026-03-06")["totals"]["alarms"] == 0


def test_csv_has_the_period_by_place_table(client: TestClient) -> None:
    r = client.get("/api/v1/reports.csv?" + RANGE + "&by=grid_cell")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    first = rows[0]
    assert (first["bucket"], first["place"], first["alarms"], first["false"],
            first["false_rate"], first["fire"], first["medical"]) == (
        "2026-03-02", "G1", "2", "1", "0.5000", "1", "1")
    assert sum(int(x["alarms"]) for x in rows) == 8
    assert (first["ack_n"], first["ack_p50_s"], first["ack_p90_s"], first["dispatch_n"],
            first["resolve_p90_s"], first["hazards_opened"], first["rectify_p50_h"]) == (
        "2", "10.0", "20.0", "1", "1000.0", "0", "")
    last = rows[-1]
    assert (last["bucket"], last["place"], last["offline_alarms"], last["offline_hours"],
            last["resolve_n"]) == ("2026-03-04", "G2", "1", "2.0", "0")
    hazards = rows[-2]
    assert (hazards["place"], hazards["hazards_opened"], hazards["hazards_rectified"],
            hazards["hazards_still_open"], hazards["rectify_p50_h"],
            hazards["low_battery_alarms"]) == ("G1", "2", "1", "1", "10.0", "1")


def test_bad_ranges_are_refused(client: TestClient) -> None:
    for query in ("from=2026-03-04&to=2026-03-02", "bucket=year", "by=street",
                  "from=2000-01-01&to=2026-01-01"):
        assert client.get("/api/v1/reports?" + query).status_code == 422, query


def _colours(rep: dict[str, Any]) -> dict[tuple[str, str], list[tuple[str, int, str]]]:
    return {(c["community"], c["compound"]): [(p["period"], p["incidents"], p["colour"])
                                              for p in c["colours"]] for c in rep["colours"]}


def test_colour_history_per_compound_by_the_overview_rule(client: TestClient) -> None:
    rep = _get(client, "from=2026-03-01&to=2026-03-04")
    assert rep["colour_rule"] == {"window_days": 3, "yellow": 1, "red": 2}
    assert _colours(rep) == {
        ("社区A", "小区1"): [("2026-03-01", 0, "green"), ("2026-03-02", 1, "yellow"),
                           ("2026-03-03", 1, "yellow"), ("2026-03-04", 2, "red")],
        ("社区B", "小区2"): [("2026-03-01", 0, "green"), ("2026-03-02", 0, "green"),
                           ("2026-03-03", 0, "green"), ("2026-03-04", 0, "green")]}
    # each period is rated at its end: day 3 ends at the start of day 4
    assert [p["at_ms"] for p in rep["colours"][0]["colours"]] == [t(d, 0) for d in range(4)]
    # the window slides: by the end of 3-06 day 0's incident (3-02 09:00) is out
    later = _colours(_get(client, "from=2026-03-05&to=2026-03-07"))
    assert later[("社区A", "小区1")] == [("2026-03-05", 1, "yellow"),
                                       ("2026-03-06", 1, "yellow"), ("2026-03-07", 0, "green")]
    # a week from Monday, a range that ends mid-period is rated at its end
    week = _colours(_get(client, "from=2026-03-02&to=2026-03-04&bucket=week"))
    assert week[("社区A", "小区1")] == [("2026-03-02", 2, "red")]
    month = _colours(_get(client, "from=2026-02-01&to=2026-03-31&bucket=month"))
    assert month[("社区A", "小区1")] == [("2026-02-01", 0, "green"), ("2026-03-01", 0, "green")]
    # periods that have not started are left out
    assert _get(client, "from=2099-01-01&to=2099-01-02")["colours"] == []


def test_colour_history_follows_an_outcome_changed_at_resolve(client: TestClient) -> None:
    # alarm 3 (小区2, day 0 11:00) was verified genuine, then resolved as
    # false on day 2 at noon: it counts on days 0 and 1, not at day 2's end
    with client.app.state.centre.sessions() as s:  # type: ignore[attr-defined]
        rows = {a.action: a for a in s.query(AlarmAudit).filter(AlarmAudit.alarm_id == 3)}
        rows["verify"].outcome = "genuine"
        rows["resolve"].outcome, rows["resolve"].at_ms = "false", t(2, 12)
        s.commit()
    got = _colours(_get(client, "from=2026-03-02&to=2026-03-04"))
    assert got[("社区B", "小区2")] == [("2026-03-02", 1, "yellow"),
                                     ("2026-03-03", 1, "yellow"), ("2026-03-04", 0, "green")]


def test_colours_csv(client: TestClient) -> None:
    r = client.get("/api/v1/reports/colours.csv?from=2026-03-03&to=2026-03-04")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(x["community"], x["compound"], x["period"], x["incidents"], x["colour"])
            for x in rows] == [
        ("社区A", "小区1", "2026-03-03", "1", "yellow"),
        ("社区A", "小区1", "2026-03-04", "2", "red"),
        ("社区B", "小区2", "2026-03-03", "0", "green"),
        ("社区B", "小区2", "2026-03-04", "0", "green")]
