"""The centre's HTTP API (TestClient in process) against a real SQLite file
and against a real PostgreSQL (every test runs on both)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select

from dashboard.app import create_app
from dashboard.models import Alarm, Event
from dashboard.settings import Settings
from tests.desk_centre import REGISTERED, DeskCentre, shared_desk  # noqa: F401 - fixture
from tests.test_centre_browser import alarm as desk_alarm
from tests.test_centre_registry_browser import _status
from tests.test_desk_claims import _messages

TOKEN = "gw-test-token-1"
ADMIN, ADMIN_PASSWORD = "admin", "admin-password-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = 1795387455000


def event(seq: int, device: str = "hg-b-0001", kind: str = "alarm", typ: str = "fire",
          **over: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "device": device, "seq": seq, "kind": kind, "type": typ,
        "event_time_ms": T0 + seq, "device_time_ms": T0 + seq,
        "gateway_time_ms": T0 + seq + 1200, "age_ms": 1200, "skew_ms": -15,
        "data": {"btn": "a"},
    }
    ev.update(over)
    return ev


def batch(*events: dict[str, Any]) -> dict[str, Any]:
    return {"gateway": "gw-1", "events": list(events)}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres").fresh_database())
    return f"sqlite:///{tmp_path / 'centre.db'}"


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=db_url, gateway_tokens=[TOKEN],
                              bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}"))
    with TestClient(app) as c:
        yield c


@pytest.fixture
def unfolded(db_url: str) -> Iterator[TestClient]:
    """A centre without flood control (tests/test_centre_flood.py): the desk
    tests want one device's hundreds of open alarms, each its own row."""
    app = create_app(Settings(database_url=db_url, gateway_tokens=[TOKEN],
                              bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}", flood_alarms=0))
    with TestClient(app) as c:
        yield c


def login(client: TestClient, username: str, password: str) -> str:
    """Log in through the form as a browser does; returns the CSRF token."""
    page = client.get("/login")
    m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert m, page.text
    r = client.post("/login", data={"username": username, "password": password,
                                    "csrf_token": m[1]}, follow_redirects=False)
    assert r.status_code == 303, r.text
    me = client.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["username"] == username
    return str(me.json()["csrf_token"])


def count(db_url: str, model: type) -> int:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        engine.dispose()


def test_ingest_needs_a_gateway_token(client: TestClient, db_url: str) -> None:
    r = client.post("/api/v1/ingest", json=batch(event(1)))
    assert r.status_code == 401
    assert "Bearer" in r.json()["detail"]
    r = client.post("/api/v1/ingest", json=batch(event(1)),
                    headers={"Authorization": "Bearer not-the-token"})
    assert r.status_code == 401
    assert r.json()["detail"] == "gateway token not accepted"
    assert count(db_url, Event) == 0


def test_accepted_then_duplicate_on_resend(client: TestClient, db_url: str) -> None:
    r = client.post("/api/v1/ingest", json=batch(event(42), event(43, kind="heartbeat",
                                                                  typ="periodic")), headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {"results": [
        {"device": "hg-b-0001", "seq": 42, "status": "accepted"},
        {"device": "hg-b-0001", "seq": 43, "status": "accepted"},
    ]}
    # a gateway that lost our 200 resends; a new event rides along
    r = client.post("/api/v1/ingest", json=batch(event(44), event(42)), headers=AUTH)
    assert [x["status"] for x in r.json()["results"]] == ["accepted", "duplicate"]
    assert count(db_url, Event) == 3
    assert count(db_url, Alarm) == 2


def test_same_identity_other_content_is_a_conflict_not_a_duplicate(
        client: TestClient, db_url: str) -> None:
    """Two gateways whose de-dup states missed each other (e.g. an emptied Redis)
    must not make the centre take one event for another."""
    r = client.post("/api/v1/ingest", json=batch(event(51, typ="fire")), headers=AUTH)
    assert r.json()["results"][0]["status"] == "accepted"
    r = client.post("/api/v1/ingest", json=batch(event(51, typ="medical"), event(51, typ="fire")),
                    headers=AUTH)
    assert [x["status"] for x in r.json()["results"]] == ["conflict", "duplicate"]
    assert count(db_url, Event) == 1 and count(db_url, Alarm) == 1


def test_same_event_twice_in_one_batch_is_stored_once(client: TestClient, db_url: str) -> None:
    r = client.post("/api/v1/ingest", json=batch(event(7), event(7)), headers=AUTH)
    assert [x["status"] for x in r.json()["results"]] == ["accepted", "duplicate"]
    assert count(db_url, Alarm) == 1


def test_one_bad_item_rejects_the_whole_batch(client: TestClient, db_url: str) -> None:
    bad = event(9, device="hg-b-0002", typ="smoke")
    r = client.post("/api/v1/ingest", json=batch(event(8), bad, event(10)), headers=AUTH)
    assert r.status_code == 422
    body = r.json()
    assert "events[1] (hg-b-0002 seq 9)" in body["detail"]
    assert "'smoke'" in body["detail"] and "nothing was stored" in body["detail"]
    assert [(e["index"], e["device"], e["seq"]) for e in body["errors"]] == [(1, "hg-b-0002", 9)]
    assert count(db_url, Event) == 0
    assert client.get("/api/v1/alarms", headers=AUTH).json() == []


def test_bad_field_is_named(client: TestClient) -> None:
    r = client.post("/api/v1/ingest", json=batch(event(1), event(0)), headers=AUTH)
    assert r.status_code == 422
    [err] = r.json()["errors"]
    assert (err["index"], err["field"]) == (1, "seq")
    assert "events[1] (hg-b-0001 seq 0): seq:" in r.json()["detail"]


def test_non_finite_numbers_and_huge_ids_are_422_not_stored(client: TestClient,
                                                            db_url: str) -> None:
    raw = json.dumps(batch(event(5))).replace('"btn": "a"', '"btn": NaN')
    r = client.post("/api/v1/ingest", content=raw,
                    headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422 and "finite" in r.json()["detail"]
    r = client.post("/api/v1/ingest", json=batch(event(6, skew_ms=2**70)), headers=AUTH)
    assert r.status_code == 422
    assert count(db_url, Event) == 0
    r = client.post("/api/v1/feedback/delivered", json={"ids": [2**63]}, headers=AUTH)
    assert r.status_code == 422  # found by tests/test_fuzz.py: was an OverflowError (500)


def test_batch_over_500_events_is_refused(client: TestClient, db_url: str) -> None:
    r = client.post("/api/v1/ingest", json=batch(*[event(s) for s in range(1, 502)]),
                    headers=AUTH)
    assert r.status_code == 422
    assert "500" in r.json()["detail"]
    assert count(db_url, Event) == 0


def test_alarms_listed_most_urgent_first_with_their_times(client: TestClient) -> None:
    before_ms = time.time() * 1000 - 1
    client.post("/api/v1/ingest", json=batch(
        event(1, typ="medical", device_time_ms=None, skew_ms=None),
        event(2, kind="telemetry", typ="periodic"),
        event(3, device="hg-s-0001", typ="residual_current", data={"ma": 42}),
        event(-4, device="gw-1", kind="supervision", typ="gateway_offline", data={}),
    ), headers=AUTH)
    alarms = client.get("/api/v1/alarms", headers=AUTH).json()
    assert [(a["device"], a["seq"], a["type"]) for a in alarms] == [
        ("hg-b-0001", 1, "medical"), ("hg-s-0001", 3, "residual_current"),
        ("gw-1", -4, "gateway_offline"),  # supervision: on the desk, after the hazards
    ]
    first = alarms[0]
    assert first["state"] == "received" and first["gateway"] == "gw-1"
    assert first["device_time_ms"] is None and first["gateway_time_ms"] == T0 + 1 + 1200
    assert before_ms <= first["received_ms"] <= time.time() * 1000  # the centre's clock
    events = client.get("/api/v1/events", params={"device": "hg-b-0001", "limit": 1},
                        headers=AUTH).json()
    assert [(e["seq"], e["kind"]) for e in events] == [(2, "telemetry")]


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}


def race(clients: list[TestClient], body: dict[str, Any], n: int) -> list[tuple[int, str]]:
    """n threads post the same body at the same moment; (status code, result)."""
    start = threading.Barrier(n)
    got: list[tuple[int, str]] = []

    def send(c: TestClient) -> None:
        start.wait()
        r = c.post("/api/v1/ingest", json=body, headers=AUTH)
        got.append((r.status_code, r.json()["results"][0]["status"] if r.is_success else r.text))

    threads = [threading.Thread(target=send, args=(clients[i % len(clients)],)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return got


def _race(clients: list[TestClient], body: dict[str, Any], n: int) -> list[str]:
    """n threads post the same body at once; their result statuses."""
    start = threading.Barrier(n)
    statuses: list[str] = []
    failures: list[str] = []

    def send(c: TestClient) -> None:
        start.wait()
        r = c.post("/api/v1/ingest", json=body, headers=AUTH)
        if r.status_code != 200:
            failures.append(f"{r.status_code} {r.text}")
            return
        statuses.append(r.json()["results"][0]["status"])

    threads = [threading.Thread(target=send, args=(clients[i % len(clients)],))
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    return statuses


def test_concurrent_deliveries_of_one_event_store_it_once(db_url: str) -> None:
    # two centre processes' worth of engines on one file, 8 racing requests
    apps = [create_app(Settings(database_url=db_url, gateway_tokens=[TOKEN])) for _ in range(2)]
    with TestClient(apps[0]) as c0, TestClient(apps[1]) as c1:
        for seq in range(1, 6):
            statuses = _race([c0, c1], batch(event(seq)), 8)
            assert sorted(statuses) == ["accepted"] + ["duplicate"] * 7
    assert count(db_url, Event) == 5
    assert count(db_url, Alarm) == 5


def test_page_serves_the_desk_after_login(client: TestClient) -> None:
    client.post("/api/v1/ingest", json=batch(event(5)), headers=AUTH)
    r = client.get("/", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=%2F")
    login(client, ADMIN, ADMIN_PASSWORD)
    r = client.get("/")
    assert r.status_code == 200
    assert "报警台" in r.text
    assert '"after": "1:0"' in r.text  # the stream resumes after the listed snapshot
    assert client.get("/static/desk.js").status_code == 200


# --- the desk: every open alarm reachable a page at a time, the true count ---

def desk_pages(client: TestClient, limit: int, after: str | None = None) -> list[dict[str, Any]]:
    """Every page of /api/v1/desk from `after` on, concatenated."""
    got: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        r = client.get("/api/v1/desk", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["alarms"]) <= limit
        got += page["alarms"]
        after = page["next"]
        if after is None:
            return got


def test_desk_pages_reach_every_open_alarm_and_count_them(unfolded: TestClient) -> None:
    client = unfolded
    # one device floods 250 medical alarms, then another presses fire twice
    flood = [event(s, device="hg-b-0666", typ="medical") for s in range(1, 251)]
    assert client.post("/api/v1/ingest", json=batch(*flood), headers=AUTH).status_code == 200
    client.post("/api/v1/ingest", json=batch(event(1), event(2)), headers=AUTH)
    csrf = login(client, ADMIN, ADMIN_PASSWORD)
    first = client.get("/api/v1/desk", params={"limit": 100}).json()
    assert [(a["device"], a["seq"]) for a in first["alarms"][:2]] == [
        ("hg-b-0001", 1), ("hg-b-0001", 2)]
    r = client.post(f"/api/v1/alarms/{first['alarms'][0]['id']}/ack",
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text

    everything = desk_pages(client, 100)
    # unacknowledged first, then priority, then the longest waiting
    assert [(a["device"], a["seq"], a["state"]) for a in everything] == (
        [("hg-b-0001", 2, "received")]
        + [("hg-b-0666", s, "received") for s in range(1, 251)]
        + [("hg-b-0001", 1, "acknowledged")])
    assert client.get("/api/v1/alarms", params={"limit": 1000}).json() == everything
    assert client.get("/api/v1/desk/counts").json() == {
        "open": 252, "received": 251, "acknowledged": 1, "verified": 0, "dispatched": 0,
        "worker_overdue": 0}
    page = client.get("/").text
    assert 'id="open-count">252<' in page and 'id="received-count">251<' in page
    assert '"next": "0.2.' in page  # the page holds the first 200 and the way on


def test_desk_paging_skips_and_repeats_nothing_while_alarms_arrive(unfolded: TestClient) -> None:
    client = unfolded
    client.post("/api/v1/ingest", headers=AUTH, json=batch(
        *[event(s, device="hg-b-0666", typ="medical") for s in range(1, 31)]))
    login(client, ADMIN, ADMIN_PASSWORD)
    first = client.get("/api/v1/desk", params={"limit": 10}).json()
    assert first["next"] is not None and len(first["alarms"]) == 10
    # arriving between two pages: a low-priority alarm after the cursor comes
    # with a later page; a fire before it is the live stream's to place
    client.post("/api/v1/ingest", headers=AUTH, json=batch(
        event(1, device="hg-b-0002", typ="low_battery"), event(2, device="hg-b-0002")))
    rest = desk_pages(client, 10, first["next"])
    seen = [(a["device"], a["seq"]) for a in first["alarms"] + rest]
    assert len(seen) == len(set(seen)) == 31
    assert seen[-1] == ("hg-b-0002", 1) and ("hg-b-0002", 2) not in seen
    assert client.get("/api/v1/desk/counts").json()["open"] == 32
    assert desk_pages(client, 500)[0]["type"] == "fire"


def test_desk_api_needs_a_login_and_a_valid_cursor(client: TestClient) -> None:
    assert client.get("/api/v1/desk").status_code == 401
    assert client.get("/api/v1/desk/counts").status_code == 401
    assert client.get("/api/v1/desk", headers=AUTH).status_code == 401  # gateways: no desk
    login(client, ADMIN, ADMIN_PASSWORD)
    assert client.get("/api/v1/desk").json() == {"alarms": [], "next": None, "after": "0:0",
                                                 "sites": {}}
    for bad in ({"after": "1.2.3"}, {"after": "x"}, {"after": "0.1.2.3; drop"},
                {"limit": 0}, {"limit": 501}):
        assert client.get("/api/v1/desk", params=bad).status_code == 422, bad


def test_a_store_made_before_the_desk_index_gains_it_at_start(db_url: str) -> None:
    from sqlalchemy import inspect

    from dashboard.db import schema_change
    from dashboard.models import Base
    from tests.test_centre_migrations import COLUMNS_AFTER_0004

    engine = create_engine(db_url)
    try:
        Base.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_alarms_desk")
        with schema_change(engine) as conn:  # nor had it revision 0005's columns
            conn.exec_driver_sql("DROP INDEX ix_alarms_claim_seen_ms")
            for table, columns in COLUMNS_AFTER_0004.items():
                for column in columns:
                    conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        assert "ix_alarms_desk" not in {ix["name"] for ix in inspect(engine).get_indexes("alarms")}
        app = create_app(Settings(database_url=db_url, gateway_tokens=[TOKEN]))
        with TestClient(app):
            pass
        indexes = {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("alarms")}
        assert indexes["ix_alarms_desk"] == ["state", "priority", "created_ms", "id"]
    finally:
        engine.dispose()


# The device board's stream and the desk's sound against the real `homeguard
# centre` (an SSE stream never ends, which the in-process client cannot
# read), one centre per database for both tests.

def test_device_stream_sends_the_board_then_its_changes(
        shared_desk: DeskCentre) -> None:  # noqa: F811 - the fixture
    assert httpx.get(f"{shared_desk.url}/api/v1/devices/stream", timeout=10).status_code == 401
    messages = _messages(shared_desk.operator("olga"), "/api/v1/devices/stream")
    first = next(messages)  # every device on connect, with the reconnect delay
    assert (first["event"], first["retry"]) == ("devices", "2000")
    [row] = [d for d in first["data"] if d["device_id"] == REGISTERED]
    assert row["household"] == "H-0101" and row["open_alarms"] == []

    def update() -> dict[str, Any]:
        deadline = time.monotonic() + 60
        for msg in messages:  # keepalive comments until the update
            if msg["event"] == "update":
                [changed] = msg["data"]
                assert changed["device_id"] == REGISTERED, msg
                return dict(changed)
            assert time.monotonic() < deadline, "no update on the device stream within 60 s"
        raise AssertionError("the device stream ended")

    now = int(time.time() * 1000)
    _status(shared_desk, {"device": REGISTERED, "at_ms": now, "online": False})
    got = update()
    assert (got["online"], got["last_seen_ms"]) == (False, now)
    _status(shared_desk, {"device": REGISTERED, "at_ms": now + 1000, "battery_mv": 3700})
    got = update()
    assert (got["online"], got["battery_mv"]) == (True, 3700)
    assert shared_desk.ingest(desk_alarm(1, device=REGISTERED, typ="medical")) == ["accepted"]
    assert update()["open_alarms"] == ["medical"]  # an alarm changes the row too


def test_desk_sound_is_each_operators_and_audited(
        shared_desk: DeskCentre) -> None:  # noqa: F811 - the fixture
    olga, oscar = shared_desk.operator("olga"), shared_desk.operator("oscar")
    assert httpx.get(f"{shared_desk.url}/api/v1/desk/sound", timeout=10).status_code == 401
    assert olga.get("/api/v1/desk/sound").json() == {"muted": False}
    for muted in (True, True, False):  # the second "off" changes nothing: no audit row
        r = olga.put("/api/v1/desk/sound", json={"muted": muted})
        assert r.status_code == 200 and r.json() == {"muted": muted}, r.text
        if muted:
            assert olga.get("/api/v1/desk/sound").json() == {"muted": True}
            assert oscar.get("/api/v1/desk/sound").json() == {"muted": False}
    assert olga.put("/api/v1/desk/sound", json={"muted": "loud"}).status_code == 422
    assert olga.put("/api/v1/desk/sound", json={"muted": True},
                    headers={"X-CSRF-Token": "forged"}).status_code == 403
    tom = shared_desk.operator("tom")  # a technician's sound is his own
    assert tom.put("/api/v1/desk/sound", json={"muted": True}).json() == {"muted": True}
    assert olga.get("/api/v1/desk/sound").json() == {"muted": False}
    assert httpx.put(f"{shared_desk.url}/api/v1/desk/sound", json={"muted": True},
                     timeout=10).status_code in (401, 403)  # no login: refused
    audit = shared_desk.client().get("/api/v1/auth-audit", params={"subject": "olga"}).json()
    assert [(a["action"], a["actor"]) for a in audit if a["action"].startswith("sound")] == [
        ("sound_on", "olga"), ("sound_off", "olga")]  # newest first
