"""The grid worker's tasks over the API (issue 19), on SQLite and
PostgreSQL: a dispatch to the grid worker goes to the worker account of the
alarm's grid cell; the worker sees the household's address and contacts,
accepts, arrives and reports, each an audit row; the device hears
`dispatched` when the worker accepts (a patrol: at the dispatch); a task not
accepted in time is marked overdue by the centre; the grid worker role
reaches nothing of the desk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard import worker
from dashboard.app import create_app
from dashboard.db import begin_write
from dashboard.settings import Settings
from dashboard.users import create_user
from tests.test_centre_api import ADMIN, ADMIN_PASSWORD, AUTH, TOKEN, batch, event, login

PASSWORD = "a-long-password"
DEVICE = "hg-b-0101"
CELL = {"code": "G-07", "name": "和平第七网格", "community": "和平社区",
        "worker_name": "张三", "worker_phone": "13900000007"}
HOUSEHOLD = {"code": "H-0101", "address": "3号楼 2单元 201", "compound": "和平花园",
             "community": "和平社区", "grid_cell": "G-07",
             "contacts": [{"name": "王芳", "phone": "138-0000-0001", "relation": "女儿"}]}


class Client:
    def __init__(self, app: FastAPI, username: str, password: str = PASSWORD) -> None:
        self.http = TestClient(app)
        self.headers = {"X-CSRF-Token": login(self.http, username, password)}

    def post(self, path: str, **body: Any) -> Any:
        return self.http.post(f"/api/v1{path}", json=body, headers=self.headers)

    def get(self, path: str) -> Any:
        return self.http.get(f"/api/v1{path}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres").fresh_database())
    return f"sqlite:///{tmp_path / 'c.db'}"


@pytest.fixture
def app(db_url: str) -> Iterator[FastAPI]:
    app = create_app(Settings(database_url=db_url,
                              gateway_tokens=[TOKEN], worker_accept_s=300,
                              bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}"))
    with app.state.centre.sessions() as s:
        create_user(s, "olga", PASSWORD, "operator", "Olga")
        s.commit()
    with TestClient(app):
        admin = Client(app, ADMIN, ADMIN_PASSWORD)
        assert admin.post("/registry/grid-cells", **CELL).status_code == 201
        assert admin.post("/registry/households", **HOUSEHOLD).status_code == 201
        r = admin.post("/registry/devices", device_id=DEVICE, type="button",
                       household="H-0101")
        assert r.status_code == 201, r.text
        r = admin.post("/users", username="zhang", password=PASSWORD, role="grid_worker",
                       display_name="张三", grid_cell="G-07")
        assert r.status_code == 201, r.text
        assert r.json()["grid_cell"] == "G-07"
        TestClient(app).post("/api/v1/ingest", json=batch(event(7, device=DEVICE)),
                             headers=AUTH)
        yield app


def verified(app: FastAPI) -> Client:
    olga = Client(app, "olga")
    for action, args in (("ack", {}), ("verify", {"outcome": "genuine"})):
        r = olga.post(f"/alarms/1/{action}", **args)
        assert r.status_code == 200, r.text
    return olga


def dispatched(app: FastAPI) -> Client:
    olga = verified(app)
    r = olga.post("/alarms/1/dispatch", to="grid_worker", note="快去")
    assert r.status_code == 200, r.text
    return olga


def test_the_cells_worker_gets_the_task_and_works_it_through(app: FastAPI) -> None:
    olga = dispatched(app)
    assert olga.get("/alarms/1").json()["alarm"]["worker"] == "zhang"
    zhang = Client(app, "zhang")
    [task] = zhang.get("/worker/tasks").json()
    assert (task["alarm_id"], task["type"], task["device"], task["step"], task["next"],
            task["note"], task["dispatched_by"]) == (
        1, "fire", DEVICE, "assigned", ["accept"], "快去", "olga")
    site = task["site"]
    assert (site["address"], site["compound"], site["contacts"][0]["phone"]) == (
        "3号楼 2单元 201", "和平花园", "138-0000-0001")
    assert zhang.post("/worker/tasks/1/arrive").status_code == 409
    # dispatched to a phone is not yet help on the way: the household hears
    # `dispatched` when the worker accepts, and nothing for arrive or report
    assert feedback(app) == ["acknowledged"]
    steps = (("accept", {}, "accepted"), ("arrive", {"note": "到了"}, "arrived"),
             ("report", {"outcome": "false", "note": "误按"}, "reported"))
    for action, body, step in steps:
        r = zhang.post(f"/worker/tasks/1/{action}", **body)
        assert r.status_code == 200, r.text
        assert r.json()["step"] == step
        assert feedback(app) == ["acknowledged", "dispatched"]
    detail = olga.get("/alarms/1").json()
    assert (detail["alarm"]["state"], detail["alarm"]["worker_step"]) == (
        "dispatched", "reported")
    trail = [(a["username"], a["action"], a["outcome"], a["note"], a["worker"])
             for a in detail["audit"]][2:]
    assert trail == [("olga", "dispatch", None, "快去", "zhang"),
                     ("zhang", "accept", None, "", "zhang"),
                     ("zhang", "arrive", None, "到了", "zhang"),
                     ("zhang", "report", "false", "误按", "zhang")]
    assert olga.post("/alarms/1/resolve").status_code == 200
    assert zhang.get("/worker/tasks").json() == []
    assert feedback(app) == ["acknowledged", "dispatched", "resolved"]


def feedback(app: FastAPI) -> list[str]:
    """The `ack` types queued for the device, in order."""
    return [f["type"] for f in TestClient(app).get("/api/v1/feedback", headers=AUTH).json()]


def test_a_named_worker_a_patrol_and_no_worker(app: FastAPI) -> None:
    olga = verified(app)
    r = olga.post("/alarms/1/dispatch", to="grid_worker", worker="olga")
    assert r.status_code == 422, r.text  # not a grid worker: refused, nothing changed
    assert olga.get("/alarms/1").json()["alarm"]["state"] == "verified"
    r = olga.post("/alarms/1/dispatch", to="grid_worker", worker="zhang")
    assert r.json()["alarm"]["worker"] == "zhang"
    assert feedback(app) == ["acknowledged"]  # not accepted: not yet help on the way
    r = olga.post("/alarms/1/dispatch", to="patrol")
    assert (r.json()["alarm"]["worker"], r.json()["alarm"]["worker_step"]) == (None, None)
    assert Client(app, "zhang").get("/worker/tasks").json() == []
    assert feedback(app) == ["acknowledged", "dispatched"]  # the patrol: at once


def test_the_grid_worker_reaches_nothing_of_the_desk(app: FastAPI) -> None:
    dispatched(app)
    zhang = Client(app, "zhang")
    for action, body in (("ack", {}), ("resolve", {}), ("dispatch", {"to": "patrol"}),
                         ("verify", {"outcome": "false"})):
        assert zhang.post(f"/alarms/1/{action}", **body).status_code == 403, action
    for path in ("/alarms", "/alarms/1", "/desk", "/stream", "/history/alarms",
                 "/registry/households", "/users"):
        assert zhang.get(path).status_code == 403, path
    assert zhang.http.get("/", follow_redirects=False).status_code == 403
    assert zhang.http.get("/worker").status_code == 200
    # and the desk's people cannot work a worker's task
    olga = Client(app, "olga")
    assert olga.post("/worker/tasks/1/accept").status_code == 403
    assert olga.get("/worker/tasks").status_code == 403


def test_login_lands_a_grid_worker_on_their_page(app: FastAPI) -> None:
    c = TestClient(app)
    page = c.get("/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = c.post("/login", data={"username": "zhang", "password": PASSWORD,
                               "csrf_token": token, "next": "/"}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/worker")


def test_a_task_not_accepted_in_time_is_overdue_then_accepted(app: FastAPI) -> None:
    dispatched(app)
    centre = app.state.centre
    with centre.sessions() as s:
        begin_write(s)
        assert worker.mark_overdue(s, 300_000, worker.now_ms()) == []
        s.rollback()
        begin_write(s)
        [(alarm, audit)] = worker.mark_overdue(s, 0, worker.now_ms() + 1)
        assert (alarm.worker_step, audit.action, audit.username) == (
            "overdue", "overdue", "(system)")
        s.commit()
    zhang = Client(app, "zhang")
    assert zhang.get("/worker/tasks").json()[0]["next"] == ["accept"]
    assert feedback(app) == ["acknowledged"]
    assert zhang.post("/worker/tasks/1/accept").json()["step"] == "accepted"
    assert feedback(app) == ["acknowledged", "dispatched"]
