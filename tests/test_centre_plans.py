"""Action plans over the API, in process, on SQLite and PostgreSQL: every
alarm type has a shipped plan in both languages; a step's outcome is
recorded on a taken alarm (audited, a live transition, the claim
respected); resolving with a result; a supervisor edits and resets a plan
(audited), an operator may not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard import labels, plan_defaults
from dashboard.app import create_app
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


@pytest.fixture
def app(db_url: str) -> Iterator[FastAPI]:  # noqa: F811
    app = create_app(Settings(database_url=db_url, gateway_tokens=[TOKEN],
                              bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}"))
    with app.state.centre.sessions() as s:
        create_user(s, "olga", PASSWORD, "operator", "Olga")
        create_user(s, "oscar", PASSWORD, "operator", "Oscar")
        create_user(s, "sam", PASSWORD, "supervisor", "Sam")
        s.commit()
    with TestClient(app):
        yield app


def user(app: FastAPI, name: str) -> TestClient:
    c = TestClient(app)
    c.headers["X-CSRF-Token"] = login(c, name, PASSWORD)
    return c


def fire(app: FastAPI, seq: int = 1) -> int:
    r = TestClient(app).post("/api/v1/ingest", json=batch(event(seq, typ="fire")), headers=AUTH)
    assert r.status_code == 200, r.text
    return int(TestClient(app).get("/api/v1/alarms", headers=AUTH).json()[0]["id"])


def test_every_alarm_type_ships_a_plan_in_both_languages() -> None:
    assert set(plan_defaults.PLANS) == set(labels.ALARM_TYPES)
    for typ in labels.ALARM_TYPES:
        steps = plan_defaults.default_steps(typ)
        assert steps and all(s["zh-CN"] and s["en"] for s in steps), typ
    assert [s["key"] for s in plan_defaults.default_steps("fire")] == [
        "call_household", "call_contact_1", "notify_grid_worker", "call_119"]


def test_steps_are_recorded_on_a_taken_alarm_with_outcome_time_and_who(app: FastAPI) -> None:
    olga, oscar = user(app, "olga"), user(app, "oscar")
    alarm_id = fire(app)
    plan = olga.get(f"/api/v1/alarms/{alarm_id}/plan").json()
    assert plan["skipped"] == ["call_household", "call_contact_1", "notify_grid_worker",
                               "call_119"]
    step = {"step": "call_household", "outcome": "no_answer"}
    r = olga.post(f"/api/v1/alarms/{alarm_id}/steps", json=step)
    assert r.status_code == 409 and r.json()["state"] == "received"  # take it first
    assert olga.post(f"/api/v1/alarms/{alarm_id}/ack", json={}).status_code == 200
    r = oscar.post(f"/api/v1/alarms/{alarm_id}/steps", json=step)
    assert r.status_code == 409 and r.json()["claimed_by"] == "olga"
    assert olga.post(f"/api/v1/alarms/{alarm_id}/steps", json=step).status_code == 200
    r = olga.post(f"/api/v1/alarms/{alarm_id}/steps",
                  json={"step": "call_household", "outcome": "done", "note": "在家，误触"})
    assert r.status_code == 200, r.text
    got = r.json()
    first = got["steps"][0]
    assert [x["outcome"] for x in first["records"]] == ["no_answer", "done"]
    assert first["records"][1]["username"] == "olga" and first["records"][1]["at_ms"] > 0
    assert first["label"] == {"zh-CN": "致电住户，核实情况", "en": "Call the household to check"}
    assert got["skipped"] == ["call_contact_1", "notify_grid_worker", "call_119"]
    for bad in ({"step": "nope", "outcome": "done"}, {"step": "call_119", "outcome": "maybe"}):
        assert olga.post(f"/api/v1/alarms/{alarm_id}/steps", json=bad).status_code == 422
    audit = olga.get(f"/api/v1/alarms/{alarm_id}").json()["audit"]
    assert [(a["action"], a["outcome"], a["note"]) for a in audit] == [
        ("ack", None, ""), ("step", "no_answer", ""), ("step", "done", "在家，误触")]
    assert audit[-1]["from_state"] == audit[-1]["to_state"] == "acknowledged"
    # resolve with a result other than verify's: the result is kept
    assert olga.post(f"/api/v1/alarms/{alarm_id}/verify",
                     json={"outcome": "genuine"}).status_code == 200
    r = olga.post(f"/api/v1/alarms/{alarm_id}/resolve", json={"outcome": "false"})
    assert r.status_code == 200, r.text
    assert r.json()["alarm"]["outcome"] == "false"
    assert r.json()["audit"][-1]["outcome"] == "false"
    r = olga.post(f"/api/v1/alarms/{alarm_id}/steps", json=step)
    assert r.status_code == 409 and r.json()["state"] == "resolved"


def test_resolve_without_a_result_keeps_verify_outcome(app: FastAPI) -> None:
    olga = user(app, "olga")
    alarm_id = fire(app)
    for action, body in (("ack", {}), ("verify", {"outcome": "test"}), ("resolve", {})):
        assert olga.post(f"/api/v1/alarms/{alarm_id}/{action}", json=body).status_code == 200
    got = olga.get(f"/api/v1/alarms/{alarm_id}").json()
    assert got["alarm"]["outcome"] == "test" and got["audit"][-1]["outcome"] is None


def test_a_supervisor_edits_and_resets_a_plan_audited(app: FastAPI) -> None:
    sam, olga = user(app, "sam"), user(app, "olga")
    steps = [{"zh-CN": "致电住户", "en": "Call the household"},
             {"key": "call_119", "zh-CN": "拨打 119", "en": "Call 119"}]
    assert olga.put("/api/v1/plans/fire", json={"steps": steps}).status_code == 403
    r = sam.put("/api/v1/plans/fire", json={"steps": steps})
    assert r.status_code == 200, r.text
    assert [s["key"] for s in r.json()["steps"]] == ["step_1", "call_119"]
    assert r.json()["custom"] and r.json()["updated_by"] == "sam"
    plans = {p["type"]: p for p in olga.get("/api/v1/plans").json()}
    assert list(plans) == list(labels.ALARM_TYPES)
    assert plans["fire"]["steps"][1]["en"] == "Call 119" and not plans["medical"]["custom"]
    alarm_id = fire(app)
    assert olga.get(f"/api/v1/alarms/{alarm_id}/plan").json()["skipped"] == [
        "step_1", "call_119"]
    for bad in ([], [{"zh-CN": "", "en": "x"}], [{"key": "A B", "zh-CN": "x", "en": "x"}]):
        assert sam.put("/api/v1/plans/fire", json={"steps": bad}).status_code == 422
    assert sam.put("/api/v1/plans/nope", json={"steps": steps}).status_code == 422
    assert TestClient(app).put("/api/v1/plans/fire", json={"steps": steps}).status_code == 401
    no_csrf = user(app, "sam")
    del no_csrf.headers["X-CSRF-Token"]
    assert no_csrf.put("/api/v1/plans/fire", json={"steps": steps}).status_code == 403
    r = sam.delete("/api/v1/plans/fire")
    assert r.status_code == 200 and not r.json()["custom"]
    assert r.json()["steps"][0]["key"] == "call_household"
    admin = TestClient(app)
    admin.headers["X-CSRF-Token"] = login(admin, ADMIN, ADMIN_PASSWORD)
    rows = admin.get("/api/v1/auth-audit", params={"subject": "fire"}).json()
    assert [(r["action"], r["actor"]) for r in rows] == [("plan_reset", "sam"),
                                                          ("plan_changed", "sam")]
