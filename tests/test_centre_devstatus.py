"""A registered device's status follows what its gateway delivers through
ingest: heartbeats (battery, RSSI, outbox depth, firmware), last-will
status and the gateway's supervision events; older news never overwrites
newer; unregistered devices change nothing (TestClient, real SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dashboard.app import create_app
from dashboard.settings import Settings
from tests.test_centre_api import ADMIN, ADMIN_PASSWORD, AUTH, T0, TOKEN, batch, event, login


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}",
                              gateway_tokens=[TOKEN],
                              bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}"))
    with TestClient(app) as c:
        yield c

DEV = "hg-s-0777"


def status(client: TestClient) -> dict[str, Any]:
    r = client.get(f"/api/v1/registry/devices/{DEV}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def ingest(client: TestClient, *events: dict[str, Any]) -> None:
    r = client.post("/api/v1/ingest", json=batch(*events), headers=AUTH)
    assert r.status_code == 200, r.text


def test_heartbeats_and_supervision_update_the_device_board(client: TestClient) -> None:
    h = {"X-CSRF-Token": login(client, ADMIN, ADMIN_PASSWORD)}
    r = client.post("/api/v1/registry/devices", json={"device_id": DEV, "type": "sensor"},
                    headers=h)
    assert r.status_code == 201, r.text
    assert status(client)["online"] is None
    ingest(client, event(5, device=DEV, kind="heartbeat", typ="periodic",
                         data={"bat_mv": 3012, "rssi": -61, "obx": 2, "fw": "hg-0.1"}))
    s = status(client)
    assert (s["online"], s["battery_mv"], s["rssi"], s["outbox_depth"], s["firmware"]) == (
        True, 3012, -61, 2, "hg-0.1")
    assert s["last_heartbeat_ms"] == T0 + 5
    # the gateway's own events carry negative seqs (gateway/supervision.py)
    ingest(client, event(-1, device=DEV, kind="supervision", typ="offline",
                         event_time_ms=T0 + 100, data={"reason": "silent"}))
    assert status(client)["online"] is False
    # a late heartbeat from before the offline does not bring it back
    ingest(client, event(6, device=DEV, kind="heartbeat", typ="periodic",
                         event_time_ms=T0 + 50, data={"rssi": -70}))
    s = status(client)
    assert (s["online"], s["rssi"]) == (False, -61)
    ingest(client, event(7, device=DEV, kind="status", typ="online", event_time_ms=T0 + 200))
    assert status(client)["online"] is True


def test_unregistered_devices_change_nothing(client: TestClient) -> None:
    ingest(client, event(5, device="hg-s-0999", kind="heartbeat", typ="periodic",
                         data={"bat_mv": 1}))
    h = {"X-CSRF-Token": login(client, ADMIN, ADMIN_PASSWORD)}
    assert client.get("/api/v1/registry/devices/hg-s-0999", headers=h).status_code == 404
