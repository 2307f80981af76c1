"""The /history and /reports pages in headless Chromium against the real
`homeguard centre` on SQLite and PostgreSQL: the true total and pages, a filter, the full record,
the CSV link carrying the filters, the tab of other events; the report's figures and its charts."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.desk_centre import DeskCentre, bare_centre  # noqa: F401 - the fixture
from tests.test_centre_browser import (  # noqa: F401 - _no_centre_env
    UI_TIMEOUT_MS,
    CentreProc,
    _no_centre_env,
    alarm,
    log_in,
)


@pytest.fixture
def centre(bare_centre: DeskCentre) -> DeskCentre:  # noqa: F811
    """The running centre, with only the bootstrap admin, on SQLite and PostgreSQL."""
    return bare_centre


DEVICES = [f"hg-b-{n:04d}" for n in range(1, 11)]


def _ok(r: httpx.Response) -> None:
    assert r.status_code in (200, 201), r.text


def _seed(centre: CentreProc) -> httpx.Client:  # noqa: F811
    """60 alarms, 6 from each of 10 devices (under the flood rate); hg-b-0001
    is H1's in 东风社区; alarm 1 is verified false and resolved."""
    c = centre.client()
    _ok(c.post("/api/v1/registry/grid-cells", json={"code": "G1", "name": "G1",
                                                    "community": "东风社区"}))
    _ok(c.post("/api/v1/registry/households", json={
        "code": "H1", "address": "1 号", "compound": "阳光小区", "community": "东风社区",
        "grid_cell": "G1"}))
    _ok(c.post("/api/v1/registry/devices", json={"device_id": DEVICES[0], "type": "button",
                                                  "household": "H1"}))
    events = [alarm(seq, device=d, typ="medical" if seq == 2 else "fire")
              for seq in range(1, 7) for d in DEVICES]
    assert centre.ingest(*events) == ["accepted"] * 60
    for action, body in (("ack", {}), ("verify", {"outcome": "false"}),
                         ("resolve", {"note": "儿童误按"})):
        _ok(c.post(f"/api/v1/alarms/1/{action}", json=body))
    return c


