"""Grid workers in the reports (issue 19), on SQLite and PostgreSQL against
a seeded set with known answers (seconds after the alarm's receipt):

    alarm  dispatch (worker)         then                          accept  arrive
    1      60 zhang                  accept 120, arrive 660           60     600
    2      100 li, overdue 400;      accept 530, arrive 830 (zhang)   30     330
           500 re-dispatched zhang
    3      50 zhang                  accept 290, not there yet       240      -
    4      40 patrol                 (no worker's phone)               -      -

accept: 30, 60, 240 -> p50 60, p90 240; arrive: 330, 600 -> p50 330,
p90 600; overdue: 1 (li's)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard import reports
from dashboard.app import create_app
from dashboard.models import Alarm, AlarmAudit, Event, User
from dashboard.restore import SYSTEM_USER
from dashboard.settings import Settings
from tests.test_centre_api import ADMIN, ADMIN_PASSWORD, TOKEN, db_url, login  # noqa: F401

T0 = 1_772_409_600_000  # 2026-03-02 08:00 Asia/Shanghai
# alarm -> [(seconds, who, action, worker)]
TRAIL: dict[int, list[tuple[int, str, str, str | None]]] = {
    1: [(60, "olga", "dispatch", "zhang"), (120, "zhang", "accept", "zhang"),
        (660, "zhang", "arrive", "zhang"), (700, "zhang", "report", "zhang")],
    2: [(100, "olga", "dispatch", "li"), (400, SYSTEM_USER, "overdue", "li"),
        (500, "olga", "dispatch", "zhang"), (530, "zhang", "accept", "zhang"),
        (830, "zhang", "arrive", "zhang")],
    3: [(50, "olga", "dispatch", "zhang"), (290, "zhang", "accept", "zhang")],
    4: [(40, "olga", "dispatch", None)],
}


@pytest.fixture
def app(db_url: str) -> Iterator[FastAPI]:  # noqa: F811 - the fixture imported above
    app = create_app(Settings(database_url=db_url, gateway_tokens=[TOKEN],
                              bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}"))
    with TestClient(app):
        _seed(app)
        yield app


def _seed(app: FastAPI) -> None:
    with app.state.centre.sessions() as s:
        users = {}
        for name, role in (("olga", "operator"), ("zhang", "grid_worker"),
                           ("li", "grid_worker"), (SYSTEM_USER, "system")):
            users[name] = User(username=name, password_hash="x", role=role, created_ms=0)
        s.add_all(users.values())
        s.flush()
        for alarm_id, trail in TRAIL.items():
            at = T0 + alarm_id * 3_600_000
            ev = Event(device_id="d1", seq=alarm_id, kind="alarm", type="fire",
                       event_time_ms=at, gateway_time_ms=at, received_ms=at, age_ms=0,
                       data={}, gateway="gw-1")
            s.add(ev)
            s.flush()
            alarm = Alarm(event_id=ev.id, device_id="d1", type="fire", priority=1,
                          state="dispatched", created_ms=at, outcome="genuine")
            s.add(alarm)
            s.flush()
            for seconds, who, action, worker in trail:
                s.add(AlarmAudit(alarm_id=alarm.id, at_ms=at + seconds * 1000,
                                 user_id=users[who].id, username=who, action=action,
                                 from_state="dispatched", to_state="dispatched",
                                 dispatched_to="grid_worker" if worker else "patrol",
                                 note="", worker=worker))
        s.commit()


def spread(n: int, p50: float | None, p90: float | None) -> dict[str, Any]:
    return {"n": n, "p50": p50, "p90": p90}


def test_time_to_accept_and_arrive_and_overdue_tasks(app: FastAPI) -> None:
    q = reports.Query(since_ms=T0, until_ms=T0 + 86_400_000)
    with app.state.centre.sessions() as s:
        got = reports.report(s, q, T0 + 86_400_000)["workers"]
    assert got == {
        "accept": spread(3, 60, 240), "arrive": spread(2, 330, 600), "overdue": 1,
        "by_worker": [
            {"worker": "li", "overdue": 1, "accept": spread(0, None, None),
             "arrive": spread(0, None, None)},
            {"worker": "zhang", "overdue": 0, "accept": spread(3, 60, 240),
             "arrive": spread(2, 330, 600)}]}
    # an alarm outside the range counts nowhere
    later = reports.Query(since_ms=T0 + 3 * 3_600_000, until_ms=T0 + 86_400_000)
    with app.state.centre.sessions() as s:
        got = reports.report(s, later, T0 + 86_400_000)["workers"]
    assert (got["accept"], got["overdue"]) == (spread(1, 240, 240), 0)


def test_the_report_api_carries_the_workers_figures(app: FastAPI) -> None:
    c = TestClient(app)
    login(c, ADMIN, ADMIN_PASSWORD)
    r = c.get("/api/v1/reports?from=2026-03-02&to=2026-03-03")
    assert r.status_code == 200, r.text
    assert r.json()["workers"]["arrive"] == spread(2, 330, 600)
