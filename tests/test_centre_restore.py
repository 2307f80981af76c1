"""Supervision alarms restore themselves at the centre (SIA style): the
gateway's `online`, or any later message of the device, closes its
`offline`; the gateway's `online` closes its `gateway_offline` and
`link_lost`; each restore is a `restore` row by the system account in the
audit trail and a transition on the live stream; a `seq_conflict` device
fault stays for an operator; nothing is relayed to a device for what the
gateway originated (TestClient on SQLite; the stream on the real process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from dashboard.app import create_app
from dashboard.models import Alarm
from dashboard.restore import SYSTEM_USER
from dashboard.settings import Settings
from dashboard.users import create_user
from tests.test_centre_api import ADMIN, ADMIN_PASSWORD, AUTH, T0, TOKEN, batch, event, login
from tests.test_centre_browser import (  # noqa: F401 - fixtures
    CentreProc,
    _no_centre_env,
    _read_sse,
    _wait_connected,
    centre,
)

DEV, GW = "hg-b-0009", "gw-1"
PASSWORD = "a-long-password"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}",
                              gateway_tokens=[TOKEN],
                              bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}"))
    with app.state.centre.sessions() as s:
        create_user(s, "olga", PASSWORD, "operator", "Olga")
        s.commit()
    with TestClient(app):
        yield app


@pytest.fixture
def desk(app: FastAPI) -> TestClient:
    c = TestClient(app)
    c.headers["X-CSRF-Token"] = login(c, "olga", PASSWORD)
    return c


def sup(seq: int, typ: str, device: str = DEV, at: int = 0, **data: Any) -> dict[str, Any]:
    """A gateway's own event: negative seq, raised at T0 + at (gateway clock);
    data keys ending in _ lose it (seq_=7 is data seq 7)."""
    data = {k.rstrip("_"): v for k, v in data.items()}
    return event(seq, device=device, kind="supervision", typ=typ, event_time_ms=T0 + at,
                 device_time_ms=None, gateway_time_ms=T0 + at, age_ms=0, skew_ms=None,
                 data=data)


def dev(seq: int, kind: str, typ: str, at: int, device: str = DEV) -> dict[str, Any]:
    """A device's own message, received by the gateway at T0 + at."""
    return event(seq, device=device, kind=kind, typ=typ, event_time_ms=T0 + at - 100,
                 gateway_time_ms=T0 + at, data={})


def ingest(app: FastAPI, *events: dict[str, Any]) -> None:
    r = TestClient(app).post("/api/v1/ingest", json=batch(*events), headers=AUTH)
    assert r.status_code == 200, r.text
    assert {x["status"] for x in r.json()["results"]} == {"accepted"}


def open_alarms(desk: TestClient) -> list[tuple[str, str]]:
    return sorted((a["device"], a["type"]) for a in desk.get("/api/v1/alarms").json())


def alarm_of(desk: TestClient, device: str, typ: str) -> dict[str, Any]:
    """The newest alarm of this device and type, with its audit trail."""
    app: Any = desk.app
    with app.state.centre.sessions() as session:
        alarm_id = session.scalar(select(Alarm.id).where(
            Alarm.device_id == device, Alarm.type == typ).order_by(Alarm.id.desc()))
    assert alarm_id is not None, f"no {typ} alarm of {device}"
    r = desk.get(f"/api/v1/alarms/{alarm_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_online_restores_the_offline_with_a_system_audit_row(app: FastAPI,
                                                              desk: TestClient) -> None:
    ingest(app, sup(-100, "offline", at=100, reason="silent"),
           sup(-101, "gateway_offline", device=GW, at=100, reason="broker_lost"))
    assert open_alarms(desk) == [(GW, "gateway_offline"), (DEV, "offline")]
    ingest(app, sup(-102, "online", at=200, reason="heartbeat"))
    assert open_alarms(desk) == [(GW, "gateway_offline")]
    detail = alarm_of(desk, DEV, "offline")
    assert detail["alarm"]["state"] == "resolved" and detail["alarm"]["resolved_ms"]
    assert detail["alarm"]["actions"] == []
    [row] = detail["audit"]
    assert (row["username"], row["action"], row["from_state"], row["to_state"]) == (
        SYSTEM_USER, "restore", "received", "resolved")
    assert row["note"] == f"restored: supervision online seq -102 via {GW}"
    ingest(app, sup(-103, "online", device=GW, at=300, reason="broker_back"))
    assert open_alarms(desk) == []
    # nothing relayed to any device: the gateway originated all of it
    assert TestClient(app).get("/api/v1/feedback", headers=AUTH).json() == []


def test_any_later_message_of_the_device_restores_but_not_an_older_one_or_its_will(
        app: FastAPI, desk: TestClient) -> None:
    ingest(app, sup(-100, "offline", at=1000, reason="silent"))
    ingest(app, dev(5, "heartbeat", "periodic", at=900))  # received before the offline
    ingest(app, dev(6, "status", "offline", at=1100))  # its last will: not a sign of life
    assert open_alarms(desk) == [(DEV, "offline")]
    ingest(app, dev(7, "alarm", "fire", at=1200))  # a press: it is there
    assert open_alarms(desk) == [(DEV, "fire")]
    [row] = alarm_of(desk, DEV, "offline")["audit"]
    assert row["note"] == f"restored: alarm fire seq 7 via {GW}"