def test_history_pages_filters_and_shows_the_full_record(
    centre: CentreProc, page: Page, artifacts_dir: Path  # noqa: F811
) -> None:
    _seed(centre)
    log_in(page, centre.url)
    page.goto(centre.url + "/history")
    assert page.locator("#nav-history").get_attribute("aria-current") == "page"
    total = page.locator("#total")
    expect(total).to_have_attribute("data-total", "60", timeout=UI_TIMEOUT_MS)
    expect(total).to_contain_text("共 60 条")
    rows = page.locator("#history-rows tr")
    expect(rows).to_have_count(50)
    page.locator("#page-next").click()
    expect(rows).to_have_count(10, timeout=UI_TIMEOUT_MS)
    expect(total).to_contain_text("51–60")
    expect(page.locator("#page-next")).to_be_disabled()
    page.locator("#page-prev").click()
    expect(rows).to_have_count(50, timeout=UI_TIMEOUT_MS)

    page.locator("select[name=outcome]").select_option("false")
    page.locator("#search").click()
    expect(total).to_have_attribute("data-total", "1", timeout=UI_TIMEOUT_MS)
    expect(rows).to_have_count(1)
    row = page.locator('#history-rows tr[data-id="1"]')
    expect(row.locator("td.place")).to_contain_text("东风社区")
    expect(row.locator("td.outcome")).to_have_text("误报")
    row.click()
    record = page.locator("#record")
    expect(record).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(record).to_have_attribute("data-id", "1")
    expect(page.locator("#record-audit li")).to_have_count(3)
    assert [li.get_attribute("data-action") for li in
            page.locator("#record-audit li").all()] == ["ack", "verify", "resolve"]
    expect(page.locator("#record-audit")).to_contain_text("儿童误按")
    page.screenshot(path=str(artifacts_dir / "centre-history.png"), full_page=True)

    href = page.locator("#export").get_attribute("href")
    assert href is not None and "outcome=false" in href
    got = page.request.get(centre.url + href)
    assert got.ok
    rows_csv = list(csv.DictReader(io.StringIO(got.body().decode("utf-8-sig"))))
    assert [(r["id"], r["outcome"], r["community"]) for r in rows_csv] == [
        ("1", "false", "东风社区")]

    # the filters live in the address: a reload keeps them
    page.reload()
    expect(total).to_have_attribute("data-total", "1", timeout=UI_TIMEOUT_MS)
    page.locator("select[name=type]").select_option("medical")
    page.locator("select[name=outcome]").select_option("")
    page.locator("#search").click()
    expect(total).to_have_attribute("data-total", "10", timeout=UI_TIMEOUT_MS)

    # the other events tab: a restore and a test, not the heartbeat
    assert centre.ingest(alarm(100, DEVICES[0], "fire", kind="restore"),
                         alarm(101, DEVICES[0], "periodic", kind="heartbeat"),
                         alarm(102, DEVICES[1], "manual", kind="test")) == ["accepted"] * 3
    page.locator("#tab-events").click()
    expect(page).to_have_url(re.compile(r"/history\?.*#events$"))
    events = page.locator("#events-total")
    expect(events).to_have_attribute("data-total", "2", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#alarms-view")).to_be_hidden()
    page.locator("#event-filters select[name=kind]").select_option("restore")
    page.locator("#events-search").click()
    expect(events).to_have_attribute("data-total", "1", timeout=UI_TIMEOUT_MS)
    restore = page.locator("#event-rows tr")
    expect(restore).to_have_attribute("data-kind", "restore")
    expect(restore.locator("td.kind")).to_have_text("复位")
    expect(restore.locator("td.place")).to_contain_text("东风社区")
    href = page.locator("#events-export").get_attribute("href")
    assert href is not None and "kind=restore" in href
    got = page.request.get(centre.url + href)
    assert got.ok and [(r["kind"], r["device"]) for r in csv.DictReader(
        io.StringIO(got.body().decode("utf-8-sig")))] == [("restore", DEVICES[0])]
    page.reload()  # the tab lives in the address
    expect(events).to_have_attribute("data-total", "2", timeout=UI_TIMEOUT_MS)
    page.locator("#tab-alarms").click()
    expect(page.locator("#alarms-view")).to_be_visible()
    expect(page.locator("#events-view")).to_be_hidden()


def test_reports_page_shows_the_figures_and_draws_the_charts(
    centre: CentreProc, page: Page, artifacts_dir: Path  # noqa: F811
) -> None:
    _seed(centre)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    log_in(page, centre.url)
    page.goto(centre.url + "/reports?by=community")
    assert page.locator("#nav-reports").get_attribute("aria-current") == "page"
    expect(page.locator("#total-alarms")).to_have_text("60", timeout=UI_TIMEOUT_MS)
    # one verified alarm, false: the rate is 1 / (0 + 1)
    expect(page.locator("#false-rate")).to_have_text("100.0%")
    expect(page.locator('#outcomes tr[data-outcome="false"] td.num')).to_have_text("1")
    expect(page.locator('#places tr[data-place="东风社区"] td.alarms')).to_have_text("6")
    expect(page.locator('#places tr[data-place=""] td.alarms')).to_have_text("54")
    expect(page.locator('#operators tr[data-operator="admin"]')).to_have_count(1)
    expect(page.locator('#timings tr[data-step="ack"] td.num').first).to_have_text("1")
    # the period x place table has the times, breaches, hazards and devices too
    acked = page.locator("#rows tr", has=page.locator("td.ack", has_text="(1)"))
    expect(acked).to_have_count(1)
    expect(acked.locator("td.late")).to_have_text(re.compile(r"^\d+ / \d+$"))
    expect(acked.locator("td.hazards")).to_have_text(re.compile(r"^\d+ / \d+$"))
    # Chart.js (served from /static/vendor, under the CSP) drew both charts
    for canvas in ("#chart-counts", "#chart-false"):
        page.wait_for_function(
            "id => window.Chart && window.Chart.getChart(document.querySelector(id))",
            arg=canvas, timeout=UI_TIMEOUT_MS)
    href = page.locator("#export").get_attribute("href")
    assert href is not None and "by=community" in href
    got = page.request.get(centre.url + href)
    assert got.ok and sum(int(r["alarms"]) for r in csv.DictReader(
        io.StringIO(got.body().decode("utf-8-sig")))) == 60
    # the colour history: 阳光小区 has no confirmed incident yet, green in words
    today = page.locator('#colours tr[data-compound="阳光小区"] td.colour').last
    expect(today).to_have_attribute("data-colour", "green")
    expect(today).to_have_text("绿色 (0)")
    # one of its alarms verified genuine: yellow (the default rule: 1 in 30 days)
    c = centre.client()
    first = c.get("/api/v1/history/alarms", params={"device": DEVICES[0], "status": "open",
                                                    "limit": 1}).json()["alarms"][0]["id"]
    _ok(c.post(f"/api/v1/alarms/{first}/ack", json={}))
    _ok(c.post(f"/api/v1/alarms/{first}/verify", json={"outcome": "genuine"}))
    page.locator("#show").click()
    expect(today).to_have_attribute("data-colour", "yellow", timeout=UI_TIMEOUT_MS)
    expect(today).to_have_text("黄色 (1)")
    expect(page.locator("#colour-rule")).to_contain_text("30")
    colours_href = page.locator("#export-colours").get_attribute("href")
    assert colours_href is not None and "by=community" in colours_href
    got = page.request.get(centre.url + colours_href)
    assert got.ok and ("东风社区", "阳光小区", "1", "yellow") in [
        (r["community"], r["compound"], r["incidents"], r["colour"])
        for r in csv.DictReader(io.StringIO(got.body().decode("utf-8-sig")))]
    # a grid worker of G1 takes the task on their phone and arrives
    _ok(c.post("/api/v1/users", json={"username": "zhang", "password": "worker-pw-0001",
                                      "role": "grid_worker", "grid_cell": "G1"}))
    _ok(c.post(f"/api/v1/alarms/{first}/dispatch", json={"to": "grid_worker"}))
    phone = centre.client("zhang", "worker-pw-0001")
    for step in ("accept", "arrive"):
        _ok(phone.post(f"/api/v1/worker/tasks/{first}/{step}", json={}))
    page.locator("#show").click()
    for who in ("", "zhang"):
        row = page.locator(f'#workers tr[data-worker="{who}"]')
        expect(row.locator("td.accept")).to_contain_text("(1)", timeout=UI_TIMEOUT_MS)
        expect(row.locator("td.arrive")).to_contain_text("(1)")
        expect(row.locator("td.overdue")).to_have_text("0")
    expect(page.locator('#workers tr[data-worker=""] td').first).to_have_text("全部网格员")
    workers_href = page.locator("#export-workers").get_attribute("href")
    assert workers_href is not None and "by=community" in workers_href
    got = page.request.get(centre.url + workers_href)
    assert got.ok and [(r["worker"], r["accept_n"], r["arrive_n"], r["overdue"]) for r in
                       csv.DictReader(io.StringIO(got.body().decode("utf-8-sig")))] == [
        ("", "1", "1", "0"), ("zhang", "1", "1", "0")]
    page.locator("#lang-switch").click()
    expect(today).to_have_text("Yellow (1)", timeout=UI_TIMEOUT_MS)
    expect(page.locator('#workers tr[data-worker=""] td').first).to_have_text(
        "All grid workers")
    page.emulate_media(media="print")
    expect(page.locator("#report-form")).to_be_hidden()
    page.screenshot(path=str(artifacts_dir / "centre-reports.png"), full_page=True)
    assert errors == []
