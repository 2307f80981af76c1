"""Action plans on the desk (issue 18), in headless Chromium against the
real centre on SQLite and PostgreSQL: a fire alarm's plan in the detail
panel, steps recorded by number keys and by mouse (outcome, who, time; the
audit names the step), resolving asks for the result and lists the steps
nobody did; the same in English; a supervisor edits a plan on /plans and
the desk follows.  Screenshots test-artifacts/desk-plan-zh-CN-*.png and
desk-plan-en-*.png."""

# ruff: noqa: F811 - the `desk` fixture is imported by name
from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.desk_centre import (  # noqa: F401 - fixtures
    REGISTERED,
    DeskCentre,
    centre_env,
    desk,
)
from tests.test_centre_browser import alarm

WAIT_MS = 30_000


def _open_desk(desk: DeskCentre, page: Page, username: str, lang: str = "zh-CN") -> None:
    client = desk.operator(username)
    page.context.add_cookies([
        {"name": "hg_session", "value": client.cookies["hg_session"], "url": desk.url},
        {"name": "hg_lang", "value": lang, "url": desk.url}])
    page.goto(desk.url + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)


def _take_first(page: Page) -> None:
    """The first row opened and taken by keyboard, its plan on show."""
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("#plan li")).to_have_count(4, timeout=WAIT_MS)
    page.keyboard.press("a")
    expect(page.locator("#detail")).to_have_attribute("data-state", "acknowledged",
                                                      timeout=WAIT_MS)
    expect(page.locator("#step-1")).to_be_visible(timeout=WAIT_MS)


def _record(page: Page, step: int, outcome_key: str) -> None:
    page.keyboard.press(str(step))
    ask = page.locator("#ask")
    expect(ask).to_be_visible(timeout=WAIT_MS)
    page.keyboard.press(outcome_key)
    expect(ask).to_be_hidden(timeout=WAIT_MS)


def test_a_fire_alarm_worked_through_its_plan(desk: DeskCentre, page: Page,
                                             artifacts_dir: Path) -> None:
    assert desk.ingest(alarm(1, device=REGISTERED, typ="fire",
                             data={"btn": "f"})) == ["accepted"]
    _open_desk(desk, page, "olga")
    _take_first(page)
    steps = page.locator("#plan li")
    expect(steps.nth(0)).to_contain_text("致电住户，核实情况", timeout=WAIT_MS)
    expect(steps.nth(3)).to_contain_text("确认火情后拨打 119", timeout=WAIT_MS)
    expect(steps.nth(0)).to_contain_text("未执行", timeout=WAIT_MS)

    page.keyboard.press("1")  # step 1: the dialog names it and the outcomes
    ask = page.locator("#ask")
    expect(ask).to_contain_text("第 1 步：致电住户，核实情况", timeout=WAIT_MS)
    expect(ask).to_contain_text("2 无人接听", timeout=WAIT_MS)
    page.keyboard.press("2")
    expect(steps.nth(0)).to_have_attribute("data-outcome", "no_answer", timeout=WAIT_MS)
    expect(steps.nth(0)).to_contain_text("无人接听 · olga", timeout=WAIT_MS)
    _record(page, 1, "1")
    expect(steps.nth(0)).to_have_attribute("data-outcome", "done", timeout=WAIT_MS)
    _record(page, 2, "3")
    expect(steps.nth(1)).to_have_attribute("data-outcome", "not_needed", timeout=WAIT_MS)
    page.click("#step-3")  # by mouse too
    page.click('#ask-choices button[data-value="done"]')
    expect(steps.nth(2)).to_have_attribute("data-outcome", "done", timeout=WAIT_MS)
    audit = page.locator('#audit li[data-action="step"]')
    expect(audit).to_have_count(4, timeout=WAIT_MS)
    expect(audit.nth(0)).to_contain_text("预案步骤 · 致电住户，核实情况 · 无人接听",
                                         timeout=WAIT_MS)
    page.screenshot(path=str(artifacts_dir / f"desk-plan-zh-CN-{desk.db}.png"), full_page=True,
                    animations="disabled")

    page.keyboard.press("v")
    page.keyboard.press("1")
    expect(page.locator("#detail")).to_have_attribute("data-state", "verified", timeout=WAIT_MS)
    page.keyboard.press("r")  # the result, and the step nobody did
    expect(ask).to_contain_text("以下预案步骤尚未执行：确认火情后拨打 119", timeout=WAIT_MS)
    expect(ask).to_contain_text("不能撤销", timeout=WAIT_MS)
    expect(ask).to_contain_text("确定（真实警情）", timeout=WAIT_MS)
    page.keyboard.press("Escape")
    expect(ask).to_be_hidden(timeout=WAIT_MS)
    expect(page.locator("#detail")).to_have_attribute("data-state", "verified", timeout=WAIT_MS)
    page.keyboard.press("r")
    expect(ask).to_be_visible(timeout=WAIT_MS)
    page.keyboard.press("2")  # closes as a false alarm after all
    expect(page.locator("#detail")).to_have_attribute("data-state", "resolved", timeout=WAIT_MS)
    got = desk.operator("oscar").get("/api/v1/alarms/1").json()
    assert got["alarm"]["outcome"] == "false"
    assert [(a["action"], a["outcome"]) for a in got["audit"]] == [
        ("ack", None), ("step", "no_answer"), ("step", "done"), ("step", "not_needed"),
        ("step", "done"), ("verify", "genuine"), ("resolve", "false")]
    plan = desk.operator("oscar").get("/api/v1/alarms/1/plan").json()
    assert plan["skipped"] == ["call_119"]
    assert plan["steps"][0]["records"][-1]["username"] == "olga"