def test_an_operator_working_it_is_overtaken_by_the_restore(app: FastAPI,
                                                             desk: TestClient) -> None:
    ingest(app, sup(-100, "offline", at=100, reason="last_will"))
    alarm_id = desk.get("/api/v1/alarms").json()[0]["id"]
    assert desk.post(f"/api/v1/alarms/{alarm_id}/ack", json={}).status_code == 200
    ingest(app, dev(3, "heartbeat", "periodic", at=150))
    r = desk.post(f"/api/v1/alarms/{alarm_id}/verify", json={"outcome": "genuine"})
    assert r.status_code == 409 and r.json()["state"] == "resolved"
    trail = [(a["username"], a["action"]) for a in desk.get(
        f"/api/v1/alarms/{alarm_id}").json()["audit"]]
    assert trail == [("olga", "ack"), (SYSTEM_USER, "restore")]


def test_a_restore_that_arrives_first_closes_the_alarm_when_it_comes(
        app: FastAPI, desk: TestClient) -> None:
    # two gateways of a share group: the one that raised online delivered first
    ingest(app, sup(-201, "online", at=500, reason="heartbeat"))
    ingest(app, sup(-200, "offline", at=400, reason="silent"))
    assert open_alarms(desk) == []
    [row] = alarm_of(desk, DEV, "offline")["audit"]
    assert row["action"] == "restore" and "seq -201" in row["note"]


def test_a_link_lost_and_its_restore_in_one_batch_leave_nothing_open(
        app: FastAPI, desk: TestClient) -> None:
    ingest(app, sup(-300, "link_lost", device=GW, at=10, reason="last_wills", devices=200,
                    waiting=0),
           sup(-301, "online", device=GW, at=11, reason="devices_settled"))
    assert open_alarms(desk) == []
    detail = alarm_of(desk, GW, "link_lost")
    assert detail["alarm"]["priority"] == 4
    assert [a["action"] for a in detail["audit"]] == ["restore"]


def test_a_seq_conflict_is_a_low_priority_fault_an_operator_closes(
        app: FastAPI, desk: TestClient) -> None:
    ingest(app, sup(-400, "seq_conflict", at=10, seq_=7, hi=9))
    ingest(app, dev(10, "heartbeat", "periodic", at=20))  # being there does not fix it
    [alarm] = desk.get("/api/v1/alarms").json()
    assert (alarm["type"], alarm["priority"], alarm["seq"], alarm["state"]) == (
        "seq_conflict", 4, -400, "received")
    assert desk.post(f"/api/v1/alarms/{alarm['id']}/ack", json={}).status_code == 200
    assert TestClient(app).get("/api/v1/feedback", headers=AUTH).json() == []


def test_the_system_account_cannot_log_in(app: FastAPI) -> None:
    ingest(app, sup(-1, "offline", at=1), sup(-2, "online", at=2))
    c = TestClient(app)
    page = c.get("/login")
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = c.post("/login", data={"username": SYSTEM_USER, "password": "!",
                               "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code != 303


def test_the_desk_stream_carries_the_restore(centre: CentreProc) -> None:  # noqa: F811
    assert centre.ingest(sup(-10, "offline", at=1, reason="silent")) == ["accepted"]
    c = centre.client()
    with c.stream("GET", "/api/v1/stream") as r:
        lines = r.iter_lines()
        _wait_connected(lines)
        assert centre.ingest(dev(4, "heartbeat", "periodic", at=5)) == ["accepted"]
        first, second = _read_sse(lines), _read_sse(lines)
    assert (first["event"], first["data"]["kind"]) == ("event", "heartbeat")
    assert second["event"] == "transition"
    assert (second["data"]["alarm"]["type"], second["data"]["alarm"]["state"]) == (
        "offline", "resolved")
    audit = second["data"]["audit"]
    assert (audit["username"], audit["action"]) == (SYSTEM_USER, "restore")
    assert second["id"].endswith(f":{audit['id']}")


def test_the_system_account_does_not_stop_the_bootstrap_admin(tmp_path) -> None:  # noqa: ANN001
    """A restore that made the (system) account before anyone logged in must
    not make the centre think it already has users."""
    from sqlalchemy import select

    from dashboard.db import create_tables, make_engine, make_sessions
    from dashboard.models import User
    from dashboard.restore import system_user
    from dashboard.users import bootstrap_admin

    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    create_tables(engine)
    with make_sessions(engine)() as session:
        system_user(session)
        session.commit()
        assert bootstrap_admin(session, "admin:a-long-enough-password") is not None
        roles = sorted(u.role for u in session.scalars(select(User)))
        assert roles == ["admin", "system"]
        assert bootstrap_admin(session, "other:a-long-enough-password") is None
