"""The registry page's import section in headless Chromium against the real
`homeguard centre` on SQLite and PostgreSQL: a file with problems shows each (row, column, what) and
writes nothing; the documented example checks, then imports."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from dashboard import labels
from tests.desk_centre import DeskCentre, bare_centre  # noqa: F401 - the fixture
from tests.test_centre_browser import (  # noqa: F401 - _no_centre_env
    UI_TIMEOUT_MS,
    CentreProc,
    _no_centre_env,
    log_in,
)
from tests.test_centre_registry_import import EXAMPLE, csv_of

# the page on one database: what differs by database is the API, tested on
# both (tests/test_centre_*.py); the full workflow runs on both in
# test_desk_keyboard_browser.py and test_desk_plans_browser.py
pytestmark = pytest.mark.parametrize("bare_centre", ["sqlite"], indirect=True)


@pytest.fixture
def centre(bare_centre: DeskCentre) -> DeskCentre:  # noqa: F811
    """The running centre, with only the bootstrap admin, on SQLite and PostgreSQL."""
    return bare_centre


def _choose(page: Page, name: str, data: bytes) -> None:
    page.set_input_files("#import-file", files=[{"name": name, "mimeType": "text/csv",
                                                 "buffer": data}])


def test_import_a_file_with_problems_then_a_good_one(
    centre: CentreProc, page: Page, artifacts_dir: Path  # noqa: F811
) -> None:
    log_in(page, centre.url)
    page.context.add_cookies([{"name": labels.COOKIE, "value": "en", "url": centre.url}])
    page.goto(centre.url + "/registry")
    report = page.locator("#import-report")
    bad = csv_of({"kind": "grid_cell", "code": "G-01", "name": "一网格", "community": "幸福里社区"},
                 {"kind": "household", "code": "H-0001", "address": "幸福路 8 号",
                  "community": "幸福里社区", "grid_cell": "G-01", "latitude": "95",
                  "longitude": "121.47"},
                 {"kind": "device", "device_id": "hg-b-0001", "type": "bell"})
    _choose(page, "bad.csv", bad)
    page.click("#import-check")
    expect(report).to_have_attribute("data-state", "failed", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#import-summary")).to_contain_text("2 problems found: nothing was "
                                                           "imported")
    errors = page.locator("#import-errors tbody tr")
    expect(errors).to_have_count(2)
    expect(errors.nth(0).locator("td")).to_have_text(
        ["3", "latitude", "Input should be less than or equal to 90"])
    expect(errors.nth(1).locator("td").nth(1)).to_have_text("type")
    expect(page.locator("#import-confirm")).to_be_hidden()
    page.screenshot(path=str(artifacts_dir / "registry-import-problems.png"), full_page=True)
    c = centre.client()
    assert c.get("/api/v1/registry/grid-cells").json() == []  # G-01 was good, yet not written

    _choose(page, "community.csv", EXAMPLE.read_bytes())
    page.click("#import-check")
    expect(report).to_have_attribute("data-state", "checked", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#import-summary")).to_have_text(
        "All 10 rows are good; nothing is written yet.")
    expect(page.locator("#import-counts tbody tr").nth(2).locator("td")).to_have_text(
        ["Contacts", "3", "0"])
    expect(page.locator("#household-rows tr[data-code]")).to_have_count(0)
    page.click("#import-confirm")
    expect(report).to_have_attribute("data-state", "done", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#import-summary")).to_have_text("Imported 10 rows.")
    # the tables reload by themselves
    expect(page.locator('#household-rows tr[data-code="H-0001"] li')).to_have_count(2)
    expect(page.locator("#cell-rows tr[data-code]")).to_have_count(2)
    expect(page.locator("#device-rows tr[data-code]")).to_have_count(3)
    expect(page.locator("#import-confirm")).to_be_hidden()
    page.screenshot(path=str(artifacts_dir / "registry-import-done.png"), full_page=True)
    assert len(c.get("/api/v1/registry/households").json()) == 2
