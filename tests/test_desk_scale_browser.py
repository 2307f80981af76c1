"""The alarm desk under a flood, in headless Chromium against the real
`homeguard centre` (issue 12): one device has 5,000 alarms open when
another device's fire alarm arrives.  The fire must be on screen first,
the counter must say 5,001 (a COUNT in the store, not the rows shown), and
alarms beyond the first page must be reachable by scrolling.  And through
the whole stack: the fire pressed on the real button firmware, through
Mosquitto and the gateway, is first on a freshly loaded desk with the true
count (the 5,000 seeded through the centre's ingest as above)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from dashboard.schemas import MAX_BATCH
from tests.harness.proc import wait_until
from tests.harness.stack import ADMIN, ADMIN_PASSWORD, BUTTON, TOKEN, Stack
from tests.test_centre_browser import (  # noqa: F401 - the centre fixtures
    UI_TIMEOUT_MS,
    CentreProc,
    _no_centre_env,
    alarm,
    centre,
    log_in,
)

FLOOD, FLOODER = 5000, "hg-b-0666"
FIRE = "hg-b-0001"
PAGE = 200  # dashboard.api.routes.desk.DESK_PAGE
SHOWN_WITHIN_MS = 2000


@pytest.fixture(autouse=True)
def _flood_control_off(_no_centre_env: None, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """One device's 5,000 open alarms, each its own row, as before flood
    control (which folds them: tests/test_centre_flood.py, test_flood_e2e.py)."""
    monkeypatch.setenv("HG_CENTRE_FLOOD_ALARMS", "0")


def _seed_flood(proc: CentreProc) -> None:
    """5,000 medical alarms from one device, in gateway-sized batches."""
    for batch in _flood_batches():
        assert proc.ingest(*batch) == ["accepted"] * len(batch)


def _flood_batches() -> list[list[dict]]:
    return [[alarm(seq, device=FLOODER, typ="medical")
             for seq in range(first, min(first + MAX_BATCH, FLOOD + 1))]
            for first in range(1, FLOOD + 1, MAX_BATCH)]


def _shown(page: Page) -> list[tuple[str, int]]:
    """(device, seq) of every row on the desk, top to bottom."""
    got = page.eval_on_selector_all(
        "#alarm-rows tr", "trs => trs.map(tr => [tr.dataset.device, Number(tr.dataset.seq)])")
    return [(device, seq) for device, seq in got]


def test_fire_goes_first_and_the_counter_is_true_with_5000_open(
    centre: CentreProc, page: Page, artifacts_dir: Path  # noqa: F811
) -> None:
    _seed_flood(centre)
    log_in(page, centre.url)
    rows = page.locator("#alarm-rows tr")
    count = page.locator("#open-count")
    expect(count).to_have_text(str(FLOOD))
    expect(rows).to_have_count(PAGE)
    expect(page.locator("#shown")).to_have_text(f"已显示 {PAGE} 条，共 {FLOOD} 条")
    expect(page.locator("#load-more")).to_be_visible()

    assert centre.ingest(alarm(1, device=FIRE, typ="fire")) == ["accepted"]
    expect(rows.first).to_have_attribute("data-device", FIRE, timeout=UI_TIMEOUT_MS)
    expect(rows.first).to_contain_text("火警")
    fire_id = int(rows.first.get_attribute("data-alarm-id") or 0)
    # ms from the centre storing it to the desk placing its row
    shown_after = page.evaluate("id => window.HGDesk.shownAfter(id)", fire_id)
    assert shown_after is not None and shown_after <= SHOWN_WITHIN_MS, shown_after
    expect(count).to_have_text(str(FLOOD + 1), timeout=UI_TIMEOUT_MS)
    expect(page.locator("#received-count")).to_have_text(str(FLOOD + 1))
    expect(rows).to_have_count(PAGE + 1)
    page.screenshot(path=str(artifacts_dir / "alarm-desk-flood.png"), animations="disabled")

    # scrolling down to the end of the rows loads the next page, twice
    for pages in (2, 3):
        page.locator("#load-more").scroll_into_view_if_needed()
        expect(rows).to_have_count(pages * PAGE + 1, timeout=UI_TIMEOUT_MS)
        expect(page.locator(f"#alarm-rows tr[data-seq='{pages * PAGE}']")).to_be_attached()
    assert _shown(page) == [(FIRE, 1)] + [(FLOODER, s) for s in range(1, 3 * PAGE + 1)]
    expect(page.locator("#shown")).to_have_text(f"已显示 {3 * PAGE + 1} 条，共 {FLOOD + 1} 条")

    # handled: acknowledging the fire moves it below every unacknowledged
    # alarm (beyond the rows loaded); the counters follow from the store
    c = centre.client()
    assert c.post(f"/api/v1/alarms/{fire_id}/ack").status_code == 200
    expect(page.locator("#received-count")).to_have_text(str(FLOOD), timeout=UI_TIMEOUT_MS)
    expect(count).to_have_text(str(FLOOD + 1))
    expect(page.locator(f"#alarm-rows tr[data-alarm-id='{fire_id}']")).to_have_count(0)
    expect(rows.first).to_have_attribute("data-seq", "1")


def test_a_fire_through_the_stack_is_first_on_a_fresh_desk_with_5000_open(
        mosquitto, tmp_path: Path, page: Page) -> None:  # noqa: ANN001
    stack = Stack(mosquitto, tmp_path)
    stack.start()
    button = None
    try:
        for batch in _flood_batches():  # through the centre's ingest, as the gateway posts
            r = httpx.post(f"{stack.centre_url}/api/v1/ingest", timeout=30,
                           headers={"Authorization": f"Bearer {TOKEN}"},
                           json={"gateway": "gw-test", "events": batch})
            assert r.status_code == 200, r.text
            assert [x["status"] for x in r.json()["results"]] == ["accepted"] * len(batch)
        button = stack.device()
        assert button.wait_connected(60)
        seq = button.press("fire")
        wait_until(lambda: "delivered" in button.acks.get(seq, []), 90,
                   "the fire at the centre (the button's `delivered`)")
        log_in(page, stack.centre_url, ADMIN, ADMIN_PASSWORD)  # loaded after the fire
        rows = page.locator("#alarm-rows tr")
        expect(page.locator("#open-count")).to_have_text(str(FLOOD + 1),
                                                         timeout=UI_TIMEOUT_MS)
        expect(rows.first).to_have_attribute("data-device", BUTTON, timeout=UI_TIMEOUT_MS)
        expect(rows.first).to_have_attribute("data-seq", str(seq))
        expect(rows.first).to_contain_text("火警")
        expect(page.locator("#shown")).to_have_text(f"已显示 {PAGE} 条，共 {FLOOD + 1} 条")
    finally:
        if button is not None:
            button.stop()
        stack.stop()
