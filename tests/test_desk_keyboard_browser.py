"""The alarm desk from the keyboard alone (issue 18), in headless Chromium
against the real centre on SQLite and PostgreSQL: log in, move, open, take,
verify, dispatch and resolve (with its confirmation), the keys overlay and
mute, every step by page.keyboard only."""

# ruff: noqa: F811 - the `desk` fixture is imported by name
from __future__ import annotations

import re

from playwright.sync_api import Page, Route, expect

from tests.desk_centre import (  # noqa: F401 - fixtures
    REGISTERED,
    USER_PASSWORD,
    DeskCentre,
    centre_env,
    desk,
)
from tests.test_centre_browser import UI_TIMEOUT_MS, alarm


def _focused_alarm(page: Page) -> str | None:
    return page.evaluate("() => document.activeElement.dataset.alarmId || null")


def test_every_step_of_an_alarm_by_keyboard_only(desk: DeskCentre, page: Page) -> None:
    assert desk.ingest(alarm(1, device=REGISTERED, typ="medical"),
                       alarm(2, device="hg-b-0200", typ="fire")) == ["accepted"] * 2
    kb = page.keyboard
    page.goto(desk.url + "/")
    expect(page.locator("input[name=username]")).to_be_focused()  # autofocus
    kb.type("olga")
    kb.press("Tab")
    kb.type(USER_PASSWORD)
    kb.press("Enter")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=UI_TIMEOUT_MS)
    rows = page.locator("#alarm-rows tr")
    expect(rows).to_have_count(2)
    fire, medical = (rows.nth(i).get_attribute("data-alarm-id") for i in range(2))

    kb.press("?")
    expect(page.locator("#keys")).to_be_visible()
    expect(page.locator("#keys")).to_contain_text("办结（需确认）")
    kb.press("Escape")
    expect(page.locator("#keys")).to_be_hidden()

    kb.press("ArrowDown")  # the first row: the fire
    assert _focused_alarm(page) == fire
    kb.press("j")
    assert _focused_alarm(page) == medical
    kb.press("k")
    kb.press("ArrowDown")
    kb.press("Enter")
    detail = page.locator("#detail")
    expect(detail).to_have_attribute("data-alarm-id", medical)
    expect(page.locator("#detail-title")).to_contain_text("医疗求助")

    kb.press("a")
    expect(detail).to_have_attribute("data-state", "acknowledged", timeout=UI_TIMEOUT_MS)
    row = page.locator(f'#alarm-rows tr[data-alarm-id="{medical}"]')
    expect(row.locator("td.operator")).to_have_text("olga（本人）")
    assert _focused_alarm(page) == medical  # the cursor stays on the alarm

    kb.press("v")
    ask = page.locator("#ask")
    expect(ask).to_be_visible()
    expect(ask).to_contain_text("1 真实警情")
    kb.press("1")
    expect(ask).to_be_hidden()
    expect(detail).to_have_attribute("data-state", "verified", timeout=UI_TIMEOUT_MS)

    kb.press("d")
    expect(ask).to_contain_text("2 巡逻队")
    kb.press("2")
    expect(detail).to_have_attribute("data-state", "dispatched", timeout=UI_TIMEOUT_MS)

    kb.press("r")  # cannot be undone: asks first; Escape keeps it open
    expect(ask).to_contain_text("不能撤销")
    kb.press("Escape")
    expect(ask).to_be_hidden()
    expect(detail).to_have_attribute("data-state", "dispatched")
    kb.press("r")
    expect(ask).to_be_visible()
    kb.press("Enter")
    expect(detail).to_have_attribute("data-state", "resolved", timeout=UI_TIMEOUT_MS)
    expect(row).to_have_count(0)
    expect(rows).to_have_count(1)

    kb.press("m")  # the sound, by key too
    expect(page.locator("#sound-state")).to_have_text("报警声音已关闭")
    kb.press("m")
    expect(page.locator("#mute")).to_have_text("关闭声音")

    # a question closed and the next asked in one task (as when a key comes
    # before the close event): the late close event leaves the new one open
    assert page.evaluate("""async () => {
        const ask = document.getElementById("ask");
        window.HGKeys.question("one", [["1", "1 x", "x"]]);
        ask.close();
        const second = window.HGKeys.question("two", [["1", "1 y", "y"]]);
        await new Promise(function (r) { setTimeout(r, 50); });
        const open = ask.open;
        document.querySelector('#ask-choices button[data-key="1"]').click();
        return [open, await second];
    }""") == [True, "y"]
    expect(ask).to_be_hidden()

    audit = desk.operator("oscar").get(f"/api/v1/alarms/{medical}").json()["audit"]
    assert [(a["action"], a["username"], a["outcome"], a["dispatched_to"]) for a in audit] == [
        ("ack", "olga", None, None), ("verify", "olga", "genuine", None),
        ("dispatch", "olga", None, "patrol"), ("resolve", "olga", None, None)]


def test_a_key_on_an_alarm_someone_else_holds_says_who(desk: DeskCentre, page: Page) -> None:
    assert desk.ingest(alarm(1, device=REGISTERED, typ="fire")) == ["accepted"]
    assert desk.operator("oscar").post("/api/v1/alarms/1/ack", json={}).status_code == 200
    kb = page.keyboard
    page.goto(desk.url + "/")
    kb.type("olga")
    kb.press("Tab")
    kb.type(USER_PASSWORD)
    kb.press("Enter")
    # every script has run once the stream is live
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#alarm-rows tr")).to_have_count(1)
    kb.press("ArrowDown")
    assert _focused_alarm(page) == "1"
    kb.press("v")
    expect(page.locator("#action-error")).to_have_text(
        re.compile("oscar 正在处理此报警"), timeout=UI_TIMEOUT_MS)
    expect(page.locator("#detail")).to_have_attribute("data-state", "acknowledged")


def test_a_click_before_the_panel_script_has_loaded_still_opens_the_alarm(
        desk: DeskCentre, page: Page) -> None:
    """The rows are drawn from the page before panel.js has run; a click in
    that moment (panel.js slow to arrive on a busy machine) opens the alarm
    once it is there instead of being ignored."""
    assert desk.ingest(alarm(1, device=REGISTERED, typ="fire")) == ["accepted"]
    client = desk.operator("olga")
    page.context.add_cookies([
        {"name": "hg_session", "value": client.cookies["hg_session"], "url": desk.url}])
    held: list[Route] = []
    page.route("**/static/panel.js", lambda route: held.append(route))
    page.goto(desk.url + "/", wait_until="commit")
    row = page.locator("#alarm-rows tr")
    expect(row).to_have_count(1, timeout=UI_TIMEOUT_MS)
    row.click()
    expect(page.locator("#detail")).not_to_have_attribute("data-alarm-id", re.compile("."))
    assert len(held) == 1  # panel.js was asked for and is still held
    held[0].continue_()
    expect(page.locator("#detail")).to_have_attribute("data-alarm-id", "1",
                                                      timeout=UI_TIMEOUT_MS)
    expect(page.locator("#detail-title")).to_contain_text("火警")
