"""The alarm workflow over the API: legal and illegal transitions, the
audit trail, the outbound feedback rows for gateways, racing operators,
and an older store gaining the workflow's columns."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard.app import create_app
from dashboard.settings import Settings
from dashboard.users import create_user
from tests.test_centre_api import ADMIN, ADMIN_PASSWORD, AUTH, TOKEN, batch, event, login

PASSWORD = "a-long-password"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}",
                              gateway_tokens=[TOKEN],
                              bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}"))
    with app.state.centre.sessions() as s:
        create_user(s, "olga", PASSWORD, "operator", "Olga")
        create_user(s, "oleg", PASSWORD, "operator", "Oleg")
        s.commit()
    with TestClient(app):
        yield app


class Operator:
    def __init__(self, app: FastAPI, username: str) -> None:
        self.client = TestClient(app)
        self.headers = {"X-CSRF-Token": login(self.client, username, PASSWORD)}

    def do(self, alarm_id: int, action: str, **body: Any) -> Any:
        return self.client.post(f"/api/v1/alarms/{alarm_id}/{action}", json=body,
                                headers=self.headers)

    def alarm(self, alarm_id: int) -> dict[str, Any]:
        r = self.client.get(f"/api/v1/alarms/{alarm_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture
def olga(app: FastAPI) -> Operator:
    TestClient(app).post("/api/v1/ingest", json=batch(event(7), event(8, typ="medical")),
                         headers=AUTH)
    return Operator(app, "olga")


def test_genuine_alarm_goes_through_every_state_with_its_audit(olga: Operator) -> None:
    steps = [("ack", {"note": "calling the household"}, "acknowledged"),
             ("verify", {"outcome": "genuine", "note": "smoke seen"}, "verified"),
             ("dispatch", {"to": "grid_worker", "note": "Zhang, 5 min"}, "dispatched"),
             ("dispatch", {"to": "patrol"}, "dispatched"),
             ("resolve", {"note": "kitchen fire out"}, "resolved")]
    for action, body, state in steps:
        r = olga.do(1, action, **body)
        assert r.status_code == 200, r.text
        assert r.json()["alarm"]["state"] == state
    got = olga.alarm(1)
    a = got["alarm"]
    assert (a["outcome"], a["dispatched_to"], a["actions"]) == ("genuine", "patrol", [])
    assert a["acked_ms"] <= a["verified_ms"] <= a["resolved_ms"]
    trail = [(x["username"], x["action"], x["from_state"], x["to_state"], x["outcome"],
              x["dispatched_to"], x["note"]) for x in got["audit"]]
    assert trail == [
        ("olga", "ack", "received", "acknowledged", None, None, "calling the household"),
        ("olga", "verify", "acknowledged", "verified", "genuine", None, "smoke seen"),
        ("olga", "dispatch", "verified", "dispatched", None, "grid_worker", "Zhang, 5 min"),
        ("olga", "dispatch", "dispatched", "dispatched", None, "patrol", ""),
        ("olga", "resolve", "dispatched", "resolved", None, None, "kitchen fire out"),
    ]
    times = [x["at_ms"] for x in got["audit"]]
    assert times == sorted(times)
    # resolved alarms leave the open list; the other one stays
    assert [x["id"] for x in olga.client.get("/api/v1/alarms").json()] == [2]


def test_illegal_transitions_name_the_state_and_what_may_follow(olga: Operator) -> None:
    r = olga.do(1, "resolve")
    assert r.status_code == 409
    assert r.json() == {
        "detail": "alarm 1 is received: cannot resolve; allowed next: ack (-> acknowledged)",
        "state": "received", "allowed": ["ack"]}
    assert olga.do(1, "ack").status_code == 200
    r = olga.do(1, "ack")
    assert (r.status_code, r.json()["allowed"]) == (409, ["verify"])
    assert olga.do(1, "verify", outcome="false").status_code == 200
    r = olga.do(1, "dispatch", to="patrol")
    assert r.status_code == 409
    assert "verified false; only genuine alarms are dispatched" in r.json()["detail"]
    assert r.json()["allowed"] == ["resolve"]
    assert olga.do(1, "resolve").status_code == 200
    r = olga.do(1, "ack")
    assert r.status_code == 409
    assert r.json()["detail"] == "alarm 1 is resolved: cannot ack; allowed next: none"
    assert olga.do(99, "ack").status_code == 404
    # refused attempts leave no audit rows
    assert [x["action"] for x in olga.alarm(1)["audit"]] == ["ack", "verify", "resolve"]


def test_bad_action_bodies_are_422(olga: Operator) -> None:
    olga.do(1, "ack")
    r = olga.do(1, "verify", outcome="maybe")
    assert r.status_code == 422 and "outcome" in r.json()["detail"]
    olga.do(1, "verify", outcome="genuine")
    r = olga.do(1, "dispatch", to="fire brigade")
    assert r.status_code == 422 and "to" in r.json()["detail"]
    assert olga.do(1, "resolve", note="x" * 2001).status_code == 422


def test_two_operators_acknowledging_at_once_one_wins(app: FastAPI, olga: Operator) -> None:
    oleg = Operator(app, "oleg")
    start = threading.Barrier(2)
    codes: list[int] = []

    def ack(op: Operator) -> None:
        start.wait()
        codes.append(op.do(2, "ack").status_code)

    threads = [threading.Thread(target=ack, args=(op,)) for op in (olga, oleg)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(codes) == [200, 409]
    assert len(olga.alarm(2)["audit"]) == 1


def test_transitions_queue_feedback_for_the_gateway(olga: Operator, app: FastAPI) -> None:
    gw = TestClient(app)
    assert gw.get("/api/v1/feedback").status_code == 401
    assert olga.client.get("/api/v1/feedback").status_code == 401  # a login is not a token
    for action, body in (("ack", {}), ("verify", {"outcome": "genuine"}),
                         ("dispatch", {"to": "patrol"}), ("resolve", {})):
        assert olga.do(1, action, **body).status_code == 200
    rows = gw.get("/api/v1/feedback", headers=AUTH).json()
    assert [(r["device"], r["seq"], r["gateway"], r["type"], r["delivered"]) for r in rows] == [
        ("hg-b-0001", 7, "gw-1", "acknowledged", False),
        ("hg-b-0001", 7, "gw-1", "dispatched", False),
        ("hg-b-0001", 7, "gw-1", "resolved", False)]
    after = rows[0]["id"]
    assert [r["type"] for r in gw.get("/api/v1/feedback", params={"after": after},
                                      headers=AUTH).json()] == ["dispatched", "resolved"]
    # gw-1's credential reads gw-1's rows only
    assert gw.get("/api/v1/feedback", params={"gateway": "gw-2"}, headers=AUTH).status_code == 403
    r = gw.post("/api/v1/feedback/delivered", json={"ids": [rows[0]["id"], 999]}, headers=AUTH)
    assert r.json() == {"marked": 1}
    pending = gw.get("/api/v1/feedback", params={"pending": True}, headers=AUTH).json()
    assert [r["type"] for r in pending] == ["dispatched", "resolved"]


def test_desk_order_is_priority_then_age(app: FastAPI, olga: Operator) -> None:
    TestClient(app).post("/api/v1/ingest", headers=AUTH, json=batch(
        event(20, typ="low_battery"), event(21, typ="over_temp"), event(22, typ="fire")))
    order = [(a["type"], a["priority"]) for a in olga.client.get("/api/v1/alarms").json()]
    assert order == [("fire", 1), ("fire", 1), ("medical", 2), ("over_temp", 3),
                     ("low_battery", 4)]


def test_supervision_offline_is_a_desk_alarm_without_device_feedback(
        app: FastAPI, olga: Operator) -> None:
    # the gateway's own events carry negative seqs, never a device's
    r = TestClient(app).post("/api/v1/ingest", headers=AUTH, json=batch(
        event(-101, device="hg-b-0009", kind="supervision", typ="offline",
              data={"reason": "silent"}),
        event(-102, device="gw-1", kind="supervision", typ="gateway_offline"),
        event(-103, device="hg-b-0009", kind="supervision", typ="seq_conflict",
              data={"seq": 7, "hi": 9})))
    assert [x["status"] for x in r.json()["results"]] == ["accepted"] * 3
    desk = [(a["device"], a["type"], a["priority"]) for a in olga.client.get(
        "/api/v1/alarms").json() if a["device"] in ("hg-b-0009", "gw-1")]
    assert sorted(desk) == [("gw-1", "gateway_offline", 4), ("hg-b-0009", "offline", 4),
                            ("hg-b-0009", "seq_conflict", 4)]
    for typ in ("offline", "seq_conflict"):
        alarm = next(a["id"] for a in olga.client.get("/api/v1/alarms").json()
                     if a["type"] == typ)
        for action, body in (("ack", {}), ("verify", {"outcome": "genuine"}), ("resolve", {})):
            assert olga.do(alarm, action, **body).status_code == 200
    # nothing to relay: no device waits for an answer about its own silence
    rows = TestClient(app).get("/api/v1/feedback", headers=AUTH).json()
    assert [r for r in rows if r["device"] == "hg-b-0009"] == []


def test_a_skeleton_store_gains_the_workflow_columns(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, device_id VARCHAR(32), seq BIGINT,"
            " kind VARCHAR(16), type VARCHAR(32), event_time_ms BIGINT, device_time_ms BIGINT,"
            " gateway_time_ms BIGINT, received_ms BIGINT, age_ms BIGINT, skew_ms BIGINT,"
            " data JSON, gateway VARCHAR(32), UNIQUE (device_id, seq));"
            "CREATE TABLE alarms (id INTEGER PRIMARY KEY, event_id INTEGER UNIQUE"
            " REFERENCES events(id), device_id VARCHAR(32), type VARCHAR(32), priority INTEGER,"
            " state VARCHAR(16), created_ms BIGINT);"
            "INSERT INTO events VALUES (1,'hg-b-0001',5,'alarm','fire',1,NULL,2,3,0,NULL,'{}',"
            "'gw-1');"
            "INSERT INTO alarms VALUES (1,1,'hg-b-0001','fire',1,'received',3);")
    app = create_app(Settings(database_url=f"sqlite:///{db}", gateway_tokens=[TOKEN],
                              bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}"))
    with TestClient(app) as c:
        h = {"X-CSRF-Token": login(c, ADMIN, ADMIN_PASSWORD)}
        r = c.post("/api/v1/alarms/1/ack", json={}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["alarm"]["acked_ms"] is not None
