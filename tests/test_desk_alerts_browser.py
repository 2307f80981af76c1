"""The alarm desk as a 24/7 receiving centre sees it (issue 18), in headless
Chromium against the real centre on SQLite and PostgreSQL: the stack
(untaken first, then priority, then age; the true count; household,
address, grid cell; readable data; who holds each alarm, live), and alerting
until an alarm is taken (tone per priority, flashing rows, the count in the
title, a desktop notification while hidden, the enable-sound bar while the
browser blocks audio, mute per operator and audited).  Screenshots of the
desk in zh-CN and en are kept in test-artifacts/."""

# ruff: noqa: F811 - the `desk` fixture is imported by name
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.desk_centre import (  # noqa: F401 - fixtures
    REGISTERED,
    USER_PASSWORD,
    DeskCentre,
    centre_env,
    desk,
)
from tests.test_centre_browser import UI_TIMEOUT_MS, alarm, log_in

WAIT_MS = 30_000


def _stack(desk: DeskCentre) -> None:
    """A dispatched fire, then a new security alarm, a residual-current
    alarm and a fire on the registered household, none of them taken."""
    admin = desk.client()
    assert desk.ingest(alarm(1, device="hg-b-0200", typ="fire", data={"btn": "f"})) == [
        "accepted"]
    for action, body in (("ack", {}), ("verify", {"outcome": "genuine"}),
                         ("dispatch", {"to": "grid_worker"})):
        assert admin.post(f"/api/v1/alarms/1/{action}", json=body).status_code == 200
    assert desk.ingest(
        alarm(2, device="hg-b-0300", typ="security", data={"btn": "s"}),
        alarm(3, device="hg-s-0007", typ="residual_current", device_time_ms=None,
              data={"ma": 342, "set_ma": 300, "ch": "leak"}),
        alarm(4, device=REGISTERED, typ="fire", data={"btn": "f"}),
    ) == ["accepted"] * 3


def _open_untouched(desk: DeskCentre, page: Page, username: str) -> None:
    """The desk logged in without the page being used (the login cookie from
    an HTTP login), so the browser keeps its audio suspended."""
    client = desk.operator(username)
    page.context.add_cookies([{"name": "hg_session", "value": client.cookies["hg_session"],
                               "url": desk.url}])
    page.goto(desk.url + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=UI_TIMEOUT_MS)


def _order(page: Page) -> list[str]:
    return page.eval_on_selector_all("#alarm-rows tr", "trs => trs.map(tr => tr.dataset.device)")


