"""Gateway credentials (issue 15, finding 3), in process on SQLite and
PostgreSQL: one credential per gateway, bound to its id; a gateway delivers,
reads feedback and reports status only as itself, raises no event for
another gateway, and reads device keys (every read audited); a revoked
credential is 401 at once; the store keeps no token; the deprecated
bootstrap tokens are bound to one gateway each; `homeguard centre gateway`
issues, replaces, lists and revokes, and `homeguard centre` runs on issued
credentials alone."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import create_engine, select, text

from dashboard import gateways
from dashboard.app import create_app
from dashboard.models import Event, GatewayCredential
from dashboard.settings import Settings
from dashboard.users import create_user
from tests.harness.proc import LOOPBACK, Proc, free_port
from tests.test_centre_api import (  # noqa: F401 - db_url: SQLite and PostgreSQL
    ADMIN,
    ADMIN_PASSWORD,
    count,
    db_url,
    event,
    login,
)

HOMEGUARD = Path(sys.executable).with_name("homeguard")
KEY = "00112233445566778899aabbccddeeff"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def as_gateway(gateway: str, *events: dict[str, Any]) -> dict[str, Any]:
    return {"gateway": gateway, "events": list(events)}


def sup(seq: int, typ: str, device: str) -> dict[str, Any]:
    return event(seq, device=device, kind="supervision", typ=typ, device_time_ms=None,
                 skew_ms=None, data={})


@pytest.fixture
def app(db_url: str) -> Iterator[FastAPI]:  # noqa: F811
    app = create_app(Settings(database_url=db_url, bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}"))
    with TestClient(app):
        yield app


@pytest.fixture
def tokens(app: FastAPI) -> dict[str, str]:
    with app.state.centre.sessions() as s:
        return {gw: gateways.issue(s, gw, "test") for gw in ("gw-a", "gw-b")}


def post(app: FastAPI, token: str, body: dict[str, Any]) -> httpx.Response:
    return TestClient(app).post("/api/v1/ingest", json=body, headers=bearer(token))


def audit_of(admin: TestClient, subject: str) -> list[tuple[str, str, str]]:
    rows = admin.get("/api/v1/auth-audit", params={"subject": subject}).json()
    return [(r["action"], r["actor"], r["address"]) for r in reversed(rows)]


def test_a_gateway_delivers_only_as_itself(app: FastAPI, db_url: str,  # noqa: F811
                                           tokens: dict[str, str]) -> None:
    a = tokens["gw-a"]
    r = post(app, a, as_gateway("gw-a", event(1, device="hg-b-0001")))
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "accepted"
    for claimed in ("gw-b", "gw-made-up"):  # another gateway's name, or a made-up one
        r = post(app, a, as_gateway(claimed, event(2, device="hg-b-0002")))
        assert r.status_code == 403, r.text
        assert r.json()["detail"] == (f"this credential is gateway gw-a's: it cannot act as "
                                      f"gateway {claimed}")
    forged = [
        sup(-5, "gateway_offline", "gw-b"),  # another gateway's outage
        sup(-6, "online", "gw-b"),  # closing another gateway's outage
        sup(-7, "link_lost", "hg-b-0002"),  # an outage is its gateway's own
        sup(-14, "data_lost", "hg-b-0002"),  # so are the gateway's warnings
        sup(-15, "disk_low", "gw-b"),
        event(8, device="gw-a"),  # an alarm under its own id: no device's
    ]
    for ev in forged:
        r = post(app, a, as_gateway("gw-a", event(9, device="hg-b-0003"), ev))
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith("refused for gateway gw-a; nothing was stored: "
                                             "events[1]")
        assert [(e["index"], e["device"]) for e in r.json()["errors"]] == [(1, ev["device"])]
    assert count(db_url, Event) == 1  # all or nothing: the good events went in with no forgery
    own = [sup(-10, "gateway_offline", "gw-a"), sup(-11, "link_lost", "gw-a"),
           sup(-12, "online", "gw-a"), sup(-13, "offline", "hg-b-0001"),
           sup(-16, "data_lost", "gw-a"), sup(-17, "disk_low", "gw-a"),
           sup(-18, "shedding", "gw-a")]
    r = post(app, a, as_gateway("gw-a", *own))
    assert [x["status"] for x in r.json()["results"]] == ["accepted"] * 7
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert set(conn.scalars(select(Event.gateway))) == {"gw-a"}
    finally:
        engine.dispose()
    admin = TestClient(app)
    login(admin, ADMIN, ADMIN_PASSWORD)
    refused = audit_of(admin, "gw-a")
    assert refused[0] == ("gateway_issued", "test", "")
    assert refused[1:] == [("gateway_refused", "gw-a", "testclient")] * 8


def test_feedback_and_status_are_each_gateways_own(app: FastAPI,
                                                   tokens: dict[str, str]) -> None:
    a, b = tokens["gw-a"], tokens["gw-b"]
    assert post(app, a, as_gateway("gw-a", event(7))).status_code == 200
    admin = TestClient(app)
    csrf = login(admin, ADMIN, ADMIN_PASSWORD)
    [alarm] = admin.get("/api/v1/alarms").json()
    assert admin.post(f"/api/v1/alarms/{alarm['id']}/ack", json={},
                      headers={"X-CSRF-Token": csrf}).status_code == 200
    gw = TestClient(app)
    assert gw.get("/api/v1/feedback", headers=bearer(b)).json() == []
    r = gw.get("/api/v1/feedback", params={"gateway": "gw-a"}, headers=bearer(b))
    assert r.status_code == 403
    [row] = gw.get("/api/v1/feedback", headers=bearer(a)).json()
    assert (row["gateway"], row["type"]) == ("gw-a", "acknowledged")
    marked = gw.post("/api/v1/feedback/delivered", json={"ids": [row["id"]]}, headers=bearer(b))
    assert marked.json() == {"marked": 0}  # gw-b cannot hide gw-a's feedback
    marked = gw.post("/api/v1/feedback/delivered", json={"ids": [row["id"]]}, headers=bearer(a))
    assert marked.json() == {"marked": 1}
    status = {"items": [{"device": "hg-b-0001", "at_ms": 1, "online": False}]}
    r = gw.post("/api/v1/devices/status", json={"gateway": "gw-a", **status}, headers=bearer(b))
    assert r.status_code == 403
    r = gw.post("/api/v1/devices/status", json={"gateway": "gw-b", **status}, headers=bearer(b))
    assert r.status_code == 200
    r = gw.post("/api/v1/devices/status", json=status, headers=bearer(b))  # itself, unnamed
    assert r.status_code == 200


def test_keys_for_gateways_and_admins_only_every_read_audited(
        app: FastAPI, tokens: dict[str, str]) -> None:
    admin = TestClient(app)
    csrf = login(admin, ADMIN, ADMIN_PASSWORD)
    h = {"X-CSRF-Token": csrf}
    assert admin.post("/api/v1/registry/devices", json={"device_id": "hg-b-0001",
                                                        "type": "button"}, headers=h).is_success
    assert admin.put("/api/v1/registry/devices/hg-b-0001/key", json={"key_hex": KEY},
                     headers=h).is_success
    gw = TestClient(app)
    r = gw.get("/api/v1/registry/keys", headers=bearer(tokens["gw-a"]))
    assert r.json()["keys"] == {"hg-b-0001": KEY}
    after = r.json()["updated_ms"]
    r = gw.get("/api/v1/registry/keys", params={"after_ms": after},
               headers=bearer(tokens["gw-a"]))
    assert r.json()["keys"] == {}  # nothing disclosed: no audit row
    assert admin.get("/api/v1/registry/keys").json()["keys"] == {"hg-b-0001": KEY}
    with app.state.centre.sessions() as s:
        create_user(s, "olga", "olga-password-1", "supervisor")
        s.commit()
    olga = TestClient(app)
    login(olga, "olga", "olga-password-1")
    assert olga.get("/api/v1/registry/keys").status_code == 403  # registry.manage is not enough
    for headers in ({}, bearer("hggw_not-a-credential-at-all")):
        assert gw.get("/api/v1/registry/keys", headers=headers).status_code == 401
    assert audit_of(admin, "gw-a")[1:] == [("keys_exported", "gw-a", "testclient")]
    assert audit_of(admin, ADMIN)[-1] == ("keys_exported", ADMIN, "testclient")


def test_a_revoked_credential_is_refused_at_once(app: FastAPI, tokens: dict[str, str]) -> None:
    b = tokens["gw-b"]
    assert post(app, b, as_gateway("gw-b", event(1))).status_code == 200
    with app.state.centre.sessions() as s:
        assert gateways.revoke(s, "gw-b", "test") == [2]
        assert gateways.revoke(s, "gw-b", "test") == []
    gw = TestClient(app)
    r = post(app, b, as_gateway("gw-b", event(2)))
    assert (r.status_code, r.json()["detail"]) == (401, "gateway token not accepted")
    assert r.headers["WWW-Authenticate"] == "Bearer"
    for path in ("/api/v1/feedback", "/api/v1/registry/keys", "/api/v1/alarms",
                 "/api/v1/events"):
        assert gw.get(path, headers=bearer(b)).status_code == 401, path
    assert post(app, tokens["gw-a"], as_gateway("gw-a", event(3))).status_code == 200
    # gw-b is still a gateway's id: gw-a cannot speak for it
    assert post(app, tokens["gw-a"], as_gateway("gw-a", sup(-4, "online", "gw-b"))
                ).status_code == 422
    with app.state.centre.sessions() as s:
        new = gateways.issue(s, "gw-b", "test")
    assert post(app, new, as_gateway("gw-b", event(5))).status_code == 200


def test_the_store_holds_no_token(app: FastAPI, db_url: str, tmp_path: Path,  # noqa: F811
                                  tokens: dict[str, str]) -> None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(GatewayCredential)).all()
            assert {r.token_sha256 for r in rows} == {
                hashlib.sha256(t.encode()).hexdigest() for t in tokens.values()}
            dump = repr([tuple(r) for r in rows])
            for table in ("auth_audit", "gateway_credentials"):
                dump += repr(conn.execute(text(f"SELECT * FROM {table}")).all())
    finally:
        engine.dispose()
    for token in tokens.values():
        assert token.startswith("hggw_") and len(token) > 40
        assert token not in dump and token.removeprefix("hggw_") not in dump
    if db_url.startswith("sqlite:///"):  # and nowhere in the file or its log
        for path in Path(db_url.removeprefix("sqlite:///")).parent.glob("centre.db*"):
            data = path.read_bytes()
            assert all(t.encode() not in data for t in tokens.values()), path


def test_bootstrap_tokens_are_bound_to_one_gateway_each(db_url: str) -> None:  # noqa: F811
    app = create_app(Settings(database_url=db_url, gateway_id="gw-7",
                              gateway_tokens=["gw-boot:boot-token-1", "bare-token-1"]))
    with TestClient(app):
        for token, own, other in (("boot-token-1", "gw-boot", "gw-7"),
                                  ("bare-token-1", "gw-7", "gw-boot")):
            assert post(app, token, as_gateway(own, event(1, device="hg-b-0009"))).is_success
            assert post(app, token, as_gateway(other, event(2))).status_code == 403
            assert post(app, token, as_gateway(own, sup(-3, "gateway_offline", other))
                        ).status_code == 422
    default = Settings(database_url=db_url, gateway_tokens=["bare-token-1"])
    assert gateways.bootstrap_tokens(default) == [("gw-1", "bare-token-1")]
    for bad in (["gw-a:short"], ["gw-a:same-token-1", "gw-b:same-token-1"], ["with space 1"]):
        with pytest.raises(ValidationError):
            Settings(gateway_tokens=bad)


def run(*argv: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HOMEGUARD), *map(str, argv)], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_centre_gateway_commands_and_a_centre_on_issued_credentials(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    port = free_port()
    r = run("centre", "--port", port, "--db", db)
    assert r.returncode == 2 and "no gateway credential in the store" in r.stderr
    assert "homeguard centre gateway issue" in r.stderr
    issued = run("centre", "gateway", "issue", "gw-a", "--db", db)
    assert issued.returncode == 0, issued.stderr
    [first] = issued.stdout.splitlines()  # the token alone on stdout
    assert "it is not shown again" in issued.stderr
    again = run("centre", "gateway", "issue", "gw-a", "--db", db)
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.strip() == ("homeguard centre gateway: gateway gw-a has a credential "
                                    "already (#1): revoke it first, or issue with --replace")
    replaced = run("centre", "gateway", "issue", "gw-a", "--replace", "--db", db)
    [token] = replaced.stdout.splitlines()
    listed = run("centre", "gateway", "list", "--db", db).stdout.splitlines()
    assert [line.split("\t")[0:2] + line.split("\t")[3:] for line in listed] == [
        ["gw-a", "#2", "active"]]
    assert len(run("centre", "gateway", "list", "--all", "--db", db).stdout.splitlines()) == 2
    proc = Proc("centre", [HOMEGUARD, "centre", "--host", LOOPBACK, "--port", port,
                           "--db", db], tmp_path)
    proc.start()
    try:
        url = f"http://{LOOPBACK}:{port}/api/v1/ingest"
        proc.wait_ready(lambda: _answers(f"http://{LOOPBACK}:{port}/healthz"))
        assert httpx.post(url, json=as_gateway("gw-a", event(1)), headers=bearer(token),
                          timeout=10).status_code == 200
        assert httpx.post(url, json=as_gateway("gw-a", event(2)), headers=bearer(first),
                          timeout=10).status_code == 401  # replaced
        revoked = run("centre", "gateway", "revoke", "gw-a", "--db", db)
        assert revoked.stdout.strip() == "gateway gw-a: credential #2 revoked"
        assert httpx.post(url, json=as_gateway("gw-a", event(3)), headers=bearer(token),
                          timeout=10).status_code == 401
    finally:
        proc.stop()
    r = run("centre", "gateway", "revoke", "gw-a", "--db", db)
    assert (r.returncode, r.stderr.strip()) == (
        2, "homeguard centre gateway: gateway gw-a has no active credential")
    audit = run("centre-user", "audit", "gw-a", "--db", db).stdout.splitlines()
    assert [line.split("\t")[1] for line in audit] == [
        "gateway_revoked", "gateway_issued", "gateway_revoked", "gateway_issued"]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
