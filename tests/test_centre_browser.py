"""The real `homeguard centre` process: its start-up checks, its SSE stream,
and the alarm desk in headless Chromium updating live as gateways ingest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.harness.proc import Proc, free_port

TOKEN = "gw-browser-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = 1795387455000
UI_TIMEOUT_MS = 10000


def homeguard_argv() -> list[str]:
    """The installed `homeguard` script, else the same entry point via python."""
    script = Path(sys.executable).with_name("homeguard")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from gateway.cli import main; main()"]


@dataclass
class CentreProc:
    proc: Proc
    url: str

    def ingest(self, *events: dict[str, Any]) -> list[str]:
        r = httpx.post(f"{self.url}/api/v1/ingest", headers=AUTH, timeout=10,
                       json={"gateway": "gw-1", "events": list(events)})
        assert r.status_code == 200, r.text
        return [x["status"] for x in r.json()["results"]]


def alarm(seq: int, device: str = "hg-b-0001", typ: str = "fire", **over: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "device": device, "seq": seq, "kind": "alarm", "type": typ,
        "event_time_ms": T0 + seq * 1000, "device_time_ms": T0 + seq * 1000,
        "gateway_time_ms": T0 + seq * 1000 + 1200, "age_ms": 1200, "skew_ms": -15,
        "data": {"btn": "a"},
    }
    ev.update(over)
    return ev


@pytest.fixture(autouse=True)
def _no_centre_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's command-line options alone configure the centre."""
    for name in list(os.environ):
        if name.startswith("HG_CENTRE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[CentreProc]:
    port = free_port()
    argv = [*homeguard_argv(), "centre", "--host", "127.0.0.1", "--port", str(port),
            "--db", f"sqlite:///{tmp_path / 'centre.db'}", "--gateway-token", TOKEN]
    proc = Proc("centre", argv, tmp_path)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    proc.start()
    try:
        proc.wait_ready(healthy, timeout=30)
        assert f"alarm desk at {url}/" in proc.logs()
        yield CentreProc(proc, url)
    finally:
        proc.stop()


def test_centre_refuses_to_start_without_a_gateway_token(tmp_path: Path) -> None:
    r = subprocess.run(
        [*homeguard_argv(), "centre", "--port", str(free_port()),
         "--db", f"sqlite:///{tmp_path / 'c.db'}"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 2
    assert "no gateway token configured" in r.stderr
    assert "--gateway-token" in r.stderr
    assert not (tmp_path / "c.db").exists()


def _read_sse(lines: Iterator[str]) -> dict[str, Any]:
    """The next SSE message (comments skipped) as {"id", "event", "data"}."""
    msg: dict[str, Any] = {}
    for line in lines:
        if line == "" and "data" in msg:
            return msg
        if line.startswith(":") or line == "":
            continue
        field, _, value = line.partition(": ")
        msg[field] = json.loads(value) if field == "data" else value
    raise AssertionError(f"stream ended inside {msg}")


def _wait_connected(lines: Iterator[str]) -> None:
    for line in lines:
        if line == ": connected":
            return
    raise AssertionError("stream ended before ': connected'")


def test_stream_replays_after_an_id_then_pushes_each_new_event_once(
    centre: CentreProc,
) -> None:
    assert centre.ingest(alarm(1)) == ["accepted"]
    timeout = httpx.Timeout(10, read=10)
    with httpx.stream("GET", f"{centre.url}/api/v1/stream", params={"after": 0},
                      timeout=timeout) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        first = _read_sse(lines)
        assert (first["event"], first["data"]["seq"], first["data"]["state"]) == (
            "alarm", 1, "received")
        assert centre.ingest(alarm(2), alarm(1)) == ["accepted", "duplicate"]
        assert centre.ingest(alarm(2)) == ["duplicate"]
        heartbeat = alarm(3, kind="heartbeat", typ="periodic")
        assert centre.ingest(heartbeat, alarm(4, typ="medical")) == ["accepted", "accepted"]
        got = [_read_sse(lines) for _ in range(3)]
    assert [(m["event"], m["data"]["seq"]) for m in got] == [
        ("alarm", 2), ("event", 3), ("alarm", 4)]
    assert [int(m["id"]) for m in got] == sorted(int(m["id"]) for m in got)
    # a browser reconnecting with Last-Event-ID gets only what came after it
    with httpx.stream("GET", f"{centre.url}/api/v1/stream", timeout=timeout,
                      headers={"Last-Event-ID": got[0]["id"]}) as r:
        lines = r.iter_lines()
        assert [_read_sse(lines)["data"]["seq"] for _ in range(2)] == [3, 4]


def test_a_stream_without_a_resume_point_starts_with_nothing_old(centre: CentreProc) -> None:
    centre.ingest(alarm(1))
    with httpx.stream("GET", f"{centre.url}/api/v1/stream",
                      timeout=httpx.Timeout(10, read=10)) as r:
        lines = r.iter_lines()
        _wait_connected(lines)
        centre.ingest(alarm(2))
        assert _read_sse(lines)["data"]["seq"] == 2


def _row(page: Page, device: str, seq: int) -> Any:
    return page.locator(f'#alarm-rows tr[data-device="{device}"][data-seq="{seq}"]')


def test_alarm_desk_shows_new_alarms_live_once(
    centre: CentreProc, page: Page, artifacts_dir: Path
) -> None:
    page.goto(centre.url + "/")
    conn = page.locator("#conn")
    expect(conn).to_have_attribute("data-state", "live", timeout=UI_TIMEOUT_MS)
    expect(conn).to_contain_text("实时 Live")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#empty")).to_contain_text("暂无报警 No open alarms")

    assert centre.ingest(alarm(42)) == ["accepted"]
    row = _row(page, "hg-b-0001", 42)
    expect(row).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(row).to_contain_text("火警 Fire")
    expect(page.locator("#empty")).to_be_hidden()

    # a resend changes nothing; the next alarm proves the stream moved past it
    assert centre.ingest(alarm(42)) == ["duplicate"]
    later = alarm(43, device="hg-s-0007", typ="residual_current", device_time_ms=None,
                  skew_ms=None, data={"ma": 42})
    assert centre.ingest(later) == ["accepted"]
    expect(_row(page, "hg-s-0007", 43)).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.locator("#alarm-rows tr")).to_have_count(2)
    expect(_row(page, "hg-b-0001", 42)).to_have_count(1)
    newest = page.locator("#alarm-rows tr").first
    expect(newest).to_have_attribute("data-seq", "43")
    expect(newest).to_contain_text("剩余电流 Residual current")
    expect(newest).to_contain_text("未校时 not synced")
    expect(page.locator("#open-count")).to_have_text("2")
    page.screenshot(path=str(artifacts_dir / "alarm-desk.png"), full_page=True,
                    animations="disabled")


def test_desk_loads_stored_alarms_and_shows_a_lost_connection(
    centre: CentreProc, page: Page
) -> None:
    centre.ingest(alarm(1, typ="medical"), alarm(2, typ="security"))
    page.goto(centre.url + "/")
    expect(page.locator("#alarm-rows tr")).to_have_count(2)
    expect(page.locator("#alarm-rows tr").first).to_have_attribute("data-seq", "2")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=UI_TIMEOUT_MS)
    centre.proc.stop()
    expect(page.locator("#conn")).to_have_attribute(
        "data-state", "offline", timeout=UI_TIMEOUT_MS)
