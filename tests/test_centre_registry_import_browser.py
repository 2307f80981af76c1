"""The registry page's import section in headless Chromium against the real
`homeguard centre` on SQLite and PostgreSQL: a CSV file and an Excel
workbook with problems show each (row as the sheet numbers it, column,
what) and write nothing, a file named .xlsx that is not one is refused
whole; the documented example workbook checks, then imports.  One test,
so one centre per database."""

from __future__ import annotations

import datetime
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
from tests.test_centre_registry_import import EXAMPLE_XLSX, XLSX, csv_of, workbook


@pytest.fixture
def centre(bare_centre: DeskCentre) -> DeskCentre:  # noqa: F811
    """The running centre, with only the bootstrap admin, on SQLite and PostgreSQL."""
    return bare_centre


def _choose(page: Page, name: str, data: bytes) -> None:
    media_type = XLSX if name.endswith(".xlsx") else "text/csv"
    page.set_input_files("#import-file", files=[{"name": name, "mimeType": media_type,
                                                 "buffer": data}])


def _check_fails(page: Page, name: str, data: bytes, problems: int) -> None:
    _choose(page, name, data)
    page.click("#import-check")
    expect(page.locator("#import-report")).to_have_attribute("data-state", "failed",
                                                             timeout=UI_TIMEOUT_MS)
    expect(page.locator("#import-summary")).to_contain_text(
        f"{problems} problems found: nothing was imported")
    expect(page.locator("#import-errors tbody tr")).to_have_count(problems)
    expect(page.locator("#import-confirm")).to_be_hidden()


def test_import_files_with_problems_then_a_good_workbook(
    centre: CentreProc, page: Page, artifacts_dir: Path  # noqa: F811
) -> None:
    log_in(page, centre.url)
    page.context.add_cookies([{"name": labels.COOKIE, "value": "en", "url": centre.url}])
    page.goto(centre.url + "/registry")
    errors = page.locator("#import-errors tbody tr")
    bad = csv_of({"kind": "grid_cell", "code": "G-01", "name": "一网格", "community": "幸福里社区"},
                 {"kind": "household", "code": "H-0001", "address": "幸福路 8 号",
                  "community": "幸福里社区", "grid_cell": "G-01", "latitude": "95",
                  "longitude": "121.47"},
                 {"kind": "device", "device_id": "hg-b-0001", "type": "bell"})
    _check_fails(page, "bad.csv", bad, 2)
    expect(errors.nth(0).locator("td")).to_have_text(
        ["3", "latitude", "Input should be less than or equal to 90"])
    expect(errors.nth(1).locator("td").nth(1)).to_have_text("type")

    # a workbook: rows as the sheet numbers them (row 3 is empty)
    sheet = workbook(["kind", "code", "name", "community", "address", "latitude", "longitude"],
                     ["grid_cell", "G-01", "一网格", "幸福里社区"], [],
                     ["household", datetime.date(2026, 3, 2), None, "幸福里社区", "幸福路 8 号"],
                     ["household", "H-0002", None, "幸福里社区", "幸福路 9 号", 95, 121.47])
    _check_fails(page, "community.xlsx", sheet, 2)
    expect(errors.nth(0).locator("td").nth(0)).to_have_text("4")
    expect(errors.nth(0).locator("td").nth(2)).to_contain_text("a date or time cell (2026-03-02)")
    expect(errors.nth(1).locator("td")).to_have_text(
        ["5", "latitude", "Input should be less than or equal to 90"])
    page.screenshot(path=str(artifacts_dir / "registry-import-problems.png"), full_page=True)
    _check_fails(page, "renamed.xlsx", bad, 1)  # CSV called .xlsx: the file as a whole
    expect(errors.nth(0).locator("td").nth(0)).to_have_text("whole file")
    expect(errors.nth(0).locator("td").nth(2)).to_contain_text("not an .xlsx workbook")
    c = centre.client()
    assert c.get("/api/v1/registry/grid-cells").json() == []  # G-01 was good, yet not written

    report = page.locator("#import-report")
    _choose(page, "community.xlsx", EXAMPLE_XLSX.read_bytes())
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
