"""Electrical hazards and the three-colour rating over the API: a sensor
alarm opens a hazard, a restore attaches to it without closing it, an
inspection rectifies it once, counts per community follow; confirmed
incidents turn a community yellow then red, inside the window only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard import rating
from dashboard.app import create_app
from dashboard.models import Device, GridCell, Household
from dashboard.settings import Settings
from dashboard.users import create_user
from tests.test_centre_api import (  # noqa: F401 - db_url: SQLite and PostgreSQL
    ADMIN,
    ADMIN_PASSWORD,
    AUTH,
    TOKEN,
    batch,
    db_url,
    event,
    login,
)

PASSWORD = "a-long-password"


def seed_registry(app: FastAPI) -> None:
    """Two communities: sensor s-1 and button b-1 in 东风 (cell G1),
    sensor s-2 in 西湖 (cell G2); sensor s-9 is in no household."""
    with app.state.centre.sessions() as s:
        g1 = GridCell(code="G1", name="东风一格", community="东风社区", worker_name="张")
        g2 = GridCell(code="G2", name="西湖一格", community="西湖社区", worker_name="李")
        s.add_all([g1, g2])
        s.flush()
        h1 = Household(code="H1", address="1号", compound="阳光小区", community="东风社区",
                       grid_cell_id=g1.id)
        h2 = Household(code="H2", address="2号", compound="碧水小区", community="西湖社区",
                       grid_cell_id=g2.id)
        s.add_all([h1, h2])
        s.flush()
        now = time.time_ns() // 1_000_000
        for dev, typ, h in (("hg-s-0001", "sensor", h1), ("hg-b-0001", "button", h1),
                            ("hg-s-0002", "sensor", h2)):
            s.add(Device(device_id=dev, type=typ, household_id=h.id, created_ms=now))
        create_user(s, "tina", PASSWORD, "technician", "Tina")
        create_user(s, "olga", PASSWORD, "operator", "Olga")
        s.commit()


@pytest.fixture
def app(db_url: str) -> Iterator[FastAPI]:  # noqa: F811
    app = create_app(Settings(database_url=db_url,
                              gateway_tokens=[TOKEN], rating_yellow=1, rating_red=2,
                              bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}"))
    seed_registry(app)
    with TestClient(app):
        yield app


def user(app: FastAPI, name: str) -> tuple[TestClient, dict[str, str]]:
    c = TestClient(app)
    return c, {"X-CSRF-Token": login(c, name, PASSWORD)}


def ingest(app: FastAPI, *events: dict[str, Any]) -> None:
    r = TestClient(app).post("/api/v1/ingest", json=batch(*events), headers=AUTH)
    assert r.status_code == 200, r.text


def sensor(seq: int, dev: str, kind: str = "alarm", typ: str = "residual_current"
           ) -> dict[str, Any]:
    return event(seq, device=dev, kind=kind, typ=typ, data={})


def test_sensor_alarm_opens_hazard_restore_attaches_rectify_closes(app: FastAPI) -> None:
    ingest(app, sensor(1, "hg-s-0001"), sensor(2, "hg-s-0002", typ="over_temp"),
           sensor(3, "hg-s-0009", typ="under_voltage"), event(4))  # event 4: a fire
    tina, h = user(app, "tina")
    got = tina.get("/api/v1/hazards").json()
    assert sorted((x["device_id"], x["type"], x["state"], x["community"]) for x in got) == [
        ("hg-s-0001", "residual_current", "open", "东风社区"),
        ("hg-s-0002", "over_temp", "open", "西湖社区"),
        ("hg-s-0009", "under_voltage", "open", ""),
    ]
    ingest(app, sensor(5, "hg-s-0001", kind="restore"))
    first = next(x for x in tina.get("/api/v1/hazards").json() if x["device_id"] == "hg-s-0001")
    assert first["restored"] and first["state"] == "open"  # a restore does not close it
    assert first["restore_times_ms"] == [event(5)["event_time_ms"]]

    r = tina.post(f"/api/v1/hazards/{first['id']}/rectify", json={"note": "RCD replaced"},
                  headers=h)
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["state"], done["rectified_by"], done["note"]) == (
        "rectified", "tina", "RCD replaced")
    assert done["rectified_ms"] >= done["opened_ms"]
    again = tina.post(f"/api/v1/hazards/{first['id']}/rectify", json={}, headers=h)
    assert again.status_code == 409 and "already rectified by tina" in again.text
    assert tina.post("/api/v1/hazards/999/rectify", json={}, headers=h).status_code == 404
    assert [x["state"] for x in tina.get("/api/v1/hazards?state=open").json()] == ["open"] * 2

    counts = {c["community"]: (c["warnings"], c["rectified"], c["open"])
              for c in tina.get("/api/v1/hazards/counts").json()}
    assert counts == {"东风社区": (1, 1, 0), "西湖社区": (1, 0, 1), "": (1, 0, 1)}


def test_rectify_needs_csrf_and_login(app: FastAPI) -> None:
    ingest(app, sensor(1, "hg-s-0001"))
    assert TestClient(app).get("/api/v1/hazards").status_code == 401
    tina, _h = user(app, "tina")
    assert tina.post("/api/v1/hazards/1/rectify", json={}).status_code == 403


def confirm(client: TestClient, h: dict[str, str], alarm_id: int) -> None:
    for action, body in (("ack", {}), ("verify", {"outcome": "genuine"})):
        r = client.post(f"/api/v1/alarms/{alarm_id}/{action}", json=body, headers=h)
        assert r.status_code == 200, r.text


def colours(client: TestClient) -> dict[str, str]:
    got = client.get("/api/v1/overview").json()
    return {c["community"]: c["colour"] for c in got["communities"]}


def test_confirmed_incidents_turn_a_community_yellow_then_red(app: FastAPI) -> None:
    olga, h = user(app, "olga")
    assert colours(olga) == {"东风社区": "green", "西湖社区": "green"}
    ingest(app, event(1), event(2), event(3, typ="medical"))
    r = olga.post("/api/v1/alarms/3/ack", json={}, headers=h)
    assert r.status_code == 200
    r = olga.post("/api/v1/alarms/3/verify", json={"outcome": "false"}, headers=h)
    assert r.status_code == 200  # a false alarm does not count
    assert colours(olga)["东风社区"] == "green"
    confirm(olga, h, 1)
    assert colours(olga) == {"东风社区": "yellow", "西湖社区": "green"}
    confirm(olga, h, 2)
    got = olga.get("/api/v1/overview").json()
    dongfeng = next(c for c in got["communities"] if c["community"] == "东风社区")
    assert (dongfeng["colour"], dongfeng["incidents"]) == ("red", 2)
    assert dongfeng["compounds"] == [{"compound": "阳光小区", "incidents": 2, "colour": "red"}]
    cells = {c["code"]: (c["incidents"], c["colour"], c["households"]) for c in got["grid_cells"]}
    assert cells == {"G1": (2, "red", 1), "G2": (0, "green", 1)}
    with app.state.centre.sessions() as s:  # a month on, both fall out of the window
        later = rating.overview(s, rating.Thresholds(30, 1, 2),
                                now_ms=time.time_ns() // 1_000_000 + 31 * rating.DAY_MS)
    assert {c["community"]: c["colour"] for c in later["communities"]}["东风社区"] == "green"


def test_bad_thresholds_are_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=r"yellow \(3\) <= red \(2\)"):
        rating.Thresholds(30, 3, 2)


def test_settings_refuse_yellow_above_red() -> None:
    with pytest.raises(ValueError, match="RATING_YELLOW \\(4\\) must not exceed"):
        Settings(gateway_tokens=[TOKEN], rating_yellow=4, rating_red=2)
