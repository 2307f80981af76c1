"""Login throttling and lockout (issue 15, finding 2), in process on SQLite
and PostgreSQL: brute force is slowed (429 + Retry-After) before argon2 runs,
an account is locked after failures in a row and an admin lifts it (API and
`homeguard centre-user unlock`), other addresses and accounts keep working,
two centres on one store share the counts, and everything is audited."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import create_engine, select

from dashboard import loginguard
from dashboard.app import create_app
from dashboard.loginguard import address_key
from dashboard.models import LoginLock
from dashboard.settings import Settings
from dashboard.users import UserError, create_user
from tests.test_centre_api import (  # noqa: F401 - db_url: SQLite and PostgreSQL
    ADMIN,
    ADMIN_PASSWORD,
    TOKEN,
    db_url,
)

HOMEGUARD = Path(sys.executable).with_name("homeguard")
PASSWORD = "olga-password-1"
WRONG = "not-her-password"
WAIT = 30.0


@pytest.fixture
def verifies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 password check the centre runs (one entry each)."""
    calls: list[str] = []
    real = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> Any:  # noqa: A002
        calls.append("verify")
        return real(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    return calls


def centre(db: str, **limits: Any) -> FastAPI:
    app = create_app(Settings(database_url=db, gateway_tokens=[TOKEN],
                              bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}", **limits))
    with app.state.centre.sessions() as s:
        for name, role in (("olga", "operator"), ("sam", "supervisor")):
            try:
                create_user(s, name, PASSWORD, role)
                s.commit()
            except UserError:
                pass  # the second centre on one store finds them
    return app


@pytest.fixture
def make_app(db_url: str) -> Iterator[Callable[..., FastAPI]]:  # noqa: F811
    running: list[TestClient] = []

    def make(**limits: Any) -> FastAPI:
        app = centre(db_url, **limits)
        running.append(TestClient(app).__enter__())  # the lifespan, once per app
        return app

    yield make
    for c in running:
        c.__exit__(None, None, None)


def browser(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, client=(address, 50000), follow_redirects=False)


def attempt(c: TestClient, username: str, password: str) -> httpx.Response:
    page = c.get("/login")
    m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert m, page.text
    return c.post("/login", data={"username": username, "password": password,
                                  "csrf_token": m[1]})


def retry_after(r: httpx.Response) -> int:
    assert r.status_code == 429, (r.status_code, r.text[:300])
    return int(r.headers["Retry-After"])


def admin_session(app: FastAPI, address: str = "198.51.100.9") -> tuple[TestClient, str]:
    c = browser(app, address)
    assert attempt(c, ADMIN, ADMIN_PASSWORD).status_code == 303
    return c, c.get("/api/v1/me").json()["csrf_token"]


def audit(admin: TestClient, subject: str) -> list[tuple[str, str, str]]:
    """(action, actor, address) oldest first."""
    rows = admin.get("/api/v1/auth-audit", params={"subject": subject}).json()
    return [(r["action"], r["actor"], r["address"]) for r in reversed(rows)]


def test_brute_force_from_one_address_is_slowed_before_any_hashing(
        make_app: Callable[..., FastAPI], verifies: list[str]) -> None:
    app = make_app(login_limit_per_address="3/minute", login_limit_per_account="100/minute",
                   login_lockout_failures=0)
    attacker = browser(app, "192.0.2.1")
    for _ in range(3):
        assert attempt(attacker, ADMIN, WRONG).status_code == 401
    assert len(verifies) == 3
    for password in (WRONG, WRONG, ADMIN_PASSWORD, WRONG):
        r = attempt(attacker, ADMIN, password)
        assert 1 <= retry_after(r) <= 60
        assert "Too many failed logins" in r.text or "登录失败次数过多" in r.text
    assert len(verifies) == 3, "a throttled attempt ran argon2"
    # another address is not held back by the first one's failures
    other = browser(app, "192.0.2.2")
    assert attempt(other, ADMIN, ADMIN_PASSWORD).status_code == 303
    admin, _ = admin_session(app)
    rows = audit(admin, ADMIN)
    assert rows[:3] == [("login_failed", ADMIN, "192.0.2.1")] * 3
    # four refusals in a minute are one audit row
    assert rows[3:] == [("login_throttled", ADMIN, "192.0.2.1"), ("login", ADMIN, "192.0.2.2"),
                        ("login", ADMIN, "198.51.100.9")]


def test_lockout_holds_every_address_until_an_admin_lifts_it(
        make_app: Callable[..., FastAPI], verifies: list[str]) -> None:
    app = make_app(login_limit_per_address="100/minute", login_limit_per_account="100/minute",
                   login_lockout_failures=4, login_lockout_s=3600)
    for n in range(4):  # a distributed guess: every attempt from another address
        assert attempt(browser(app, f"203.0.113.{n + 1}"), "olga", WRONG).status_code == 401
    olga = browser(app, "192.0.2.50")
    r = attempt(olga, "olga", PASSWORD)
    assert 3500 < retry_after(r) <= 3600
    assert "locked" in r.text or "锁定" in r.text
    assert len(verifies) == 4
    # the lock protects the account only: sam logs in from the same address
    assert attempt(browser(app, "192.0.2.50"), "sam", PASSWORD).status_code == 303
    admin, csrf = admin_session(app)
    locked = admin.get("/api/v1/users/locks").json()
    assert [(lk["username"], lk["failures"], lk["last_address"]) for lk in locked] == [
        ("olga", 4, "203.0.113.4")]
    sam = browser(app, "192.0.2.60")
    assert attempt(sam, "sam", PASSWORD).status_code == 303
    sam_csrf = sam.get("/api/v1/me").json()["csrf_token"]
    r = sam.post("/api/v1/users/olga/unlock", headers={"X-CSRF-Token": sam_csrf})
    assert r.status_code == 403  # a supervisor cannot
    assert admin.post("/api/v1/users/olga/unlock").status_code == 403  # no CSRF token
    r = admin.post("/api/v1/users/olga/unlock", headers={"X-CSRF-Token": csrf})
    assert r.json() == {"username": "olga", "was_locked": True}
    assert admin.get("/api/v1/users/locks").json() == []
    assert attempt(olga, "olga", PASSWORD).status_code == 303
    assert audit(admin, "olga") == [
        *[("login_failed", "olga", f"203.0.113.{n + 1}") for n in range(4)],
        ("locked", "(system)", "203.0.113.4"),
        ("login_throttled", "olga", "192.0.2.50"),
        ("unlocked", ADMIN, "198.51.100.9"),
        ("login", "olga", "192.0.2.50")]


def test_the_account_limit_holds_across_addresses_and_others_log_in(
        make_app: Callable[..., FastAPI], verifies: list[str]) -> None:
    app = make_app(login_limit_per_address="100/minute", login_limit_per_account="3/minute",
                   login_lockout_failures=0)
    for n in range(3):
        assert attempt(browser(app, f"203.0.113.{n + 1}"), "olga", WRONG).status_code == 401
    fresh = browser(app, "192.0.2.7")
    assert 1 <= retry_after(attempt(fresh, "olga", PASSWORD)) <= 60
    assert attempt(fresh, "sam", PASSWORD).status_code == 303
    assert len(verifies) == 4


def test_a_lock_ends_by_itself_after_its_time(
        make_app: Callable[..., FastAPI], verifies: list[str]) -> None:
    app = make_app(login_lockout_failures=2, login_lockout_s=1.5)
    c = browser(app, "192.0.2.1")
    assert [attempt(c, "olga", WRONG).status_code for _ in range(2)] == [401, 401]
    assert retry_after(attempt(c, "olga", PASSWORD)) <= 2
    deadline = time.monotonic() + WAIT
    while (status := attempt(c, "olga", PASSWORD).status_code) == 429:
        assert time.monotonic() < deadline, "the lock never ended"
        time.sleep(0.2)
    assert status == 303
    assert len(verifies) == 3  # two failures and the login, none while locked


def test_names_guessed_long_ago_are_forgotten(
        make_app: Callable[..., FastAPI], db_url: str,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loginguard, "PRUNE_EVERY_S", 0)
    app = make_app(login_lockout_s=1)
    c = browser(app, "192.0.2.1")
    assert attempt(c, "ghost", WRONG).status_code == 401
    time.sleep(1.2)  # past the window in which failures add up
    assert attempt(c, "olga", WRONG).status_code == 401
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert list(conn.scalars(select(LoginLock.username))) == ["olga"]
    finally:
        engine.dispose()


def test_two_centres_on_one_store_count_and_lock_together(
        make_app: Callable[..., FastAPI], verifies: list[str]) -> None:
    limits = {"login_limit_per_address": "4/minute", "login_limit_per_account": "100/minute",
              "login_lockout_failures": 3, "login_lockout_s": 3600}
    one, two = make_app(**limits), make_app(**limits)
    for n, app in enumerate((one, two, one, two)):  # other names: no lock, one address
        assert attempt(browser(app, "192.0.2.1"), f"guess{n}", WRONG).status_code == 401
    assert retry_after(attempt(browser(one, "192.0.2.1"), "guess9", WRONG)) <= 60
    assert retry_after(attempt(browser(two, "192.0.2.1"), "guess9", WRONG)) <= 60
    for n, app in enumerate((one, two, one)):
        assert attempt(browser(app, f"203.0.113.{n}"), "olga", WRONG).status_code == 401
    for app in (one, two):
        assert retry_after(attempt(browser(app, "192.0.2.99"), "olga", PASSWORD)) > 3500
    assert len(verifies) == 7


def test_busy_password_checks_refuse_without_hashing(
        tmp_path: Path, verifies: list[str]) -> None:
    app = centre(f"sqlite:///{tmp_path / 'c.db'}", login_concurrency=1)
    with TestClient(app):
        guard = app.state.centre.guard
        assert guard.checks.acquire(timeout=1)  # the one slot is taken
        try:
            r = attempt(browser(app, "192.0.2.1"), "olga", PASSWORD)
        finally:
            guard.checks.release()
        assert retry_after(r) == 2
        assert verifies == []
        assert attempt(browser(app, "192.0.2.1"), "olga", PASSWORD).status_code == 303


def test_limits_in_memory_for_a_single_centre(tmp_path: Path, verifies: list[str]) -> None:
    app = centre(f"sqlite:///{tmp_path / 'c.db'}", login_limits_storage="memory://",
                 login_limit_per_address="2/minute")
    with TestClient(app):
        c = browser(app, "192.0.2.1")
        assert [attempt(c, "olga", WRONG).status_code for _ in range(3)] == [401, 401, 429]
        assert len(verifies) == 2


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HOMEGUARD), *argv], capture_output=True, text=True, timeout=120)


