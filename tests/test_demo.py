"""README command 1: `homeguard demo --once` brings the whole system up on
embedded defaults, presses an alarm on the button (the real firmware on
simulated hardware), and the alarm reaches the centre while the button app's
LED goes from sending to "the centre has it"; a second run continues with the
same state (the board's flash: its seqs go on)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from tests.harness.proc import free_port, require_binary

HOMEGUARD = Path(sys.executable).parent / "homeguard"


def run_demo(data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOMEGUARD, "demo", "--once", "--data-dir", str(data), "--port", str(free_port()),
         *extra],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("broker", ["mosquitto", "embedded"])
def test_demo_once_delivers_an_alarm_to_the_dashboard(tmp_path: Path, broker: str) -> None:
    extra = ("--embedded-broker",) if broker == "embedded" else ()
    if broker == "mosquitto":
        require_binary("mosquitto", "Debian package mosquitto")
    first = run_demo(tmp_path, *extra)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Dashboard: http://127.0.0.1:" in first.stdout
    assert "fire alarm seq" in first.stdout and "is on the dashboard" in first.stdout
    out = first.stdout  # the LED as the button app drives it
    assert "hg-b-0001 LED blink: sending" in out and "hg-b-0001 LED on: the centre has it" in out
    assert out.index("LED blink") < out.index("LED slow") < out.index("LED on")
    # a second run keeps the devices' seqs: its alarm is new, not a duplicate
    second = run_demo(tmp_path, *extra)
    assert second.returncode == 0, second.stdout + second.stderr
    seqs = [int(out.stdout.split("fire alarm seq ")[1].split()[0]) for out in (first, second)]
    assert seqs[1] > seqs[0]


def test_demo_shows_the_household_and_the_sensors_readings(tmp_path: Path, page) -> None:  # noqa: ANN001
    """The demo registers its household, grid cell and devices at the centre,
    and the gateway's telemetry reaches the alarm detail's chart: a leak
    alarm opened on the desk shows the address, the contacts, the grid worker
    and the sensor's readings; the device board counts both devices and the
    overview the household in its community and grid cell (issue 18: the
    demo shows the full picture)."""
    port = free_port()
    demo = subprocess.Popen(
        [HOMEGUARD, "demo", "--data-dir", str(tmp_path), "--port", str(port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert demo.stdout is not None and demo.stdin is not None
        seen = []
        for line in demo.stdout:
            seen.append(line)
            if "Type f + Enter" in line:
                break
        else:
            raise AssertionError("the demo did not start:\n" + "".join(seen))
        demo.stdin.write("l\n")
        demo.stdin.flush()
        password = (tmp_path / "centre-admin.password").read_text()
        page.goto(f"http://127.0.0.1:{port}/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        row = page.locator("#alarm-rows tr", has_text="剩余电流")
        row.first.wait_for(timeout=60_000)
        row.first.click()
        fields = page.locator("#detail-fields")
        for shown in ("和平花园 3 栋 2 单元 501 室", "张秀兰", "13800138001", "王建国",
                      "和平社区第一网格"):
            fields.get_by_text(shown, exact=False).first.wait_for(timeout=30_000)
        # telemetry every 10 s: the chart draws once two points are in (the
        # detail reads them when it opens: opened again until then, 120 s)
        drawn = "() => Number(document.getElementById('chart').dataset.points || 0) >= 2"
        deadline = time.monotonic() + 120
        while True:
            try:
                page.wait_for_function(drawn, timeout=12_000)
                break
            except PlaywrightTimeout:
                assert time.monotonic() < deadline, "the sensor's readings never reached the chart"
                row.first.click()
        # the device board counts the demo's registered devices (not 0/0)
        page.click("#nav-devices")
        expect(page.locator("#board-rows tr")).to_have_count(2, timeout=30_000)
        page.wait_for_function(
            "() => Number(document.getElementById('online-count').textContent) +"
            " Number(document.getElementById('offline-count').textContent) === 2",
            timeout=60_000)
        # the overview counts the household in its community and grid cell
        page.click("#nav-overview")
        tile = page.locator('#communities li.tile[data-community="和平社区"]')
        expect(tile).to_be_visible(timeout=30_000)
        expect(page.locator("#communities")).not_to_contain_text("未绑定住户")
        expect(page.locator('#cell-rows tr[data-code="G-01"] td.num').first).to_have_text("1")
        parts = psutil.Process(demo.pid).children(recursive=True)  # broker, centre, gateway
        assert len(parts) >= 3, parts
    finally:
        demo.terminate()  # SIGTERM, as `kill` or a service manager stops it
        demo.communicate(timeout=60)
    _, alive = psutil.wait_procs(parts, timeout=60)
    assert alive == [], f"the demo left its parts running: {alive}"
