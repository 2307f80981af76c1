"""The registry page, the alarm's site in the desk's detail panel and the
device board, in headless Chromium against the real `homeguard centre`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.test_centre_browser import (  # noqa: F401 - the centre fixtures
    AUTH,
    UI_TIMEOUT_MS,
    CentreProc,
    _no_centre_env,
    alarm,
    centre,
    log_in,
)

KEY = "0123456789abcdef" * 4


def _status(running: CentreProc, *items: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{running.url}/api/v1/devices/status", headers=AUTH, timeout=10,
                   json={"gateway": "gw-1", "items": list(items)})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _fill(page: Page, form: str, **fields: str) -> None:
    for name, value in fields.items():
        page.fill(f"{form} [name={name}]", value)


def test_register_a_household_through_the_ui_and_see_it_on_an_alarm(
    centre: CentreProc, page: Page, artifacts_dir: Path  # noqa: F811
) -> None:
    log_in(page, centre.url)
    page.click("#nav-registry")
    expect(page).to_have_url(centre.url + "/registry")
    _fill(page, "#cell-form", code="G-01", name="幸福里一网格", community="幸福里社区",
          worker_name="张三", worker_phone="13800138000")
    page.click("#cell-save")
    expect(page.locator('#cell-rows tr[data-code="G-01"]')).to_contain_text("张三")

    _fill(page, "#household-form", code="H-0001", address="幸福路 8 号 3-2-501",
          compound="阳光小区", community="幸福里社区")
    page.select_option("#household-form [name=grid_cell]", "G-01")
    first = page.locator("#contact-rows .contact").nth(0)
    first.locator("[data-field=name]").fill("王五")
    first.locator("[data-field=phone]").fill("call me")
    page.click("#household-save")
    expect(page.locator("#registry-error")).to_contain_text("phone")  # the server's 422
    first.locator("[data-field=phone]").fill("13900000001")
    first.locator("[data-field=relation]").fill("女儿")
    page.click("#add-contact")
    second = page.locator("#contact-rows .contact").nth(1)
    second.locator("[data-field=name]").fill("李四")
    second.locator("[data-field=phone]").fill("139-0000-0002")
    page.click("#household-save")
    row = page.locator('#household-rows tr[data-code="H-0001"]')
    expect(row).to_contain_text("幸福路 8 号 3-2-501")
    expect(row.locator("li")).to_have_text(["王五 13900000001 (女儿)", "李四 139-0000-0002"])
    expect(page.locator("#registry-error")).to_be_hidden()

    # edit: the row loads into the form, Save changes it (contacts kept)
    row.locator("button.edit").click()
    expect(page.locator("#household-form [name=code]")).to_have_value("H-0001")
    page.fill("#household-form [name=address]", "幸福路 8 号 3-2-502")
    page.click("#household-save")
    expect(row).to_contain_text("3-2-502")
    expect(row.locator("li")).to_have_count(2)
    # after a save the form adds again; delete takes a second click
    _fill(page, "#household-form", code="H-0002", address="幸福路 9 号", community="幸福里社区")
    page.click("#household-save")
    other = page.locator('#household-rows tr[data-code="H-0002"]')
    other.locator("button.delete").click()
    expect(other.locator("button.delete")).to_have_text("确定删除?")
    other.locator("button.delete").click()
    expect(other).to_have_count(0)

    _fill(page, "#device-form", device_id="hg-b-0001", board="esp32-c3", key_hex=KEY)
    page.select_option("#household-choice", "H-0001")
    page.click("#device-save")
    expect(row).to_contain_text("hg-b-0001")
    expect(page.locator('#device-rows tr[data-code="hg-b-0001"]')).to_contain_text("已配置")
    assert KEY not in page.content()
    page.screenshot(path=str(artifacts_dir / "registry.png"), full_page=True,
                    animations="disabled")
    got = centre.client().get("/api/v1/registry/households/H-0001").json()
    assert [c["name"] for c in got["contacts"]] == ["王五", "李四"]
    keys = httpx.get(f"{centre.url}/api/v1/registry/keys", headers=AUTH, timeout=10).json()
    assert keys["keys"] == {"hg-b-0001": KEY}

    assert centre.ingest(alarm(1), alarm(2, device="hg-b-0404")) == ["accepted", "accepted"]
    page.click("text=报警台")
    page.locator('#alarm-rows tr[data-device="hg-b-0001"]').click()
    expect(page.locator("#site-household")).to_have_text("H-0001")
    expect(page.locator("#site-address")).to_have_text(
        "幸福路 8 号 3-2-502 · 阳光小区 · 幸福里社区")
    expect(page.locator("#site-worker")).to_have_text("张三 13800138000")
    expect(page.locator("#site-contacts li")).to_have_text(
        ["王五 13900000001 (女儿)", "李四 139-0000-0002"])
    page.locator('#alarm-rows tr[data-device="hg-b-0404"]').click()
    expect(page.locator("#site-household")).to_have_text("未登记设备")


def test_device_board_shows_a_device_online_then_offline(
    centre: CentreProc, page: Page, artifacts_dir: Path  # noqa: F811
) -> None:
    admin = centre.client()
    for dev, kind in (("hg-b-0001", "button"), ("hg-s-0002", "sensor")):
        r = admin.post("/api/v1/registry/devices", json={"device_id": dev, "type": kind,
                                                          "firmware": "1.0.0"})
        assert r.status_code == 201, r.text
    now = int(time.time() * 1000)
    beat = {"device": "hg-b-0001", "at_ms": now, "battery_mv": 3900, "rssi": -61,
            "outbox": 2, "fw": "1.0.1"}
    assert _status(centre, beat, {"device": "hg-s-0002", "at_ms": now, "rssi": -70,
                                  "battery_mv": 5000})["updated"] == ["hg-b-0001", "hg-s-0002"]
    log_in(page, centre.url)
    reads: list[str] = []  # the board must not poll: the stream brings every change
    page.on("request", lambda r: reads.append(r.url) if "/registry/devices" in r.url else None)
    page.click("#nav-devices")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    row = page.locator('#board-rows tr[data-device="hg-b-0001"]')
    expect(row).to_have_attribute("data-online", "true")
    expect(row.locator(".status")).to_have_text("在线")
    expect(row.locator(".battery")).to_have_text("3.90 V")
    expect(row.locator(".rssi")).to_have_text("-61 dBm")
    expect(row.locator(".firmware")).to_have_text("1.0.1")
    expect(row.locator(".outbox")).to_have_text("2")
    expect(row.locator(".age")).to_contain_text("前")
    expect(page.locator("#online-count")).to_have_text("2")

    assert _status(centre, {"device": "hg-b-0001", "at_ms": now + 1000,
                            "online": False})["updated"] == ["hg-b-0001"]
    # the gateway's supervision alarm for it shows on the board too
    assert centre.ingest(alarm(-7, kind="supervision", typ="offline", data={})) == ["accepted"]
    # live over the device stream: no reload, no polling
    expect(row).to_have_attribute("data-online", "false", timeout=UI_TIMEOUT_MS)
    expect(row.locator(".status")).to_have_text("离线")
    expect(page.locator("#offline-count")).to_have_text("1")
    expect(row.locator(".open")).to_have_text("设备离线", timeout=UI_TIMEOUT_MS)
    expect(page.locator('#board-rows tr[data-device="hg-s-0002"] .open')).to_have_text("—")
    assert row.evaluate("r => getComputedStyle(r).backgroundColor") != "rgba(0, 0, 0, 0)"
    page.screenshot(path=str(artifacts_dir / "device-board.png"), full_page=True,
                    animations="disabled")
    # back online: a heartbeat later the row turns without a reload either
    assert _status(centre, {**beat, "at_ms": now + 2000})["updated"] == ["hg-b-0001"]
    expect(row).to_have_attribute("data-online", "true", timeout=UI_TIMEOUT_MS)
    assert reads == [], reads