def test_centre_user_locks_unlock_and_audit(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    app = centre(db, login_lockout_failures=2)
    with TestClient(app):
        c = browser(app, "192.0.2.1")
        for _ in range(2):
            assert attempt(c, "olga", WRONG).status_code == 401
        assert attempt(c, "olga", PASSWORD).status_code == 429
        listed = run("centre-user", "locks", "--db", db)
        assert listed.returncode == 0, listed.stderr
        assert re.match(r"olga\tlocked until \S+ \S+\t2 failures, the last from 192.0.2.1$",
                        listed.stdout.strip()), listed.stdout
        r = run("centre-user", "unlock", "olga", "--db", db)
        assert (r.returncode, r.stdout.strip()) == (0, "olga unlocked"), r.stderr
        r = run("centre-user", "unlock", "olga", "--db", db)
        assert r.stdout.strip() == "olga was not locked; its failed logins are forgotten"
        assert run("centre-user", "locks", "--db", db).stdout == ""
        assert attempt(c, "olga", PASSWORD).status_code == 303
    lines = run("centre-user", "audit", "olga", "--db", db, "--limit", "3").stdout.splitlines()
    assert [line.split("\t")[1:4] for line in lines] == [
        ["login", "olga", "by olga"], ["unlocked", "olga", "by cli"],
        ["unlocked", "olga", "by cli"]]


def test_bad_login_settings_stop_start_up() -> None:
    for bad in ({"login_limit_per_address": "lots"}, {"login_limit_per_account": "5/fortnight"},
                {"login_limits_storage": "redis"}, {"login_lockout_failures": -1},
                {"login_concurrency": 0}):
        with pytest.raises(ValidationError):
            Settings(**bad)


def test_an_ipv6_address_counts_by_its_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2") \
        == "2001:db8:1:2::/64"
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key(None) == "unknown"
