"""Operator login, roles and CSRF on the centre (TestClient in process,
real SQLite file), and the `homeguard centre-user` command."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from dashboard.app import create_app
from dashboard.models import User
from dashboard.settings import Settings
from dashboard.users import create_user
from tests.test_centre_api import ADMIN, ADMIN_PASSWORD, AUTH, TOKEN, batch, event, login

HOMEGUARD = Path(sys.executable).with_name("homeguard")
PASSWORD = "a-long-password"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}",
                              gateway_tokens=[TOKEN],
                              bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}"))
    with app.state.centre.sessions() as s:
        for name, role in (("olga", "operator"), ("tom", "technician"),
                           ("sam", "supervisor")):
            create_user(s, name, PASSWORD, role, name.title())
        s.commit()
    with TestClient(app):  # runs the lifespan once for every client below
        yield app


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


def test_nothing_but_health_login_static_and_ingest_without_a_login(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/login").status_code == 200
    assert client.get("/static/desk.css").status_code == 200
    assert client.post("/api/v1/ingest", json=batch(event(1)), headers=AUTH).status_code == 200
    for path in ("/api/v1/alarms", "/api/v1/alarms/1", "/api/v1/events", "/api/v1/stream",
                 "/api/v1/me", "/api/v1/users", "/openapi.json"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert r.json()["detail"].startswith("login required"), path
    r = client.post("/api/v1/alarms/1/ack", json={})
    assert r.status_code == 401
    for page in ("/", "/docs"):
        r = client.get(page, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), page


def test_wrong_password_unknown_user_and_disabled_user_cannot_log_in(
    client: TestClient, app: FastAPI
) -> None:
    page = client.get("/login")
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    for user, pw in ((ADMIN, "wrong-password"), ("nobody", PASSWORD)):
        r = client.post("/login", data={"username": user, "password": pw, "csrf_token": csrf})
        assert r.status_code == 401
        assert "用户名或密码错误" in r.text
    with app.state.centre.sessions() as s:
        s.scalar(select(User).where(User.username == "olga")).active = False  # type: ignore[union-attr]
        s.commit()
    r = client.post("/login", data={"username": "olga", "password": PASSWORD, "csrf_token": csrf})
    assert r.status_code == 401


def test_login_form_needs_its_csrf_token(client: TestClient) -> None:
    client.get("/login")
    r = client.post("/login", data={"username": ADMIN, "password": ADMIN_PASSWORD,
                                    "csrf_token": "forged"})
    assert r.status_code == 403
    assert client.get("/api/v1/me").status_code == 401


def test_login_redirects_to_next_but_never_off_site(client: TestClient) -> None:
    page = client.get("/login", params={"next": "//evil.example/x"})
    assert 'name="next" value="/"' in page.text
    page = client.get("/login", params={"next": "/docs"})
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post("/login", data={"username": ADMIN, "password": ADMIN_PASSWORD,
                                    "csrf_token": csrf, "next": "/docs"},
                    follow_redirects=False)
    assert r.headers["location"] == "/docs"


def test_logout_ends_the_login_even_for_a_copied_cookie(client: TestClient,
                                                        app: FastAPI) -> None:
    csrf = login(client, "olga", PASSWORD)
    copy = TestClient(app, cookies=dict(client.cookies))
    assert copy.get("/api/v1/me").status_code == 200
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    r = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    assert client.get("/api/v1/me").status_code == 401
    assert copy.get("/api/v1/me").status_code == 401  # the server forgot the login


def test_state_changes_need_the_csrf_header(client: TestClient) -> None:
    client.post("/api/v1/ingest", json=batch(event(1)), headers=AUTH)
    csrf = login(client, "olga", PASSWORD)
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        r = client.post("/api/v1/alarms/1/ack", json={}, headers=headers)
        assert r.status_code == 403
        assert "CSRF" in r.json()["detail"]
    assert client.get("/api/v1/alarms/1").json()["alarm"]["state"] == "received"
    r = client.post("/api/v1/alarms/1/ack", json={}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200


def test_roles_decide_who_acts(app: FastAPI) -> None:
    boot = TestClient(app)
    boot.post("/api/v1/ingest", json=batch(event(1)), headers=AUTH)
    tech = TestClient(app)
    h = {"X-CSRF-Token": login(tech, "tom", PASSWORD)}
    assert tech.post("/api/v1/alarms/1/ack", json={}, headers=h).status_code == 200
    assert tech.post("/api/v1/alarms/1/verify", json={"outcome": "genuine"},
                     headers=h).status_code == 200
    r = tech.post("/api/v1/alarms/1/resolve", json={}, headers=h)
    assert r.status_code == 403
    assert r.json()["detail"] == ("role technician may not do alarm.resolve; "
                                  "it needs one of: operator, supervisor, admin")
    assert tech.post("/api/v1/alarms/1/dispatch", json={"to": "patrol"},
                     headers=h).status_code == 403
    assert tech.get("/api/v1/users").status_code == 403
    sup = TestClient(app)
    h = {"X-CSRF-Token": login(sup, "sam", PASSWORD)}
    # the technician holds the alarm (claims.py): the supervisor takes it over first
    r = sup.post("/api/v1/alarms/1/resolve", json={}, headers=h)
    assert (r.status_code, r.json()["claimed_by"]) == (409, "tom")
    assert tech.post("/api/v1/alarms/1/reassign", json={"to": "tom"},
                     headers={"X-CSRF-Token": tech.get("/api/v1/me").json()["csrf_token"]}
                     ).status_code == 403
    assert sup.post("/api/v1/alarms/1/reassign", json={"to": "sam"},
                    headers=h).status_code == 200
    assert sup.post("/api/v1/alarms/1/resolve", json={}, headers=h).status_code == 200
    assert sup.post("/api/v1/users", json={"username": "x1", "password": PASSWORD,
                                           "role": "admin"}, headers=h).status_code == 403


def test_admin_manages_users(client: TestClient, app: FastAPI) -> None:
    h = {"X-CSRF-Token": login(client, ADMIN, ADMIN_PASSWORD)}
    r = client.post("/api/v1/users", json={"username": "li.wei", "password": PASSWORD,
                                           "role": "operator", "display_name": "李伟"},
                    headers=h)
    assert r.status_code == 201, r.text
    bad = client.post("/api/v1/users", json={"username": "li.wei", "password": PASSWORD,
                                             "role": "operator"}, headers=h)
    assert (bad.status_code, bad.json()["detail"]) == (400, "user 'li.wei' exists already")
    bad = client.post("/api/v1/users", json={"username": "x2", "password": PASSWORD,
                                             "role": "boss"}, headers=h)
    assert "role 'boss'" in bad.json()["detail"]
    li = TestClient(app)
    login(li, "li.wei", PASSWORD)
    r = client.patch("/api/v1/users/li.wei", json={"active": False}, headers=h)
    assert r.json()["active"] is False
    assert li.get("/api/v1/me").status_code == 401  # deactivation ends the login
    r = client.patch(f"/api/v1/users/{ADMIN}", json={"role": "operator"}, headers=h)
    assert r.status_code == 409
    names = [(u["username"], u["role"]) for u in client.get("/api/v1/users").json()]
    assert ("li.wei", "operator") in names and (ADMIN, "admin") in names


def test_bootstrap_admin_only_on_an_empty_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    create_app(Settings(database_url=url, gateway_tokens=[TOKEN],
                        bootstrap_admin="root:first-password")).state.centre.close()
    create_app(Settings(database_url=url, gateway_tokens=[TOKEN],
                        bootstrap_admin="other:second-password")).state.centre.close()
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(select(User.username, User.role)).all() == [("root", "admin")]
    engine.dispose()


def test_centre_user_command(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'u.db'}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(HOMEGUARD), "centre-user", *args, "--db", db],
                              capture_output=True, text=True, timeout=60)

    r = run("add", "wang", "--role", "operator", "--password", PASSWORD)
    assert r.returncode == 0, r.stderr
    r = run("add", "zhao", "--role", "technician")
    assert r.returncode == 0 and "password: " in r.stdout
    generated = r.stdout.split("password: ")[1].strip()
    r = run("add", "wang", "--role", "operator", "--password", PASSWORD)
    assert r.returncode == 2 and "exists already" in r.stderr
    r = run("add", "x", "--role", "chief")
    assert r.returncode == 2 and "username 'x'" in r.stderr
    r = run("add", "qian", "--role", "chief")
    assert r.returncode == 2 and "role 'chief'" in r.stderr
    assert run("disable", "wang").returncode == 0
    listed = run("list").stdout
    assert "wang\toperator\tdisabled" in listed and "zhao\ttechnician\tactive" in listed
    app = create_app(Settings(database_url=db, gateway_tokens=[TOKEN]))
    with TestClient(app) as c:
        login(c, "zhao", generated)
