"""The centre's security headers on every kind of response, the trusted-hosts
check, and page markup that neither echoes the Host header nor needs an
inline exception in the content policy (TestClient in process; the live
stream, a forged Host and a TLS proxy's X-Forwarded-Proto against the real
`homeguard centre`).  The pages under the policy in Chromium:
tests/test_centre_csp_browser.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from dashboard.app import create_app
from dashboard.security_headers import PAGE_POLICY, script_hash, trusted_hosts
from dashboard.settings import Settings
from tests.test_centre_api import ADMIN, ADMIN_PASSWORD, AUTH, TOKEN, batch, event, login
from tests.test_centre_browser import (  # noqa: F401 - the real centre's fixtures
    CentreProc,
    _no_centre_env,
    centre,
)

PAGES = ("/", "/registry", "/devices", "/hazards", "/overview")
FOREIGN = "evil.example"
ASSET_URL = re.compile(r'\b(?:src|href|action)="([^"]*)"')


def _app(tmp_path: Path, **settings: object) -> FastAPI:
    tmp_path.mkdir(exist_ok=True)
    return create_app(Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}",
                               gateway_tokens=[TOKEN],
                               bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}", **settings))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    app = _app(tmp_path)
    with TestClient(app):
        yield app


def assert_guarded(r: httpx.Response, what: str, policy: str | None = PAGE_POLICY) -> None:
    h = r.headers
    if policy is not None:
        assert h.get("content-security-policy") == policy, what
    assert "frame-ancestors 'none'" in h["content-security-policy"], what
    assert "script-src 'self'" in h["content-security-policy"], what
    assert h.get("x-frame-options") == "DENY", what
    assert h.get("x-content-type-options") == "nosniff", what
    assert h.get("referrer-policy") == "same-origin", what
    for name in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert len(h.get_list(name)) == 1, (what, name)


def test_every_kind_of_response_carries_the_headers(app: FastAPI) -> None:
    anon = TestClient(app)
    responses = {
        "login page": anon.get("/login"),
        "redirect to the login": anon.get("/", follow_redirects=False),
        "static script": anon.get("/static/desk.js"),
        "static stylesheet": anon.get("/static/desk.css"),
        "missing static file": anon.get("/static/nope.js"),
        "health": anon.get("/healthz"),
        "API without a login (401)": anon.get("/api/v1/me"),
        "unknown path (404)": anon.get("/api/v1/nope"),
        "ingest (200)": anon.post("/api/v1/ingest", json=batch(event(1)), headers=AUTH),
        "ingest with a bad body (422)": anon.post("/api/v1/ingest", json={"events": 1},
                                                  headers=AUTH),
        "logout without CSRF (403)": anon.post("/logout"),
        "wrong method (405)": anon.put("/healthz"),
    }
    user = TestClient(app)
    login(user, ADMIN, ADMIN_PASSWORD)
    responses |= {f"page {p}": user.get(p) for p in PAGES}
    responses |= {
        "API JSON": user.get("/api/v1/alarms/1"),
        "OpenAPI": user.get("/openapi.json"),
        "stream with a bad cursor (400)": user.get("/api/v1/stream", params={"after": "x"}),
    }
    expected = {"redirect to the login": 303, "missing static file": 404,
                "API without a login (401)": 401, "unknown path (404)": 404,
                "ingest with a bad body (422)": 422, "logout without CSRF (403)": 403,
                "wrong method (405)": 405, "stream with a bad cursor (400)": 400}
    for what, r in responses.items():
        assert r.status_code == expected.get(what, 200), (what, r.text)
        assert_guarded(r, what)
        assert "strict-transport-security" not in r.headers, what  # plain HTTP, hsts off


def test_docs_page_allows_exactly_its_own_inline_script(app: FastAPI) -> None:
    user = TestClient(app)
    login(user, ADMIN, ADMIN_PASSWORD)
    r = user.get("/docs")
    assert r.status_code == 200
    policy = r.headers["content-security-policy"]
    assert_guarded(r, "/docs", policy=None)
    scripts = re.findall(r"<script>(.*?)</script>", r.text, re.DOTALL)
    assert len(scripts) == 1
    script_src = next(d for d in policy.split("; ") if d.startswith("script-src "))
    assert script_src.split()[1:] == ["'self'", "https://cdn.jsdelivr.net",
                                      script_hash(scripts[0])]


def test_hsts_when_the_request_is_https_or_the_setting_says_so(
    app: FastAPI, tmp_path: Path
) -> None:
    tls = TestClient(app, base_url="https://testserver")
    assert tls.get("/healthz").headers["strict-transport-security"] == "max-age=63072000"
    assert "strict-transport-security" not in TestClient(app).get("/healthz").headers
    with TestClient(_app(tmp_path / "proxied", hsts=True)) as proxied:
        for path in ("/healthz", "/login", "/static/desk.css"):
            r = proxied.get(path)
            assert r.headers["strict-transport-security"] == "max-age=63072000", path


def test_a_foreign_host_is_refused_before_any_route(app: FastAPI) -> None:
    c = TestClient(app)
    for path in ("/login", "/healthz", "/static/desk.css", "/api/v1/me"):
        r = c.get(path, headers={"Host": FOREIGN})
        assert r.status_code == 400, path
        assert FOREIGN not in r.text
        assert_guarded(r, f"{path} for {FOREIGN}")
    r = c.post("/api/v1/ingest", json=batch(event(1)), headers={**AUTH, "Host": FOREIGN})
    assert r.status_code == 400
    assert c.get("/api/v1/events", headers=AUTH).json() == []  # nothing stored
    for host in ("localhost", "127.0.0.1:8080", "[::1]:8080", "LOCALHOST"):
        assert c.get("/healthz", headers={"Host": host}).status_code == 200, host


def test_configured_names_are_answered_and_nothing_else(tmp_path: Path) -> None:
    app = _app(tmp_path, allowed_hosts="centre.example.org, *.centre.example.net",
               host="192.0.2.10")
    with TestClient(app) as c:
        for host in ("centre.example.org", "centre.example.org:443", "a.centre.example.net",
                     "192.0.2.10:8080", "127.0.0.1"):
            assert c.get("/healthz", headers={"Host": host}).status_code == 200, host
        for host in ("testserver", "example.org", "centre.example.org.evil.example",
                     "centre.example.net", "192.0.2.11"):
            assert c.get("/healthz", headers={"Host": host}).status_code == 400, host


def test_page_markup_never_echoes_the_host_and_needs_no_inline_exception(
    tmp_path: Path,
) -> None:
    """With the check off ("*"), a forged Host still appears nowhere: every
    asset, link and form target is a path on the same origin."""
    with TestClient(_app(tmp_path, allowed_hosts=["*"]), base_url=f"http://{FOREIGN}") as c:
        pages = {"/login": c.get("/login").text}
        login(c, ADMIN, ADMIN_PASSWORD)
        pages |= {p: c.get(p).text for p in PAGES}
    for path, html in pages.items():
        assert FOREIGN not in html, path
        urls = ASSET_URL.findall(html)
        assert any(u.startswith("/static/") for u in urls), path
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), (path, url)
        assert "<style" not in html and " style=" not in html, path
        assert not re.search(r"<[^>]+\son[a-z]+=", html), path
        assert "javascript:" not in html, path
        for script in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.DOTALL):
            attrs, body = script
            assert ('src="/static/' in attrs and not body.strip()) or \
                'type="application/json"' in attrs, (path, attrs)


def test_allowed_hosts_setting_is_checked() -> None:
    ok = Settings(gateway_tokens=[TOKEN], allowed_hosts="Centre.Example.org,::1,*.example.net,*")
    assert ok.allowed_hosts == ["centre.example.org", "[::1]", "*.example.net", "*"]
    assert Settings(gateway_tokens=[TOKEN]).allowed_hosts == ["testserver"]
    for bad in ("https://centre.example.org", "centre.example.org:443", "centre/x",
                "a.*.example.org", "[centre]", "centre example"):
        with pytest.raises(ValidationError, match="not a host name or address"):
            Settings(gateway_tokens=[TOKEN], allowed_hosts=bad)
    listen_any = Settings(gateway_tokens=[TOKEN], host="0.0.0.0", allowed_hosts=[])
    assert trusted_hosts(listen_any) == ["localhost", "127.0.0.1", "[::1]"]
    listen_v6 = Settings(gateway_tokens=[TOKEN], host="2001:db8::1", allowed_hosts=["c"])
    assert trusted_hosts(listen_v6) == ["localhost", "127.0.0.1", "[::1]", "[2001:db8::1]", "c"]


def test_the_real_centre_guards_its_stream_and_refuses_a_foreign_host(
    centre: CentreProc,  # noqa: F811
) -> None:
    c = centre.client()
    with c.stream("GET", "/api/v1/stream") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert_guarded(r, "live stream")
    r = httpx.get(f"{centre.url}/login", headers={"Host": FOREIGN}, timeout=10)
    assert (r.status_code, r.text) == (400, "Invalid host header")
    assert_guarded(r, "foreign Host on the real centre")
    # behind a TLS proxy uvicorn trusts (127.0.0.1 by default): HSTS
    r = httpx.get(f"{centre.url}/healthz", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert r.headers["strict-transport-security"] == "max-age=63072000"
    assert "strict-transport-security" not in httpx.get(f"{centre.url}/healthz").headers
