"""Every page of the real `homeguard centre` works in headless Chromium under
its content policy with no violation reported, while the policy really
blocks an injected inline script, and no other site may frame a page.

Violations are collected twice: Chromium's console messages that name the
Content Security Policy, and the document's `securitypolicyviolation`
events (reported through a Playwright binding, which the policy does not
govern).  After each page is used, an inline script is injected as an
attacker's would be: it must not run and must be the only report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.test_centre_browser import (  # noqa: F401 - the centre fixtures
    ADMIN,
    AUTH,
    PASSWORD,
    UI_TIMEOUT_MS,
    CentreProc,
    _no_centre_env,
    alarm,
    centre,
)

REPORT_DEADLINE_S = 15.0
LISTEN = """
document.addEventListener("securitypolicyviolation", function (e) {
  window.hgCspReport(e.effectiveDirective + " blocked " + (e.blockedURI || "-") +
    " in " + (e.sourceFile || document.location.pathname) + ":" + e.lineNumber);
});
"""
PROBE = """() => {
  const s = document.createElement("script");
  s.textContent = "window.hgInlineRan = true";
  document.head.append(s);
  return window.hgInlineRan === true;
}"""


@dataclass
class Reports:
    events: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def on_event(self, text: str) -> None:
        self.events.append(text)

    def on_console(self, msg: ConsoleMessage) -> None:
        if "Content Security Policy" in msg.text:
            self.console.append(msg.text)

    def wait(self, done: Callable[[], bool], page: Page) -> None:
        deadline = time.monotonic() + REPORT_DEADLINE_S
        while not done():
            assert time.monotonic() < deadline, f"no report within {REPORT_DEADLINE_S} s: {self}"
            page.wait_for_timeout(100)

    def assert_clean_then_probe(self, page: Page, where: str) -> None:
        """Nothing reported while the page was used; then an injected inline
        script is blocked, and reported exactly once by both channels."""
        page.wait_for_timeout(300)  # a late report from the page's own work
        assert (self.events, self.console, self.errors) == ([], [], []), where
        assert page.evaluate(PROBE) is False, f"{where}: an inline script ran"
        self.wait(lambda: bool(self.events and self.console), page)
        page.wait_for_timeout(300)
        assert len(self.events) == 1 and self.events[0].startswith(
            "script-src-elem blocked inline"), (where, self.events)
        assert len(self.console) == 1 and "inline script" in self.console[0], where
        self.events.clear()
        self.console.clear()


@pytest.fixture
def reports(page: Page) -> Reports:
    seen = Reports()
    page.expose_function("hgCspReport", seen.on_event)
    page.add_init_script(LISTEN)
    page.on("console", seen.on_console)
    page.on("pageerror", lambda exc: seen.errors.append(str(exc)))
    return seen


def _ok(r: httpx.Response) -> None:
    assert r.status_code in (200, 201), r.text


def _use_login_page(page: Page, centre: CentreProc, reports: Reports) -> None:  # noqa: F811
    page.goto(centre.url + "/")
    expect(page).to_have_url(centre.url + "/login?next=%2F")
    page.click("#lang-switch")  # lang.js sets the cookie and reloads
    expect(page.locator("#login-submit")).to_have_text("Log in")
    page.click("#lang-switch")
    expect(page.locator("#login-submit")).to_have_text("登录")
    page.fill("input[name=username]", ADMIN)
    page.fill("input[name=password]", "not-the-password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_be_visible()
    reports.assert_clean_then_probe(page, "login")
    page.fill("input[name=username]", ADMIN)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(centre.url + "/")


def _use_desk(page: Page, centre: CentreProc, reports: Reports) -> None:  # noqa: F811
    conn = page.locator("#conn")
    expect(conn).to_have_attribute("data-state", "live", timeout=UI_TIMEOUT_MS)
    assert centre.ingest(alarm(1, device="hg-b-0001"), alarm(2, device="hg-b-0001",
                                                           typ="medical")) == 2 * ["accepted"]
    row = page.locator('#alarm-rows tr[data-device="hg-b-0001"][data-seq="1"]')
    expect(row).to_be_visible(timeout=UI_TIMEOUT_MS)  # arrived over the stream
    expect(page.locator("#open-count")).to_have_text("2", timeout=UI_TIMEOUT_MS)
    row.click()
    expect(page.locator("#detail-title")).to_contain_text("火警")
    expect(page.locator("#site-household")).to_have_text("H1", timeout=UI_TIMEOUT_MS)
    page.click("#act-ack")
    expect(page.locator("#detail")).to_have_attribute("data-state", "acknowledged")
    expect(page.locator("#audit li")).to_have_count(1)
    expect(page.locator("#action-error")).to_be_hidden()
    page.click("#lang-switch")
    expect(page.locator("#conn")).to_have_text("Live", timeout=UI_TIMEOUT_MS)
    page.click("#lang-switch")
    expect(conn).to_have_attribute("data-state", "live", timeout=UI_TIMEOUT_MS)
    # the desk's look comes from its stylesheet, not an inline <style>
    assert page.locator(".bar nav").evaluate("n => getComputedStyle(n).display") == "flex"
    assert page.locator("#more").evaluate("n => getComputedStyle(n).display") == "flex"
    reports.assert_clean_then_probe(page, "desk")


def _use_registry(page: Page, reports: Reports) -> None:
    page.click("#nav-registry")
    page.fill("#cell-form [name=code]", "G1")
    page.fill("#cell-form [name=name]", "G1 网格")
    page.fill("#cell-form [name=community]", "东风社区")
    page.fill("#cell-form [name=worker_name]", "张三")
    page.click("#cell-save")
    expect(page.locator('#cell-rows tr[data-code="G1"]')).to_contain_text("张三")
    for name, value in (("code", "H1"), ("address", "幸福路 8 号"), ("compound", "阳光小区"),
                        ("community", "东风社区")):
        page.fill(f"#household-form [name={name}]", value)
    page.select_option("#household-form [name=grid_cell]", "G1")
    contact = page.locator("#contact-rows .contact").nth(0)
    contact.locator("[data-field=name]").fill("王五")
    contact.locator("[data-field=phone]").fill("13900000001")
    page.click("#household-save")
    expect(page.locator('#household-rows tr[data-code="H1"]')).to_contain_text("幸福路 8 号")
    for name, value in (("device_id", "hg-b-0001"), ("board", "esp32-c3")):
        page.fill(f"#device-form [name={name}]", value)
    page.select_option("#household-choice", "H1")
    page.click("#device-save")
    expect(page.locator('#device-rows tr[data-code="hg-b-0001"]')).to_be_visible()
    expect(page.locator("#registry-error")).to_be_hidden()
    assert page.locator(".reg").evaluate("n => getComputedStyle(n).display") == "grid"
    reports.assert_clean_then_probe(page, "registry")


def _use_devices(page: Page, centre: CentreProc, reports: Reports) -> None:  # noqa: F811
    r = httpx.post(f"{centre.url}/api/v1/devices/status", headers=AUTH, timeout=10, json={
        "gateway": "gw-1", "items": [{"device": "hg-b-0001", "at_ms": int(time.time() * 1000),
                                      "battery_mv": 3900, "rssi": -61}]})
    _ok(r)
    page.click("#nav-devices")
    row = page.locator('#board-rows tr[data-device="hg-b-0001"]')
    expect(row).to_have_attribute("data-online", "true", timeout=UI_TIMEOUT_MS)
    expect(row.locator(".battery")).to_have_text("3.90 V")
    assert row.locator(".status").evaluate(
        "n => getComputedStyle(n).backgroundColor") != "rgba(0, 0, 0, 0)"
    reports.assert_clean_then_probe(page, "devices")


def _use_hazards(page: Page, centre: CentreProc, reports: Reports) -> None:  # noqa: F811
    _ok(centre.client().post("/api/v1/registry/devices", json={
        "device_id": "hg-s-0001", "type": "sensor", "household": "H1"}))
    assert centre.ingest(alarm(1, device="hg-s-0001", typ="residual_current",
                               data={})) == ["accepted"]
    page.click("#nav-hazards")
    row = page.locator('#hazard-rows tr[data-device="hg-s-0001"]')
    expect(row).to_have_attribute("data-state", "open", timeout=UI_TIMEOUT_MS)
    row.locator("input.note").fill("漏电保护器已更换")
    row.locator("button.rectify").click()
    expect(row).to_have_attribute("data-state", "rectified", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#hazard-error")).to_be_hidden()
    reports.assert_clean_then_probe(page, "hazards")


def _use_overview(page: Page, reports: Reports) -> None:
    page.click("#nav-overview")
    tile = page.locator('#communities li.tile[data-community="东风社区"]')
    expect(tile).to_have_attribute("data-colour", "green", timeout=UI_TIMEOUT_MS)
    assert tile.evaluate("n => getComputedStyle(n).backgroundColor") == "rgb(46, 125, 50)"
    reports.assert_clean_then_probe(page, "overview")


def test_every_page_works_under_the_policy_with_no_violation(
    centre: CentreProc, page: Page, reports: Reports, artifacts_dir: Path  # noqa: F811
) -> None:
    _use_login_page(page, centre, reports)
    # the registry first: the desk's alarm then shows its household
    _use_registry(page, reports)
    page.click("#nav-desk")
    _use_desk(page, centre, reports)
    _use_devices(page, centre, reports)
    _use_hazards(page, centre, reports)
    _use_overview(page, reports)
    page.screenshot(path=str(artifacts_dir / "centre-under-csp.png"), full_page=True,
                    animations="disabled")
    page.click("#logout")  # a form post under form-action 'self'
    expect(page).to_have_url(centre.url + "/login")
    reports.assert_clean_then_probe(page, "login after logout")


def test_another_site_cannot_frame_a_page(
    centre: CentreProc, page: Page, reports: Reports  # noqa: F811
) -> None:
    page.set_content(f'<iframe id="framed" src="{centre.url}/login"></iframe>')
    reports.wait(lambda: any("frame-ancestors" in m for m in reports.console), page)
    framed = page.frame_locator("#framed")
    expect(framed.locator("#login")).to_have_count(0)
