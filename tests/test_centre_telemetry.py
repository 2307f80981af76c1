"""The alarm detail's telemetry: the centre reads a sensor's recent points
from the gateways' embedded stores (GET /telemetry on their metrics port) —
a real gateway process with real Mosquitto here — merges them in time
order, and names a source that does not answer instead of failing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from dashboard.app import create_app
from dashboard.settings import Settings
from hg import protocol
from tests.harness.proc import free_port, wait_until
from tests.test_centre_api import ADMIN, ADMIN_PASSWORD, AUTH, TOKEN, batch, event, login
from tests.test_gateway_flow import LOOPBACK, WAIT, Centre, Device, Gateway

SENSOR = "hg-s-0888"
KEY = b"s" * 32


@pytest.fixture
def gateway_with_points(mosquitto, tmp_path: Path) -> Iterator[str]:  # noqa: ANN001
    """A gateway that stored five telemetry points of SENSOR; its metrics URL."""
    fake_centre = Centre().start()  # the gateway's own sink target
    (tmp_path / "gw").mkdir()
    gw = Gateway(mosquitto, tmp_path / "gw", fake_centre, {SENSOR: KEY})
    gw.start()
    dev = Device(mosquitto, SENSOR, KEY)
    url = f"http://{LOOPBACK}:{gw.metrics_port}"
    try:
        now = int(time.time() * 1000)
        for seq in range(1, 6):
            dev.publish(protocol.encode(KEY, SENSOR, seq, "telemetry", "periodic", 0,
                                        {"r_max": 40 * seq, "r_avg": 30 * seq},
                                        now - 1000 * (6 - seq)), "telemetry")
        wait_until(lambda: len(httpx.get(url + "/telemetry", params={
            "device": SENSOR}, timeout=5).json()["points"]) == 5, WAIT, "five points stored")
        yield url
    finally:
        dev.stop()
        gw.stop()
        fake_centre.stop()


def test_alarm_detail_reads_recent_points_from_the_gateways(
        gateway_with_points: str, tmp_path: Path) -> None:
    dead = f"http://{LOOPBACK}:{free_port()}"
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}",
                              gateway_tokens=[TOKEN], bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}",
                              telemetry_urls=[dead, gateway_with_points, gateway_with_points]))
    with TestClient(app) as c:
        r = c.post("/api/v1/ingest", headers=AUTH, json=batch(event(
            9, device=SENSOR, typ="residual_current", data={"v": 330, "set": 300},
            event_time_ms=int(time.time() * 1000))))
        assert r.status_code == 200, r.text
        assert c.get("/api/v1/alarms/1/telemetry").status_code == 401  # a login is needed
        login(c, ADMIN, ADMIN_PASSWORD)
        got = c.get("/api/v1/alarms/1/telemetry").json()
        assert [p["data"]["r_max"] for p in got["points"]] == [40, 80, 120, 160, 200]
        assert got["unavailable"] == [dead] and got["device"] == SENSOR
        assert c.get("/api/v1/alarms/99/telemetry").status_code == 404