def test_the_plan_in_english(desk: DeskCentre, page: Page, artifacts_dir: Path) -> None:
    assert desk.ingest(alarm(1, device=REGISTERED, typ="fire",
                             data={"btn": "f"})) == ["accepted"]
    _open_desk(desk, page, "olga", "en")
    _take_first(page)
    steps = page.locator("#plan li")
    expect(steps.nth(0)).to_contain_text("Step 1 Call the household to check", timeout=WAIT_MS)
    _record(page, 1, "2")
    expect(steps.nth(0)).to_contain_text("No answer · olga", timeout=WAIT_MS)
    _record(page, 2, "1")
    expect(steps.nth(1)).to_contain_text("Done · olga", timeout=WAIT_MS)
    expect(page.locator('#audit li[data-action="step"]').nth(1)).to_contain_text(
        "Plan step · Call contact 1 · Done", timeout=WAIT_MS)
    page.screenshot(path=str(artifacts_dir / f"desk-plan-en-{desk.db}.png"), full_page=True,
                    animations="disabled")
    page.keyboard.press("v")
    page.keyboard.press("1")
    expect(page.locator("#detail")).to_have_attribute("data-state", "verified", timeout=WAIT_MS)
    page.keyboard.press("r")
    expect(page.locator("#ask")).to_contain_text(
        "Plan steps not done: Send the grid worker to the home; Call 119 (fire brigade) if "
        "confirmed.", timeout=WAIT_MS)
    page.keyboard.press("Enter")  # keeps the verified outcome
    expect(page.locator("#detail")).to_have_attribute("data-state", "resolved", timeout=WAIT_MS)
    got = desk.operator("oscar").get("/api/v1/alarms/1").json()
    assert got["alarm"]["outcome"] == "genuine" and got["audit"][-1]["outcome"] is None


def test_a_supervisor_edits_a_plan_and_the_desk_follows(desk: DeskCentre, page: Page) -> None:
    _open_desk(desk, page, "sam")
    page.goto(desk.url + "/plans")
    section = page.locator("#plan-medical")
    expect(section).to_have_attribute("data-custom", "false", timeout=WAIT_MS)
    expect(section.locator("ol li")).to_have_count(4, timeout=WAIT_MS)
    section.locator(".edit-row").nth(3).locator("button.remove").click()
    section.locator("button.add").click()
    new = section.locator(".edit-row").nth(3)
    new.locator('input[data-lang="zh-CN"]').fill("通知社区医生")
    new.locator('input[data-lang="en"]').fill("Tell the community doctor")
    section.locator("button.save").click()
    section = page.locator("#plan-medical")
    expect(section).to_have_attribute("data-custom", "true", timeout=WAIT_MS)
    expect(section.locator("ol li").nth(3)).to_have_text("通知社区医生", timeout=WAIT_MS)
    expect(section).to_contain_text("sam 修改于", timeout=WAIT_MS)
    plans = {p["type"]: p for p in desk.operator("olga").get("/api/v1/plans").json()}
    assert plans["medical"]["steps"][3] == {"key": "step_4", "zh-CN": "通知社区医生",
                                            "en": "Tell the community doctor"}
    audit = desk.client().get("/api/v1/auth-audit", params={"subject": "medical"}).json()
    assert [(r["action"], r["actor"]) for r in audit] == [("plan_changed", "sam")]
    # an operator reads the plans but gets no editor
    _open_desk(desk, page, "olga")
    page.goto(desk.url + "/plans")
    expect(page.locator("#view-only")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#plan-medical .editor")).to_have_count(0, timeout=WAIT_MS)
    assert desk.ingest(alarm(1, device=REGISTERED, typ="medical")) == ["accepted"]
    page.goto(desk.url + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    _take_first(page)
    expect(page.locator("#plan li").nth(3)).to_contain_text("通知社区医生", timeout=WAIT_MS)
