"""History search (GET /api/v1/history/alarms, .csv, /{id}) on SQLite and
PostgreSQL: every filter against a seeded set with known answers, keyset
pages that add up to the true total, the full record, the CSV export (the
query plans: tests/test_centre_history_plan.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from dashboard.api.routes.history import csv_cell
from dashboard.app import create_app
from dashboard.settings import Settings
from tests.test_centre_api import ADMIN, ADMIN_PASSWORD, AUTH, TOKEN, batch, event, login

OLGA, OLGA_PASSWORD = "olga", "olga-password-1"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres").fresh_database())
    return f"sqlite:///{tmp_path / 'centre.db'}"


@pytest.fixture
def clients(db_url: str) -> Iterator[tuple[TestClient, TestClient]]:
    """The admin's client and operator olga's, on one centre."""
    app = create_app(Settings(database_url=db_url, gateway_tokens=[TOKEN],
                              bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}"))
    with TestClient(app) as admin, TestClient(app) as olga:
        csrf = login(admin, ADMIN, ADMIN_PASSWORD)
        admin.headers["X-CSRF-Token"] = csrf
        r = admin.post("/api/v1/users", json={"username": OLGA, "password": OLGA_PASSWORD,
                                               "role": "operator"})
        assert r.status_code == 201, r.text
        olga.headers["X-CSRF-Token"] = login(olga, OLGA, OLGA_PASSWORD)
        yield admin, olga


def _ok(r: Any) -> Any:
    assert r.status_code in (200, 201), r.text
    return r.json()


def _seed(admin: TestClient, olga: TestClient) -> None:
    """Two communities' households and devices (hg-b-0003 unregistered) and
    six alarms, worked by admin and olga:
    1 b-0001 fire     admin: genuine, dispatched, resolved
    2 b-0001 medical  olga: false, resolved
    3 b-0002 fire     admin: test, resolved
    4 b-0002 security olga: acknowledged (open)
    5 b-0003 fire     untouched (open)
    6 b-0001 panic    untouched (open)"""
    for code, community in (("G1", "东风社区"), ("G2", "西湖社区")):
        _ok(admin.post("/api/v1/registry/grid-cells", json={
            "code": code, "name": code, "community": community}))
    for code, compound, community, cell in (("H1", "阳光小区", "东风社区", "G1"),
                                            ("H2", "碧水小区", "西湖社区", "G2")):
        _ok(admin.post("/api/v1/registry/households", json={
            "code": code, "address": code, "compound": compound, "community": community,
            "grid_cell": cell}))
    for dev, household in (("hg-b-0001", "H1"), ("hg-b-0002", "H2")):
        _ok(admin.post("/api/v1/registry/devices",
                       json={"device_id": dev, "type": "button", "household": household}))
    events = [event(1, "hg-b-0001", typ="fire"), event(2, "hg-b-0001", typ="medical"),
              event(3, "hg-b-0002", typ="fire"), event(4, "hg-b-0002", typ="security"),
              event(5, "hg-b-0003", typ="fire"), event(6, "hg-b-0001", typ="panic")]
    r = admin.post("/api/v1/ingest", json=batch(*events), headers=AUTH)
    assert [x["status"] for x in r.json()["results"]] == ["accepted"] * 6
    steps: list[tuple[TestClient, int, str, dict[str, Any]]] = [
        (admin, 1, "ack", {}), (admin, 1, "verify", {"outcome": "genuine"}),
        (admin, 1, "dispatch", {"to": "grid_worker"}), (admin, 1, "resolve", {}),
        (olga, 2, "ack", {}), (olga, 2, "verify", {"outcome": "false"}),
        (olga, 2, "resolve", {"note": "pressed by a child"}),
        (admin, 3, "ack", {}), (admin, 3, "verify", {"outcome": "test"}),
        (admin, 3, "resolve", {}), (olga, 4, "ack", {}),
    ]
    for who, alarm_id, action, body in steps:
        _ok(who.post(f"/api/v1/alarms/{alarm_id}/{action}", json=body))


def _ids(c: TestClient, query: str) -> list[int]:
    page = _ok(c.get("/api/v1/history/alarms?limit=500&" + query))
    assert page["total"] == len(page["alarms"]) and page["next"] is None
    return [a["id"] for a in page["alarms"]]


def test_every_filter_finds_exactly_its_alarms(
        clients: tuple[TestClient, TestClient]) -> None:
    admin, olga = clients
    _seed(admin, olga)
    expected = {
        "": [6, 5, 4, 3, 2, 1],
        "type=fire": [5, 3, 1],
        "type=fire&type=medical": [5, 3, 2, 1],
        "status=closed": [3, 2, 1],
        "status=open": [6, 5, 4],
        "outcome=false": [2],
        "outcome=none": [6, 5, 4],
        "outcome=genuine&outcome=test": [3, 1],
        "community=东风社区": [6, 2, 1],
        "compound=碧水小区": [4, 3],
        "grid_cell=G2": [4, 3],
        "household=H1": [6, 2, 1],
        "device=hg-b-0003": [5],
        "operator=olga": [4, 2],
        "operator=admin": [3, 1],
        "type=fire&status=closed&community=东风社区": [1],
        "community=nowhere": [],
    }
    for query, ids in expected.items():
        assert _ids(olga, query) == ids, query
    rows = {a["id"]: a for a in _ok(olga.get("/api/v1/history/alarms"))["alarms"]}
    one = rows[1]
    assert (one["household"], one["community"], one["compound"], one["grid_cell"]) == (
        "H1", "东风社区", "阳光小区", "G1")
    assert (one["acked_by"], one["verified_by"], one["dispatched_by"], one["resolved_by"]) == (
        ADMIN, ADMIN, ADMIN, ADMIN)
    assert one["outcome"] == "genuine" and one["state"] == "resolved"
    assert one["dispatched_ms"] is not None and one["resolved_ms"] >= one["dispatched_ms"]
    assert rows[2]["resolved_by"] == OLGA and rows[4]["acked_by"] == OLGA
    assert rows[5]["household"] is None and rows[5]["acked_by"] is None


def test_time_range_by_ms_and_by_day_in_the_centre_timezone(
        clients: tuple[TestClient, TestClient]) -> None:
    admin, olga = clients
    _seed(admin, olga)
    created = sorted({a["created_ms"] for a in
                      _ok(olga.get("/api/v1/history/alarms"))["alarms"]})
    assert _ids(olga, f"since_ms={created[0]}&until_ms={created[-1] + 1}") == [6, 5, 4, 3, 2, 1]
    assert _ids(olga, f"until_ms={created[0]}") == []
    assert _ids(olga, f"since_ms={created[-1] + 1}") == []
    today = datetime.fromtimestamp(created[0] / 1000, ZoneInfo("Asia/Shanghai")).date()
    assert _ids(olga, f"from={today}&to={today}&type=fire") == [5, 3, 1]
    assert _ids(olga, f"to={today - timedelta(days=1)}") == []
    assert _ids(olga, f"from={today + timedelta(days=1)}") == []


def test_keyset_pages_add_up_to_the_true_total(clients: tuple[TestClient, TestClient]) -> None:
    admin, olga = clients
    _seed(admin, olga)
    seen: list[int] = []
    url = "/api/v1/history/alarms?limit=2"
    while True:
        page = _ok(olga.get(url))
        assert page["total"] == 6  # every page: the count of all that match
        assert len(page["alarms"]) <= 2
        seen += [a["id"] for a in page["alarms"]]
        if page["next"] is None:
            break
        url = f"/api/v1/history/alarms?limit=2&before={page['next']}"
    assert seen == [6, 5, 4, 3, 2, 1]
    page = _ok(olga.get("/api/v1/history/alarms?limit=2&status=closed"))
    assert page["total"] == 3 and [a["id"] for a in page["alarms"]] == [3, 2]


def test_the_full_record_has_the_audit_trail_and_notifications(
        clients: tuple[TestClient, TestClient]) -> None:
    admin, olga = clients
    _seed(admin, olga)
    rec = _ok(olga.get("/api/v1/history/alarms/2"))
    assert [(a["action"], a["username"]) for a in rec["detail"]["audit"]] == [
        ("ack", OLGA), ("verify", OLGA), ("resolve", OLGA)]
    assert rec["detail"]["audit"][-1]["note"] == "pressed by a child"
    assert rec["detail"]["site"]["household"] == "H1"
    assert rec["notifications"] == _ok(olga.get("/api/v1/alarms/2/notifications"))
    assert olga.get("/api/v1/history/alarms/999").status_code == 404


def test_csv_export_streams_every_matching_row(clients: tuple[TestClient, TestClient]) -> None:
    admin, olga = clients
    _seed(admin, olga)
    r = olga.get("/api/v1/history/alarms.csv?type=fire")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [int(x["id"]) for x in rows] == [5, 3, 1]
    assert rows[2]["community"] == "东风社区" and rows[2]["outcome"] == "genuine"
    assert rows[2]["resolved_by"] == ADMIN and rows[0]["household"] == ""
    assert rows[2]["created"].endswith("+08:00")
    everything = olga.get("/api/v1/history/alarms.csv").content.decode("utf-8-sig")
    assert len(list(csv.DictReader(io.StringIO(everything)))) == 6


def test_csv_cells_a_spreadsheet_would_run_are_quoted() -> None:
    assert csv_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_cell("@x") == "'@x" and csv_cell("-1") == "'-1"
    assert csv_cell("东风社区") == "东风社区" and csv_cell(None) == "" and csv_cell(-1) == -1


def test_bad_filters_are_refused_and_a_login_is_needed(
        clients: tuple[TestClient, TestClient], db_url: str) -> None:
    _admin, olga = clients
    for query in ("status=bogus", "outcome=real", "before=x", "limit=0", "from=2026-13-01"):
        assert olga.get("/api/v1/history/alarms?" + query).status_code == 422, query
    olga.post("/logout", data={"csrf_token": olga.headers["X-CSRF-Token"]})
    assert olga.get("/api/v1/history/alarms").status_code == 401
    assert olga.get("/api/v1/history/alarms.csv").status_code == 401
