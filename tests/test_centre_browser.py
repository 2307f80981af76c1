"""The real `homeguard centre` process: its start-up checks, its SSE stream,
and the alarm desk in headless Chromium updating live as gateways ingest."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.harness.proc import Proc, free_port

TOKEN = "gw-browser-token"
ADMIN, PASSWORD = "admin", "desk-password-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = 1795387455000
UI_TIMEOUT_MS = 10000


def homeguard_argv() -> list[str]:
    """The installed `homeguard` script, else the same entry point via python."""
    script = Path(sys.executable).with_name("homeguard")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from homeguard.cli import main; main()"]


@dataclass
class CentreProc:
    proc: Proc
    url: str
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, username: str = ADMIN, password: str = PASSWORD) -> httpx.Client:
        """An httpx client logged in through the form; X-CSRF-Token preset."""
        c = httpx.Client(base_url=self.url, timeout=httpx.Timeout(10, read=10))
        self.clients.append(c)  # closed by the fixture
        page = c.get("/login")
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        r = c.post("/login", data={"username": username, "password": password,
                                   "csrf_token": csrf})
        assert r.status_code == 303, r.text
        c.headers["X-CSRF-Token"] = c.get("/api/v1/me").json()["csrf_token"]
        return c

    def ingest(self, *events: dict[str, Any]) -> list[str]:
        r = httpx.post(f"{self.url}/api/v1/ingest", headers=AUTH, timeout=10,
                       json={"gateway": "gw-1", "events": list(events)})
        assert r.status_code == 200, r.text
        return [x["status"] for x in r.json()["results"]]


def alarm(seq: int, device: str = "hg-b-0001", typ: str = "fire", **over: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "device": device, "seq": seq, "kind": "alarm", "type": typ,
        "event_time_ms": T0 + seq * 1000, "device_time_ms": T0 + seq * 1000,
        "gateway_time_ms": T0 + seq * 1000 + 1200, "age_ms": 1200, "skew_ms": -15,
        "data": {"btn": "a"},
    }
    ev.update(over)
    return ev


@pytest.fixture(autouse=True)
def _no_centre_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's command-line options alone configure the centre."""
    for name in list(os.environ):
        if name.startswith("HG_CENTRE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[CentreProc]:
    port = free_port()
    argv = [*homeguard_argv(), "centre", "--host", "127.0.0.1", "--port", str(port),
            "--db", f"sqlite:///{tmp_path / 'centre.db'}", "--gateway-token", TOKEN,
            "--bootstrap-admin", f"{ADMIN}:{PASSWORD}"]
    proc = Proc("centre", argv, tmp_path)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    proc.start()
    running = CentreProc(proc, url)
    try:
        proc.wait_ready(healthy, timeout=30)
        assert f"alarm desk at {url}/" in proc.logs()
        yield running
    finally:
        for c in running.clients:
            c.close()
        proc.stop()


def test_centre_refuses_to_start_without_a_gateway_token(tmp_path: Path) -> None:
    r = subprocess.run(
        [*homeguard_argv(), "centre", "--port", str(free_port()),
         "--db", f"sqlite:///{tmp_path / 'c.db'}"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 2
    assert "no gateway token configured" in r.stderr
    assert "--gateway-token" in r.stderr
    assert not (tmp_path / "c.db").exists()


def _read_sse(lines: Iterator[str]) -> dict[str, Any]:
    """The next SSE message (comments skipped) as {"id", "event", "data"}."""
    msg: dict[str, Any] = {}
    for line in lines:
        if line == "" and "data" in msg:
            return msg
        if line.startswith(":") or line == "":
            continue
        field, _, value = line.partition(": ")
        msg[field] = json.loads(value) if field == "data" else value
    raise AssertionError(f"stream ended inside {msg}")


def _wait_connected(lines: Iterator[str]) -> None:
    for line in lines:
        if line == ": connected":
            return
    raise AssertionError("stream ended before ': connected'")


def test_stream_replays_after_an_id_then_pushes_each_new_event_once(
    centre: CentreProc,
) -> None:
    assert centre.ingest(alarm(1)) == ["accepted"]
    assert httpx.get(f"{centre.url}/api/v1/stream", timeout=5).status_code == 401
    c = centre.client()
    with c.stream("GET", "/api/v1/stream", params={"after": 0}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        first = _read_sse(lines)
        assert (first["event"], first["data"]["seq"], first["data"]["state"]) == (
            "alarm", 1, "received")
        assert centre.ingest(alarm(2), alarm(1)) == ["accepted", "duplicate"]
        assert centre.ingest(alarm(2)) == ["duplicate"]
        heartbeat = alarm(3, kind="heartbeat", typ="periodic")
        assert centre.ingest(heartbeat, alarm(4, typ="medical")) == ["accepted", "accepted"]
        got = [_read_sse(lines) for _ in range(3)]
    assert [(m["event"], m["data"]["seq"]) for m in got] == [
        ("alarm", 2), ("event", 3), ("alarm", 4)]
    ids = [int(m["id"].split(":")[0]) for m in got]
    assert ids == sorted(ids)
    # a browser reconnecting with Last-Event-ID gets only what came after it
    with c.stream("GET", "/api/v1/stream", headers={"Last-Event-ID": got[0]["id"]}) as r:
        lines = r.iter_lines()
        assert [_read_sse(lines)["data"]["seq"] for _ in range(2)] == [3, 4]


def test_a_stream_without_a_resume_point_starts_with_nothing_old(centre: CentreProc) -> None:
    centre.ingest(alarm(1))
    with centre.client().stream("GET", "/api/v1/stream") as r:
        lines = r.iter_lines()
        _wait_connected(lines)
        centre.ingest(alarm(2))
        assert _read_sse(lines)["data"]["seq"] == 2


def _row(page: Page, device: str, seq: int) -> Any:
    return page.locator(f'#alarm-rows tr[data-device="{device}"][data-seq="{seq}"]')


def log_in(page: Page, url: str, username: str = ADMIN, password: str = PASSWORD) -> None:
    """Open the desk, get sent to the login form, log in, land on the desk live."""
    page.goto(url + "/")
    expect(page).to_have_url(url + "/login?next=%2F")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("#login-submit")
    expect(page).to_have_url(url + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=UI_TIMEOUT_MS)


def test_wrong_password_stays_on_the_login_page(centre: CentreProc, page: Page) -> None:
    page.goto(centre.url + "/")
    page.fill("input[name=username]", ADMIN)
    page.fill("input[name=password]", "not-the-password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text("用户名或密码错误")


def test_alarm_desk_shows_new_alarms_live_once(
    centre: CentreProc, page: Page, artifacts_dir: Path
) -> None:
    page.add_init_script("window.addEventListener('error', e => window.__err = String(e.message))")
    log_in(page, centre.url)
    conn = page.locator("#conn")
    expect(conn).to_have_text("实时")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#empty")).to_have_text("暂无报警")

    assert centre.ingest(alarm(42)) == ["accepted"]
    row = _row(page, "hg-b-0001", 42)
    expect(row).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(row).to_contain_text("火警")
    expect(row.locator("td.timer")).to_have_text(re.compile(r"^未受理 \d+ 秒$"))
    expect(row.locator("td.type")).to_contain_text("按键：a")
    expect(page.locator("#empty")).to_be_hidden()

    # a resend changes nothing; the next alarm proves the stream moved past it
    assert centre.ingest(alarm(42)) == ["duplicate"]
    later = alarm(43, device="hg-s-0007", typ="residual_current", device_time_ms=None,
                  skew_ms=None, data={"ma": 342, "set_ma": 300})
    assert centre.ingest(later) == ["accepted"]
    expect(_row(page, "hg-s-0007", 43)).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.locator("#alarm-rows tr")).to_have_count(2)
    expect(_row(page, "hg-b-0001", 42)).to_have_count(1)
    rows = page.locator("#alarm-rows tr")
    expect(rows.first).to_have_attribute("data-seq", "42")  # fire outranks an electrical hazard
    expect(rows.nth(1).locator("td.type")).to_contain_text("剩余电流 342 mA（设定 300 mA）")
    expect(rows.nth(1)).to_have_attribute("title", re.compile("设备时间 未校时"))
    expect(rows.nth(1).locator("td.site")).to_contain_text("未登记设备")
    expect(page.locator("#open-count")).to_have_text("2")
    assert page.evaluate("window.__err === undefined")  # the beep did not throw
    page.screenshot(path=str(artifacts_dir / "alarm-desk.png"), full_page=True,
                    animations="disabled")


def test_desk_loads_stored_alarms_and_shows_a_lost_connection(
    centre: CentreProc, page: Page
) -> None:
    centre.ingest(alarm(1, typ="security"), alarm(2, typ="medical"), alarm(3, typ="fire"))
    log_in(page, centre.url)
    rows = page.locator("#alarm-rows tr")
    expect(rows).to_have_count(3)
    # priority first (fire), then the longest waiting of equal priority
    assert [rows.nth(i).get_attribute("data-seq") for i in range(3)] == ["3", "1", "2"]
    centre.proc.stop()
    expect(page.locator("#conn")).to_have_attribute(
        "data-state", "offline", timeout=UI_TIMEOUT_MS)


def test_stream_pushes_transitions_and_resumes_after_them(centre: CentreProc) -> None:
    centre.ingest(alarm(1))
    c = centre.client()
    with c.stream("GET", "/api/v1/stream") as r:
        lines = r.iter_lines()
        _wait_connected(lines)
        assert c.post("/api/v1/alarms/1/ack", json={"note": "on it"}).status_code == 200
        msg = _read_sse(lines)
    assert msg["event"] == "transition"
    assert msg["data"]["alarm"]["state"] == "acknowledged"
    assert (msg["data"]["audit"]["username"], msg["data"]["audit"]["note"]) == (ADMIN, "on it")
    event_id, audit_id = msg["id"].split(":")
    assert int(audit_id) == msg["data"]["audit"]["id"]
    c.post("/api/v1/alarms/1/verify", json={"outcome": "test"})
    # a client that saw the ack resumes with the verification only
    with c.stream("GET", "/api/v1/stream", headers={"Last-Event-ID": msg["id"]}) as r:
        again = _read_sse(r.iter_lines())
    assert again["data"]["audit"]["action"] == "verify"
    assert again["id"] == f"{event_id}:{int(audit_id) + 1}"


def _act(page: Page, button: str) -> None:
    page.click(button)
    expect(page.locator("#action-error")).to_be_hidden()


def test_operators_work_an_alarm_through_the_desk_and_others_see_it_live(
    centre: CentreProc, page: Page, browser: Any, artifacts_dir: Path
) -> None:
    log_in(page, centre.url)
    other = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 800})
    try:
        watcher = other.new_page()
        log_in(watcher, centre.url)
        assert centre.ingest(alarm(5, typ="medical")) == ["accepted"]
        row, seen = _row(page, "hg-b-0001", 5), _row(watcher, "hg-b-0001", 5)
        expect(row).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(seen).to_have_attribute("data-state", "received", timeout=UI_TIMEOUT_MS)
        row.click()
        detail = page.locator("#detail")
        expect(page.locator("#detail-title")).to_contain_text("医疗求助")
        _act(page, "#act-ack")
        expect(detail).to_have_attribute("data-state", "acknowledged")
        expect(seen).to_have_attribute("data-state", "acknowledged", timeout=UI_TIMEOUT_MS)
        expect(seen).to_contain_text("已受理")
        _act(page, "#act-verify-genuine")
        expect(seen).to_have_attribute("data-state", "verified", timeout=UI_TIMEOUT_MS)
        page.fill("#action-note", "网格员张三前往")
        page.select_option("#dispatch-to", "grid_worker")
        _act(page, "#act-dispatch")
        expect(detail).to_have_attribute("data-state", "dispatched")
        expect(seen).to_have_attribute("data-state", "dispatched", timeout=UI_TIMEOUT_MS)
        # the watcher's open detail panel follows too
        seen.click()
        expect(watcher.locator("#audit li")).to_have_count(3)
        expect(watcher.locator("#audit li").nth(2)).to_contain_text("网格员张三前往")
        page.screenshot(path=str(artifacts_dir / "alarm-desk-dispatched.png"), full_page=True,
                        animations="disabled")
        page.fill("#action-note", "已处置")
        page.click("#act-resolve")  # asks for the result it closes with: verify's kept
        page.click('#ask-choices button[data-value="keep"]')
        expect(page.locator("#action-error")).to_be_hidden()
        expect(detail).to_have_attribute("data-state", "resolved")
        expect(row).to_have_count(0)
        expect(seen).to_have_count(0, timeout=UI_TIMEOUT_MS)
        expect(watcher.locator("#audit li")).to_have_count(4, timeout=UI_TIMEOUT_MS)
        expect(watcher.locator("#audit li").nth(3)).to_contain_text("办结")
    finally:
        other.close()
    audit = centre.client().get("/api/v1/alarms/1").json()["audit"]
    assert [(a["action"], a["username"]) for a in audit] == [
        ("ack", ADMIN), ("verify", ADMIN), ("dispatch", ADMIN), ("resolve", ADMIN)]


def test_language_switch_to_english_and_back(centre: CentreProc, page: Page) -> None:
    centre.ingest(alarm(1))
    log_in(page, centre.url)
    _row(page, "hg-b-0001", 1).click()
    expect(page.locator("#act-ack")).to_have_text("受理")
    page.click("#lang-switch")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_contain_text("Alarm desk")
    expect(page.locator("#conn")).to_have_text("Live", timeout=UI_TIMEOUT_MS)
    expect(_row(page, "hg-b-0001", 1)).to_contain_text("Fire")
    expect(_row(page, "hg-b-0001", 1)).to_contain_text("Received")
    _row(page, "hg-b-0001", 1).click()
    expect(page.locator("#act-ack")).to_have_text("Acknowledge")
    expect(page.locator("#logout")).to_have_text("Log out")
    page.click("#logout")
    expect(page.locator("#login-submit")).to_have_text("Log in")
    page.click("#lang-switch")
    expect(page.locator("#login-submit")).to_have_text("登录")


def test_the_detail_panel_lists_the_contacts_notified(centre: CentreProc, page: Page) -> None:
    admin = centre.client()
    r = admin.post("/api/v1/registry/households", json={
        "code": "H-0777", "address": "3-201", "community": "Heping",
        "contacts": [{"name": "Wang Fang", "phone": "13800000001"}]})
    assert r.status_code == 201, r.text
    r = admin.post("/api/v1/registry/devices", json={
        "device_id": "hg-b-0777", "type": "button", "household": "H-0777"})
    assert r.status_code == 201, r.text
    log_in(page, centre.url)
    assert centre.ingest(alarm(9, device="hg-b-0777")) == ["accepted"]
    row = _row(page, "hg-b-0777", 9)
    expect(row).to_be_visible(timeout=UI_TIMEOUT_MS)
    row.click()
    # the default log channel tells the first contact within a poll
    listed = page.locator("#notified li[data-status=sent]")
    for _ in range(20):
        if listed.count():
            break
        page.wait_for_timeout(500)
        row.click()  # the panel re-reads the alarm
    expect(listed.first).to_contain_text("Wang Fang", timeout=UI_TIMEOUT_MS)
    expect(listed.first).to_contain_text("仅记入日志")  # the log channel, in words
    expect(listed.first).to_contain_text("已发送")
