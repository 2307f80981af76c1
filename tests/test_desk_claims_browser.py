"""One operator per alarm in the browser (issue 18), in headless Chromium
against one real centre per database (SQLite and PostgreSQL): two operators'
desks take one alarm at the same moment and exactly one holds it, the other
told who; a supervisor reassigns through the panel, the holder releases it,
and a logout frees it, each seen live on the other desks; the note, release
and reassign by keyboard alone, Space opening a row as Enter does.  The
tests share the module's centre: each uses devices of its own."""

# ruff: noqa: F811 - the `shared_desk` fixture is imported by name
from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.desk_centre import DeskCentre, shared_desk  # noqa: F401 - fixtures
from tests.harness.browser import VIEWPORT
from tests.test_centre_browser import alarm

WAIT_MS = 30_000
WAIT_S = 60
RACES = 3
HELD = "{user} 正在处理此报警；如需接手，请值班长改派"
# a key pressed in each desk at one moment (the pages' clocks are the machine's)
PRESS_AT = """([id, at]) => { setTimeout(function () {
    const tr = document.querySelector('#alarm-rows tr[data-alarm-id="' + id + '"]');
    tr.focus();
    tr.dispatchEvent(new KeyboardEvent("keydown", { key: "a", bubbles: true }));
}, at - Date.now()); }"""


@pytest.fixture
def open_desk(shared_desk: DeskCentre, browser: Any) -> Iterator[Callable[[str], Page]]:
    """Opens the desk for a user in a browser context of its own (a second
    operator's browser), logged in with a session of its own."""
    contexts: list[Any] = []

    def open_as(username: str) -> Page:
        context = browser.new_context(locale="zh-CN", viewport=VIEWPORT)
        contexts.append(context)
        session = shared_desk.operator(username).cookies["hg_session"]
        context.add_cookies([{"name": "hg_session", "value": session, "url": shared_desk.url}])
        page = context.new_page()
        page.goto(shared_desk.url + "/")
        expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        return page

    yield open_as
    for context in contexts:
        context.close()


def _row(page: Page, device: str) -> Any:
    return page.locator(f'#alarm-rows tr[data-device="{device}"]')


def _open(page: Page, device: str, holder: str) -> None:
    """Click the device's row once the desk shows its holder (a live update
    re-draws the row: the click waits for the one the test expects)."""
    row = _row(page, device)
    expect(row.locator("td.operator")).to_have_text(holder, timeout=WAIT_MS)
    row.click()
    expect(page.locator("#detail")).to_have_attribute(
        "data-alarm-id", row.get_attribute("data-alarm-id") or "", timeout=WAIT_MS)


def _audit(desk: DeskCentre, alarm_id: str) -> list[dict[str, Any]]:
    return list(desk.client().get(f"/api/v1/alarms/{alarm_id}").json()["audit"])


def _acked(desk: DeskCentre, alarm_id: str) -> list[dict[str, Any]]:
    """The alarm's audit once somebody has taken it (60 s at most)."""
    deadline = time.monotonic() + WAIT_S
    while not (audit := _audit(desk, alarm_id)):
        assert time.monotonic() < deadline, f"alarm {alarm_id} never taken"
        time.sleep(0.1)
    return audit