def test_the_stack_in_chinese_and_english(desk: DeskCentre, page: Page, browser: Any,
                                          artifacts_dir: Path) -> None:
    _stack(desk)
    log_in(page, desk.url, "olga", USER_PASSWORD)
    rows = page.locator("#alarm-rows tr")
    expect(rows).to_have_count(4)
    # untaken first (fire, security, residual current), the dispatched fire last
    assert _order(page) == [REGISTERED, "hg-b-0300", "hg-s-0007", "hg-b-0200"]
    expect(page.locator("#open-count")).to_have_text("4")
    expect(page).to_have_title("(3) 报警台 · Homeguard")
    first = rows.first
    expect(first.locator("td.type")).to_contain_text("火警")
    expect(first.locator("td.type")).to_contain_text("按键：火警")
    expect(first.locator("td.site")).to_contain_text("H-0101 和平花园 3号楼 2单元 201")
    expect(first.locator("td.area")).to_contain_text("和平社区")
    expect(first.locator("td.area")).to_contain_text("G-07 和平第七网格")
    expect(first.locator("td.operator")).to_have_text("待领取")
    expect(first).to_have_class(re.compile(r"\bunhandled\b"))
    expect(rows.nth(2).locator("td.type")).to_contain_text("剩余电流 342 mA（设定 300 mA）")
    expect(rows.nth(2).locator("td.site")).to_contain_text("未登记设备")
    expect(rows.nth(3).locator("td.operator")).to_have_text("admin")
    expect(rows.nth(3)).not_to_have_class(re.compile(r"\bunhandled\b"))
    expect(rows.nth(3).locator("td.timer")).to_have_text("")
    page.screenshot(path=str(artifacts_dir / f"desk-zh-CN-{desk.db}.png"), full_page=True,
                    animations="disabled")

    # the same stack in English, in an en-US browser (one centre for both)
    context = browser.new_context(locale="en-US", viewport={"width": 1366, "height": 800})
    try:
        en = context.new_page()
        context.add_cookies([{"name": "hg_lang", "value": "en", "url": desk.url}])
        log_in(en, desk.url, "olga", USER_PASSWORD)
        rows = en.locator("#alarm-rows tr")
        expect(rows).to_have_count(4)
        expect(en).to_have_title("(3) Alarm desk · Homeguard")
        expect(rows.first.locator("td.type")).to_contain_text("Button: Fire")
        expect(rows.nth(2).locator("td.type")).to_contain_text(
            "Residual current 342 mA (set 300 mA)")
        expect(rows.first.locator("td.operator")).to_have_text("Not taken")
        expect(rows.first.locator("td.timer")).to_have_text(
            re.compile(r"^Unacknowledged \d+ s$"))
        en.screenshot(path=str(artifacts_dir / f"desk-en-{desk.db}.png"), full_page=True,
                      animations="disabled")
    finally:
        context.close()


def test_others_see_who_took_an_alarm_live(desk: DeskCentre, page: Page, browser: Any) -> None:
    other = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 800})
    try:
        watcher = other.new_page()
        log_in(page, desk.url, "olga", USER_PASSWORD)
        log_in(watcher, desk.url, "oscar", USER_PASSWORD)
        assert desk.ingest(alarm(1, device=REGISTERED, typ="medical")) == ["accepted"]
        mine = page.locator("#alarm-rows tr").first
        seen = watcher.locator("#alarm-rows tr").first
        expect(mine).to_be_visible(timeout=UI_TIMEOUT_MS)
        mine.click()
        page.click("#act-ack")
        expect(mine.locator("td.operator")).to_have_text("olga（本人）", timeout=UI_TIMEOUT_MS)
        expect(seen.locator("td.operator")).to_have_text("olga", timeout=UI_TIMEOUT_MS)
        expect(seen).not_to_have_class(re.compile(r"\bunhandled\b"))
        seen.click()
        expect(watcher.locator("#actions .held")).to_have_text(
            "olga 正在处理此报警；如需接手，请值班长改派")
        expect(watcher.locator("#act-verify-genuine")).to_have_count(0)
        # a supervisor hands it to oscar: both desks follow
        r = desk.operator("sam").post("/api/v1/alarms/1/reassign", json={"to": "oscar"})
        assert r.status_code == 200, r.text
        expect(seen.locator("td.operator")).to_have_text("oscar（本人）", timeout=UI_TIMEOUT_MS)
        expect(mine.locator("td.operator")).to_have_text("oscar", timeout=UI_TIMEOUT_MS)
        expect(watcher.locator("#act-verify-genuine")).to_be_visible(timeout=UI_TIMEOUT_MS)
        expect(watcher.locator("#audit li").nth(1)).to_contain_text("改派")
    finally:
        other.close()


