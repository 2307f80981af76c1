"""The /map page in headless Chromium against the real `homeguard centre`
(SQLite and PostgreSQL), with no network beyond the centre (every other
request aborted): grid cells, households and open alarms drawn on the plain
background, a new alarm appearing without a reload, a click on a marker
opening the alarm on the desk (/?alarm=ID: also one beyond the desk's first
page; a closed or unknown one said so, with a link to its record)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from dashboard import labels
from tests.desk_centre import DeskCentre, bare_centre  # noqa: F401 - the fixture
from tests.test_centre_browser import (  # noqa: F401 - _no_centre_env
    UI_TIMEOUT_MS,
    CentreProc,
    _no_centre_env,
    alarm,
    log_in,
)
from tests.test_centre_registry_import import EXAMPLE


@pytest.fixture
def centre(bare_centre: DeskCentre) -> DeskCentre:  # noqa: F811
    """The running centre, with only the bootstrap admin, on SQLite and PostgreSQL."""
    return bare_centre


# the page polls every 5 s: a new alarm shows within a few polls
LIVE_TIMEOUT_MS = 30_000


def test_the_map_draws_offline_and_opens_an_alarm(
    centre: DeskCentre, page: Page, artifacts_dir: Path  # noqa: F811
) -> None:
    c = centre.client()
    r = c.post("/api/v1/registry/import", params={"dry_run": "false"},
               content=EXAMPLE.read_bytes(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert centre.ingest(alarm(1, "hg-b-0001", "medical")) == ["accepted"]

    outside: list[str] = []

    def only_the_centre(route: Route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    page.context.route("**/*", only_the_centre)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text)
            if "Content Security Policy" in m.text else None)
    log_in(page, centre.url)
    page.context.add_cookies([{"name": labels.COOKIE, "value": "en", "url": centre.url}])
    page.click("#nav-map")
    expect(page).to_have_url(centre.url + "/map")
    box = page.locator("#map")
    expect(box).to_have_attribute("data-state", "ready", timeout=UI_TIMEOUT_MS)
    expect(box).to_have_class(re.compile(r"\bplain\b"))  # no tiles: the plain background
    expect(page.locator("#map-no-tiles")).to_be_visible()
    expect(page.locator("path.hg-cell")).to_have_count(2)
    expect(page.locator("path.hg-household")).to_have_count(2)
    expect(page.locator("path.hg-device")).to_have_count(1)  # the one with its own place
    first = page.locator('path.hg-alarm[data-key="1"]')
    expect(first).to_have_attribute("data-priority", "2")
    expect(first).to_have_attribute("fill", "#e65100")  # desk.css --p2
    expect(page.locator("#map-open")).to_have_text("1")
    for cell in page.locator("path.hg-cell").all():  # drawn, with an area on screen
        box_ = cell.bounding_box()
        assert box_ is not None and box_["width"] > 20 and box_["height"] > 20, box_

    # a new alarm appears without a reload, in its priority's colour
    assert centre.ingest(alarm(2, "hg-b-0002", "fire")) == ["accepted"]
    fire = page.locator('path.hg-alarm[data-key="2"]')
    expect(fire).to_have_attribute("fill", "#c62828", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#map-open")).to_have_text("2")

    popup = page.locator(".leaflet-popup-content .map-popup")
    fire.click()
    expect(popup.locator("h3")).to_have_text("#2 Fire")
    expect(popup).to_contain_text("幸福路 10 号 1-1-101")
    expect(popup.locator("a.to-desk")).to_have_attribute("href", "/?alarm=2")
    expect(page.locator(".leaflet-popup")).to_have_css("opacity", "1")  # faded in
    page.screenshot(path=str(artifacts_dir / f"centre-map-{centre.db}.png"), full_page=True)
    popup.locator("a.to-desk").click()
    _on_the_desk(page, centre, 2)
    expect(page.locator("#alarm-rows tr[data-alarm-id='2']")).to_have_class(
        re.compile(r"\bselected\b"))

    # past the desk's first page (200 rows of more urgent fires from
    # unregistered devices, off the map): fetched and opened all the same
    assert centre.ingest(*(alarm(1, f"hg-b-{9000 + i}", "fire") for i in range(200))) == [
        "accepted"] * 200
    page.goto(centre.url + "/map")
    page.locator('path.hg-alarm[data-key="1"]').click()
    popup.locator("a.to-desk").click()
    _on_the_desk(page, centre, 1)
    expect(page.locator("#alarm-rows tr")).to_have_count(200)
    expect(page.locator("#alarm-rows tr[data-alarm-id='1']")).to_have_count(0)

    page.goto(centre.url + "/map")
    page.locator('path.hg-alarm[data-key="2"]').click()
    popup.locator("a.to-history").click()
    # the history page writes its filters into the address: device= is among them
    expect(page).to_have_url(re.compile(r"/history\?(.*&)?device=hg-b-0002(&|$)"))
    expect(page.locator("#history-rows tr")).to_have_count(1, timeout=UI_TIMEOUT_MS)

    # resolved, it leaves the map at the next poll; its old link says it is
    # closed and leads to its record; an unknown one is said unknown
    for action, body in (("ack", {}), ("verify", {"outcome": "genuine"}),
                         ("dispatch", {"to": "grid_worker"}), ("resolve", {})):
        assert c.post(f"/api/v1/alarms/2/{action}", json=body).status_code == 200
    page.goto(centre.url + "/map")
    expect(page.locator("path.hg-alarm")).to_have_count(1, timeout=UI_TIMEOUT_MS)
    page.goto(centre.url + "/?alarm=2")
    said = page.locator("#linked")
    expect(said).to_have_text("Alarm #2 is closed (Resolved) and no longer on the desk. "
                              "Open its record", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#detail-body")).to_be_hidden()
    said.locator("#linked-record").click()
    expect(page.locator("#record")).to_have_attribute("data-id", "2", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#record-audit li[data-action=resolve]")).to_have_count(1)
    page.goto(centre.url + "/?alarm=99999")
    expect(page.locator("#linked")).to_have_text("There is no alarm #99999.",
                                                 timeout=UI_TIMEOUT_MS)
    assert outside == [] and refused == [], (outside, refused)


def _on_the_desk(page: Page, centre: DeskCentre, alarm_id: int) -> None:
    """The desk, opened from the map's link, shows the alarm in its panel."""
    expect(page).to_have_url(f"{centre.url}/?alarm={alarm_id}")
    expect(page.locator("#detail")).to_have_attribute("data-alarm-id", str(alarm_id),
                                                      timeout=UI_TIMEOUT_MS)
    expect(page.locator("#detail-title")).to_contain_text(f"#{alarm_id}")
    expect(page.locator("#detail-body")).to_be_visible()