def test_two_desks_take_one_alarm_at_once_and_one_holds_it(
        shared_desk: DeskCentre, open_desk: Callable[[str], Page]) -> None:
    desks = {name: open_desk(name) for name in ("olga", "oscar")}
    for n in range(RACES):
        device = f"hg-b-07{n:02d}"
        assert shared_desk.ingest(alarm(1, device=device, typ="fire")) == ["accepted"]
        for page in desks.values():  # both have it open, the take button on show
            _open(page, device, "待领取")
            expect(page.locator("#act-ack")).to_be_visible(timeout=WAIT_MS)
        alarm_id = _row(desks["olga"], device).get_attribute("data-alarm-id")
        at = time.time() * 1000 + 1500  # time enough to reach both pages first
        for page in desks.values():
            page.evaluate(PRESS_AT, [alarm_id, at])
        assert alarm_id is not None
        winner = _acked(shared_desk, alarm_id)[0]["username"]
        [loser] = [name for name in desks if name != winner]
        expect(_row(desks[winner], device).locator("td.operator")).to_have_text(
            f"{winner}（本人）", timeout=WAIT_MS)
        # the loser's take was refused (409): told who holds it, no actions left
        expect(desks[loser].locator("#action-error")).to_have_text(
            re.compile(re.escape(HELD.format(user=winner))), timeout=WAIT_MS)
        expect(desks[loser].locator("#actions .held")).to_have_text(
            HELD.format(user=winner), timeout=WAIT_MS)
        expect(desks[loser].locator("#act-verify-genuine")).to_have_count(0)
        expect(_row(desks[loser], device).locator("td.operator")).to_have_text(
            winner, timeout=WAIT_MS)
        audit = _audit(shared_desk, alarm_id)  # both answered: one take stored
        assert [(a["action"], a["username"], a["claimed_by"]) for a in audit] == [
            ("ack", winner, winner)]


def test_reassign_release_and_logout_through_the_panel(
        shared_desk: DeskCentre, open_desk: Callable[[str], Page]) -> None:
    device = "hg-b-0800"
    assert shared_desk.ingest(alarm(1, device=device, typ="medical")) == ["accepted"]
    olga, oscar, sam = (open_desk(name) for name in ("olga", "oscar", "sam"))
    _open(olga, device, "待领取")
    olga.click("#act-ack", timeout=WAIT_MS)
    expect(_row(olga, device).locator("td.operator")).to_have_text("olga（本人）",
                                                                  timeout=WAIT_MS)
    # the supervisor sees who holds it and hands it to oscar
    _open(sam, device, "olga")
    expect(sam.locator("#actions .held")).to_have_text(HELD.format(user="olga"),
                                                       timeout=WAIT_MS)
    sam.fill("#reassign-to", "oscar", timeout=WAIT_MS)
    sam.click("#act-reassign")
    for page, shown in ((oscar, "oscar（本人）"), (olga, "oscar"), (sam, "oscar")):
        expect(_row(page, device).locator("td.operator")).to_have_text(shown, timeout=WAIT_MS)
    # the holder releases it: free on every desk
    _open(oscar, device, "oscar（本人）")
    oscar.click("#act-release", timeout=WAIT_MS)
    for page in (olga, oscar, sam):
        expect(_row(page, device).locator("td.operator")).to_have_text("待领取",
                                                                      timeout=WAIT_MS)
    # olga takes it again by acting on it and logs out: oscar's desk sees it freed
    expect(olga.locator("#actions .held")).to_have_count(0, timeout=WAIT_MS)  # re-drawn free
    olga.click("#act-verify-genuine", timeout=WAIT_MS)
    expect(_row(oscar, device).locator("td.operator")).to_have_text("olga", timeout=WAIT_MS)
    olga.click("#logout")
    expect(olga).to_have_url(re.compile(r"/login"), timeout=WAIT_MS)
    expect(_row(oscar, device).locator("td.operator")).to_have_text("待领取", timeout=WAIT_MS)
    expect(oscar.locator("#audit li").last).to_contain_text("退出登录后释放", timeout=WAIT_MS)
    audit = _audit(shared_desk, str(_row(oscar, device).get_attribute("data-alarm-id")))
    assert [(a["action"], a["username"], a["claimed_by"]) for a in audit] == [
        ("ack", "olga", "olga"), ("reassign", "sam", "oscar"), ("release", "oscar", None),
        ("verify", "olga", "olga"), ("release", "olga", None)]
    assert [a["note"] for a in audit if a["action"] == "release"] == ["released", "logout"]


def _cursor_to(page: Page, device: str) -> None:
    """↓ until the cursor is on the device's row (others' alarms share the desk)."""
    for _ in range(50):
        page.keyboard.press("ArrowDown")
        if page.evaluate("() => document.activeElement.dataset.device") == device:
            return
    raise AssertionError(f"{device}'s row not reached by ↓")