def test_a_tone_repeats_until_taken_and_mute_is_kept(desk: DeskCentre, page: Page) -> None:
    _open_untouched(desk, page, "olga")
    # headless Chromium keeps audio suspended until the page is used
    bar = page.locator("#sound-bar")
    expect(bar).to_be_visible()
    expect(bar).to_have_text("浏览器阻止了报警声音 —— 点击此处开启声音")
    expect(page.locator("#sound-state")).to_have_attribute("data-state", "off")
    assert page.evaluate("window.HGAlert.audio()") == "suspended"
    bar.click()  # one click clears it
    expect(bar).to_be_hidden()
    expect(page.locator("#sound-state")).to_have_attribute("data-state", "on")
    page.wait_for_function("() => window.HGAlert.audio() === 'running'", timeout=WAIT_MS)
    assert page.evaluate("window.HGAlert.tone()") is None  # nothing waiting: silence

    assert desk.ingest(alarm(1, typ="medical"), alarm(2, device="hg-b-0200")) == ["accepted"] * 2
    expect(page.locator("#alarm-rows tr")).to_have_count(2, timeout=UI_TIMEOUT_MS)
    page.wait_for_function("() => window.HGAlert.tone() === 1", timeout=WAIT_MS)  # the fire's tone
    start = page.evaluate("window.HGAlert.played.tones")
    page.wait_for_function(f"() => window.HGAlert.played.tones >= {start} + 6", timeout=WAIT_MS)
    expect(page).to_have_title("(2) 报警台 · Homeguard")

    olga = desk.operator("olga")
    fire = page.locator('#alarm-rows tr[data-type="fire"]').get_attribute("data-alarm-id")
    assert olga.post(f"/api/v1/alarms/{fire}/ack", json={}).status_code == 200
    page.wait_for_function("() => window.HGAlert.tone() === 2", timeout=WAIT_MS)  # the medical's
    expect(page).to_have_title("(1) 报警台 · Homeguard", timeout=UI_TIMEOUT_MS)
    medical = page.locator('#alarm-rows tr[data-type="medical"]').get_attribute("data-alarm-id")
    assert olga.post(f"/api/v1/alarms/{medical}/ack", json={}).status_code == 200
    page.wait_for_function("() => window.HGAlert.tone() === null", timeout=WAIT_MS)
    expect(page).to_have_title("报警台 · Homeguard", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#alarm-rows tr.unhandled")).to_have_count(0)

    # mute is the operator's, kept by the centre and audited
    assert desk.ingest(alarm(3, device="hg-b-0400")) == ["accepted"]
    page.wait_for_function("() => window.HGAlert.tone() === 1", timeout=WAIT_MS)
    page.click("#mute")
    expect(page.locator("#sound-state")).to_have_text("报警声音已关闭")
    expect(page.locator("#mute")).to_have_text("开启声音")
    page.wait_for_function("() => window.HGAlert.tone() === null", timeout=WAIT_MS)
    page.reload()  # the centre keeps it: still muted
    expect(page.locator("#sound-state")).to_have_attribute("data-state", "off")
    expect(page.locator("#sound-bar")).to_be_hidden()  # muted: no bar asking for sound
    assert desk.operator("olga").get("/api/v1/desk/sound").json() == {"muted": True}
    assert desk.operator("oscar").get("/api/v1/desk/sound").json() == {"muted": False}
    page.click("#mute")
    expect(page.locator("#mute")).to_have_text("关闭声音")
    audit = desk.client().get("/api/v1/auth-audit", params={"subject": "olga"}).json()
    assert [a["action"] for a in audit if a["action"].startswith("sound")] == [
        "sound_on", "sound_off"]


def test_a_desktop_notification_while_the_tab_is_hidden(desk: DeskCentre, page: Page) -> None:
    page.add_init_script("""
        window.__notes = [];
        window.Notification = class {
            constructor(title, options) { window.__notes.push({title, body: options.body}); }
            static get permission() { return "granted"; }
            static requestPermission() { return Promise.resolve("granted"); }
        };
        Object.defineProperty(document, "hidden", {get: () => true});
    """)
    log_in(page, desk.url, "olga", USER_PASSWORD)
    assert desk.ingest(alarm(1, device=REGISTERED, typ="fire")) == ["accepted"]
    page.wait_for_function("() => window.__notes.length === 1", timeout=WAIT_MS)
    note = page.evaluate("window.__notes[0]")
    assert note == {"title": "新报警：火警", "body": "H-0101 和平花园 3号楼 2单元 201，等待受理"}
