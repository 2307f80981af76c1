"""The device board is live on both databases (issue 18): a gateway's status
batch turns a row offline and back online in an open board without a reload
and without the board reading the device list again."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.desk_centre import (  # noqa: F401 - the desk fixtures
    REGISTERED,
    USER_PASSWORD,
    DeskCentre,
    centre_env,
    desk,
)
from tests.test_centre_browser import UI_TIMEOUT_MS, log_in
from tests.test_centre_registry_browser import _status


def test_the_board_follows_status_live(desk: DeskCentre, page: Page,  # noqa: F811
                                       artifacts_dir: Path) -> None:
    now = int(time.time() * 1000)
    _status(desk, {"device": REGISTERED, "at_ms": now, "battery_mv": 3800, "rssi": -58})
    log_in(page, desk.url, "olga", USER_PASSWORD)
    reads: list[str] = []
    page.on("request", lambda r: reads.append(r.url) if "/registry/devices" in r.url else None)
    page.click("#nav-devices")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    row = page.locator(f'#board-rows tr[data-device="{REGISTERED}"]')
    expect(row).to_have_attribute("data-online", "true")
    expect(row.locator(".battery")).to_have_text("3.80 V")
    _status(desk, {"device": REGISTERED, "at_ms": now + 1000, "online": False})
    expect(row).to_have_attribute("data-online", "false", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#offline-count")).to_have_text("1")
    _status(desk, {"device": REGISTERED, "at_ms": now + 2000, "battery_mv": 3700})
    expect(row).to_have_attribute("data-online", "true", timeout=UI_TIMEOUT_MS)
    expect(row.locator(".battery")).to_have_text("3.70 V")
    assert reads == [], reads
    page.screenshot(path=str(artifacts_dir / f"device-board-live-{desk.db}.png"), full_page=True,
                    animations="disabled")
