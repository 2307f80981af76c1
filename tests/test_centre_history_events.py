"""Event history (GET /api/v1/history/events, .csv) on SQLite and
PostgreSQL: the events that are not alarms (restores, cancels, tests,
faults, supervision; never heartbeats, telemetry or status) found by every
filter against a seeded set with known answers, keyset pages that add up to
the true total, the CSV export."""

# ruff: noqa: F811 - the fixtures are imported by name
from __future__ import annotations

import csv
import io
import json
from typing import Any

from fastapi.testclient import TestClient

from tests.test_centre_api import AUTH, batch, event
from tests.test_centre_history import _ok, _seed, clients, db_url  # noqa: F401 - fixtures

# event ids 1-6 are _seed's alarms; then two batches, received one after the other
FIRST = [event(7, "hg-b-0001", "restore", "fire"), event(8, "hg-b-0001", "heartbeat", "periodic"),
         event(9, "hg-b-0002", "cancel", "medical"),
         event(-1, "hg-b-0002", "supervision", "online")]
SECOND = [event(10, "hg-b-0003", "test", "manual"),
          event(11, "hg-b-0001", "fault", "sensor", data={"reason": "adc stuck"}),
          event(12, "hg-b-0001", "telemetry", "periodic", data={"temp_c": 21.5}),
          event(13, "hg-b-0002", "status", "online")]


def _events(admin: TestClient, olga: TestClient) -> None:
    _seed(admin, olga)
    for events in (FIRST, SECOND):
        r = admin.post("/api/v1/ingest", json=batch(*events), headers=AUTH)
        assert [x["status"] for x in r.json()["results"]] == ["accepted"] * 4, r.text


def _ids(c: TestClient, query: str) -> list[int]:
    page = _ok(c.get("/api/v1/history/events?limit=500&" + query))
    assert page["total"] == len(page["events"]) and page["next"] is None
    return [e["id"] for e in page["events"]]


def test_every_filter_finds_exactly_its_events_a_page_at_a_time(
        clients: tuple[TestClient, TestClient]) -> None:
    admin, olga = clients
    _events(admin, olga)
    expected = {
        "": [12, 11, 10, 9, 7],  # no alarm, heartbeat, telemetry or status
        "kind=restore": [7],
        "kind=fault&kind=test": [12, 11],
        "type=manual": [11],
        "type=fire&type=medical": [9, 7],
        "community=东风社区": [12, 7],
        "grid_cell=G2": [10, 9],
        "household=H1&kind=fault": [12],
        "device=hg-b-0003": [11],
        "kind=supervision&device=hg-b-0002": [10],
        "community=nowhere": [],
    }
    for query, ids in expected.items():
        assert _ids(olga, query) == ids, query
    rows = {e["id"]: e for e in _ok(olga.get("/api/v1/history/events"))["events"]}
    fault = rows[12]
    assert (fault["kind"], fault["type"], fault["device"], fault["seq"], fault["data"]) == (
        "fault", "sensor", "hg-b-0001", 11, {"reason": "adc stuck"})
    assert (fault["household"], fault["community"], fault["compound"], fault["grid_cell"]) == (
        "H1", "东风社区", "阳光小区", "G1")
    assert rows[11]["household"] is None  # hg-b-0003 is not registered
    assert (rows[10]["kind"], rows[10]["seq"]) == ("supervision", -1)
    # the time range is the centre's receipt: the second batch alone
    second = rows[12]["received_ms"]
    assert rows[7]["received_ms"] <= second
    assert _ids(olga, f"since_ms={second}") == [12, 11]
    assert _ids(olga, f"until_ms={rows[7]['received_ms']}") == []
    # keyset pages add up to the true total
    seen: list[int] = []
    url = "/api/v1/history/events?limit=2"
    while True:
        page = _ok(olga.get(url))
        assert page["total"] == 5 and len(page["events"]) <= 2
        seen += [e["id"] for e in page["events"]]
        if page["next"] is None:
            break
        url = f"/api/v1/history/events?limit=2&before={page['next']}"
    assert seen == [12, 11, 10, 9, 7]


def test_csv_export_and_bad_filters(clients: tuple[TestClient, TestClient]) -> None:
    admin, olga = clients
    _events(admin, olga)
    r = olga.get("/api/v1/history/events.csv?community=东风社区")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(int(x["id"]), x["kind"], x["type"], x["community"]) for x in rows] == [
        (12, "fault", "sensor", "东风社区"), (7, "restore", "fire", "东风社区")]
    assert json.loads(rows[0]["data"]) == {"reason": "adc stuck"}
    assert rows[0]["received"].endswith("+08:00") and rows[0]["household"] == "H1"
    everything = olga.get("/api/v1/history/events.csv").content.decode("utf-8-sig")
    assert len(list(csv.DictReader(io.StringIO(everything)))) == 5
    bad: list[Any] = ["kind=alarm", "kind=heartbeat", "before=x", "limit=0", "to=2026-13-01"]
    for query in bad:
        assert olga.get("/api/v1/history/events?" + query).status_code == 422, query
    olga.post("/logout", data={"csrf_token": olga.headers["X-CSRF-Token"]})
    assert olga.get("/api/v1/history/events").status_code == 401