def test_note_release_and_reassign_by_keyboard_alone(
        shared_desk: DeskCentre, open_desk: Callable[[str], Page]) -> None:
    device = "hg-b-0900"
    assert shared_desk.ingest(alarm(1, device=device, typ="security")) == ["accepted"]
    oscar, sam = open_desk("oscar"), open_desk("sam")
    kb = oscar.keyboard
    expect(_row(oscar, device)).to_have_count(1, timeout=WAIT_MS)
    kb.press("?")
    keys = oscar.locator("#keys")
    for line in ("填写备注", "释放本人领取的报警", "改派（值班长）"):
        expect(keys).to_contain_text(line)
    kb.press("Escape")
    expect(keys).to_be_hidden()
    _cursor_to(oscar, device)
    kb.press(" ")  # Space opens the row as Enter does
    detail = oscar.locator("#detail")
    alarm_id = _row(oscar, device).get_attribute("data-alarm-id") or ""
    expect(detail).to_have_attribute("data-alarm-id", alarm_id, timeout=WAIT_MS)
    kb.press("n")  # the note field, then back to the row with Esc
    expect(oscar.locator("#action-note")).to_be_focused(timeout=WAIT_MS)
    kb.type("called the home twice")
    kb.press("Escape")
    expect(_row(oscar, device)).to_be_focused(timeout=WAIT_MS)
    kb.press("a")
    expect(detail).to_have_attribute("data-state", "acknowledged", timeout=WAIT_MS)
    expect(_row(oscar, device).locator("td.operator")).to_have_text("oscar（本人）",
                                                                   timeout=WAIT_MS)
    kb.press("u")  # released
    expect(_row(oscar, device).locator("td.operator")).to_have_text("待领取", timeout=WAIT_MS)
    # the supervisor hands it to olga by keyboard (the field starts with sam)
    expect(_row(sam, device).locator("td.operator")).to_have_text("待领取", timeout=WAIT_MS)
    _cursor_to(sam, device)
    sam.keyboard.press("Enter")
    expect(sam.locator("#detail")).to_have_attribute("data-alarm-id", alarm_id, timeout=WAIT_MS)
    sam.keyboard.press("t")
    expect(sam.locator("#reassign-to")).to_be_focused(timeout=WAIT_MS)
    sam.keyboard.press("Control+a")
    sam.keyboard.type("olga")
    sam.keyboard.press("Enter")
    for page in (oscar, sam):
        expect(_row(page, device).locator("td.operator")).to_have_text("olga", timeout=WAIT_MS)
    audit = _audit(shared_desk, alarm_id)
    assert [(a["action"], a["username"], a["claimed_by"]) for a in audit] == [
        ("ack", "oscar", "oscar"), ("release", "oscar", None), ("reassign", "sam", "olga")]
    assert audit[0]["note"] == "called the home twice"  # typed, then sent with the take


def test_the_first_press_on_the_desk_opens_the_row_under_it(
        shared_desk: DeskCentre, open_desk: Callable[[str], Page]) -> None:
    """A desk opened untouched has the enable-sound bar up; the first press
    starts the sound, and the bar goes once the press is up, not while it is
    down (the rows moved up under the pointer and the click opened nothing)."""
    device = "hg-b-1000"
    assert shared_desk.ingest(alarm(1, device=device, typ="medical")) == ["accepted"]
    page = open_desk("olga")
    bar = page.locator("#sound-bar")
    expect(bar).to_be_visible()
    row = _row(page, device)
    expect(row.locator("td.operator")).to_have_text("待领取", timeout=WAIT_MS)
    row.scroll_into_view_if_needed()
    box = row.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_function("() => window.HGAlert.audio() === 'running'", timeout=WAIT_MS)
    expect(bar).to_be_visible()  # the press is still down: nothing moves
    page.mouse.up()
    expect(bar).to_be_hidden(timeout=WAIT_MS)
    expect(page.locator("#detail")).to_have_attribute(
        "data-alarm-id", row.get_attribute("data-alarm-id") or "", timeout=WAIT_MS)
