"""The /overview (three colours) and /hazards pages in headless Chromium
against the real `homeguard centre`: a community turns red after confirmed
incidents; an open hazard is listed and rectifying it updates the counts."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.test_centre_browser import (  # noqa: F401 - the centre fixtures
    UI_TIMEOUT_MS,
    CentreProc,
    _no_centre_env,
    alarm,
    centre,
    log_in,
)


def _ok(r: httpx.Response) -> None:
    assert r.status_code in (200, 201), r.text


def _registry(c: httpx.Client) -> None:
    """东风社区 (cell G1: button b-1, sensor s-1) and 西湖社区 (cell G2)."""
    for code, community in (("G1", "东风社区"), ("G2", "西湖社区")):
        _ok(c.post("/api/v1/registry/grid-cells", json={
            "code": code, "name": code + " 网格", "community": community,
            "worker_name": "张三"}))
    for code, compound, community, cell in (("H1", "阳光小区", "东风社区", "G1"),
                                            ("H2", "碧水小区", "西湖社区", "G2")):
        _ok(c.post("/api/v1/registry/households", json={
            "code": code, "address": code + " 号", "compound": compound,
            "community": community, "grid_cell": cell}))
    for dev, typ in (("hg-b-0001", "button"), ("hg-s-0001", "sensor")):
        _ok(c.post("/api/v1/registry/devices",
                   json={"device_id": dev, "type": typ, "household": "H1"}))


def test_overview_turns_a_community_red_after_confirmed_incidents(
    centre: CentreProc, page: Page, artifacts_dir: Path  # noqa: F811
) -> None:
    c = centre.client()
    _registry(c)
    log_in(page, centre.url)
    page.goto(centre.url + "/overview")
    tile = page.locator('#communities li.tile[data-community="东风社区"]')
    expect(tile).to_have_attribute("data-colour", "green", timeout=UI_TIMEOUT_MS)
    centre.ingest(alarm(1), alarm(2), alarm(3, typ="medical"))
    for alarm_id in (1, 2, 3):  # the default rating: 1 yellow, 3 red
        _ok(c.post(f"/api/v1/alarms/{alarm_id}/ack", json={}))
        _ok(c.post(f"/api/v1/alarms/{alarm_id}/verify", json={"outcome": "genuine"}))
        if alarm_id == 1:
            page.reload()
            expect(tile).to_have_attribute("data-colour", "yellow", timeout=UI_TIMEOUT_MS)
    page.reload()
    expect(tile).to_have_attribute("data-colour", "red", timeout=UI_TIMEOUT_MS)
    expect(tile).to_contain_text("阳光小区: 3")
    other = page.locator('#communities li.tile[data-community="西湖社区"]')
    expect(other).to_have_attribute("data-colour", "green")
    g1 = page.locator('#cell-rows tr[data-code="G1"]')
    expect(g1).to_have_attribute("data-colour", "red")
    expect(g1.locator("td.incidents")).to_have_text("3")
    expect(page.locator('#cell-rows tr[data-code="G2"] td.incidents')).to_have_text("0")
    page.screenshot(path=str(artifacts_dir / "centre-overview.png"), full_page=True)


def test_hazards_page_lists_an_open_hazard_and_rectifying_updates_counts(
    centre: CentreProc, page: Page, artifacts_dir: Path  # noqa: F811
) -> None:
    _registry(centre.client())
    centre.ingest(alarm(1, device="hg-s-0001", typ="residual_current", data={}))
    log_in(page, centre.url)
    page.goto(centre.url + "/hazards")
    row = page.locator('#hazard-rows tr[data-device="hg-s-0001"]')
    expect(row).to_have_attribute("data-state", "open", timeout=UI_TIMEOUT_MS)
    expect(row).to_contain_text("剩余电流")
    counts = page.locator('#count-rows tr[data-community="东风社区"]')
    expect(counts.locator("td.warnings")).to_have_text("1")
    expect(counts.locator("td.rectified")).to_have_text("0")
    expect(counts.locator("td.open")).to_have_text("1")
    row.locator("input.note").fill("漏电保护器已更换")
    row.locator("button.rectify").click()
    expect(row).to_have_attribute("data-state", "rectified", timeout=UI_TIMEOUT_MS)
    expect(row).to_contain_text("漏电保护器已更换")
    expect(counts.locator("td.rectified")).to_have_text("1")
    expect(counts.locator("td.open")).to_have_text("0")
    expect(page.locator("#hazard-error")).to_be_hidden()
    page.screenshot(path=str(artifacts_dir / "centre-hazards.png"), full_page=True)
    # the sensor's restore attaches to the hazard and shows in the desk's alarm panel
    assert centre.ingest(alarm(2, device="hg-s-0001", typ="residual_current", kind="restore",
                               data={})) == ["accepted"]
    page.goto(centre.url + "/")
    page.locator('#alarm-rows tr[data-device="hg-s-0001"]').first.click()
    hazard = page.locator("#detail-hazard")
    expect(hazard).to_have_attribute("data-state", "rectified", timeout=UI_TIMEOUT_MS)
    expect(hazard).to_have_attribute("data-restores", "1")
    expect(hazard).to_contain_text("传感器已恢复")


def test_every_page_links_every_other(centre: CentreProc, page: Page) -> None:  # noqa: F811
    """The one navigation partial: each page marks itself and links the rest."""
    log_in(page, centre.url)
    for here in ("desk", "registry", "devices", "hazards", "overview"):
        page.goto(centre.url + ("/" if here == "desk" else f"/{here}"))
        assert page.locator(f"#nav-{here}").get_attribute("aria-current") == "page"
        for other in ("desk", "registry", "devices", "hazards", "overview"):
            assert page.locator(f"#nav-{other}").count() == 1, (here, other)
