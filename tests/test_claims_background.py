"""Idle claims released by the centre's background task (issue 18), with no
desk open, against the real centre on SQLite and PostgreSQL; a dispatched
alarm (its holder waits on the grid worker or patrol) keeps its claim."""

# ruff: noqa: F811 - the `desk` fixture is imported by name
from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.desk_centre import DeskCentre, centre_env, desk  # noqa: F401 - fixtures
from tests.test_centre_browser import alarm

DEADLINE_S = 60.0


def _detail(client: httpx.Client, alarm_id: int) -> dict[str, Any]:
    r = client.get(f"/api/v1/alarms/{alarm_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _released(client: httpx.Client, alarm_id: int) -> dict[str, Any]:
    """The alarm once its claim is released (polled; no stream is open)."""
    end = time.monotonic() + DEADLINE_S
    while True:
        got = _detail(client, alarm_id)
        if got["alarm"]["claimed_by"] is None:
            return got
        assert time.monotonic() < end, f"alarm {alarm_id} still held: {got['alarm']}"
        time.sleep(0.2)


@pytest.mark.parametrize("centre_env", [{"HG_CENTRE_CLAIM_IDLE_S": "2"}])
def test_idle_claims_are_released_with_no_desk_open(desk: DeskCentre) -> None:
    olga, oscar = desk.operator("olga"), desk.operator("oscar")
    assert desk.ingest(alarm(1), alarm(2), alarm(3)) == ["accepted"] * 3
    assert olga.post("/api/v1/alarms/1/ack", json={}).status_code == 200
    for action, body in (("ack", {}), ("verify", {"outcome": "genuine"}),
                         ("dispatch", {"to": "patrol"})):
        assert olga.post(f"/api/v1/alarms/2/{action}", json=body).status_code == 200
    # alarm 3 taken last: once it is released, alarm 2 has idled longer
    assert olga.post("/api/v1/alarms/3/ack", json={}).status_code == 200
    for alarm_id in (1, 3):  # nobody acts, no stream is open
        last = _released(oscar, alarm_id)["audit"][-1]
        assert (last["action"], last["username"], last["note"]) == (
            "release", "(system)", "idle")
    # dispatched: olga waits on the patrol, the claim stays hers
    assert _detail(oscar, 2)["alarm"]["claimed_by"] == "olga"
    r = oscar.post("/api/v1/alarms/2/resolve", json={})
    assert r.status_code == 409 and r.json()["claimed_by"] == "olga"
    assert oscar.post("/api/v1/alarms/1/verify", json={"outcome": "false"}).status_code == 200
