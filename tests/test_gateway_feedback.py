"""The operator's progress reaches the button: centre workflow -> feedback
rows -> gateway relay -> signed `ack` on the device's ack topic (real
Mosquitto, centre and gateway processes, the simulated button)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.harness.proc import wait_until
from tests.harness.stack import ADMIN, ADMIN_PASSWORD, Stack
from tests.test_centre_api import login


@contextmanager
def operator(stack: Stack) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """A logged-in admin's client and the CSRF header its POSTs need."""
    with httpx.Client(base_url=stack.centre_url, timeout=5) as client:
        csrf = login(client, ADMIN, ADMIN_PASSWORD)  # type: ignore[arg-type]
        yield client, {"X-CSRF-Token": csrf}


def test_operator_steps_show_on_the_button(stack: Stack) -> None:
    dev = stack.device()
    try:
        assert dev.wait_connected()
        seq = dev.press("medical")
        wait_until(lambda: "delivered" in dev.acks.get(seq, []), 20, "centre received")
        alarm = next(a for a in stack.alarms() if a["seq"] == seq)
        with operator(stack) as (client, h):
            r = client.post(f"/api/v1/alarms/{alarm['id']}/ack", json={}, headers=h)
            assert r.status_code == 200, r.text
            wait_until(lambda: dev.acks[seq][-1] == "acknowledged", 15, "operator on it")
            assert dev.indicator(seq) == "operator on it (steady)"
            for step, body in (("verify", {"outcome": "genuine"}),
                               ("dispatch", {"to": "grid_worker"}), ("resolve", {})):
                r = client.post(f"/api/v1/alarms/{alarm['id']}/{step}", json=body, headers=h)
                assert r.status_code == 200, r.text
            wait_until(lambda: dev.acks[seq][-1] == "resolved", 15, "resolved on the button")
            assert "dispatched" in dev.acks[seq]
            assert dev.indicator(seq) == "resolved (off)"
            # the centre has them all relayed: nothing pending for this gateway
            pending = client.get("/api/v1/feedback", params={"pending": "true"},
                                 headers={"Authorization": "Bearer skeleton-token"}).json()
            assert pending == []
    finally:
        dev.stop()


def test_feedback_waits_for_a_gateway_that_was_down(stack: Stack) -> None:
    dev = stack.device()
    try:
        assert dev.wait_connected()
        seq = dev.press("fire")
        wait_until(lambda: "delivered" in dev.acks.get(seq, []), 20, "centre received")
        alarm = next(a for a in stack.alarms() if a["seq"] == seq)
        stack.gateway.stop()
        with operator(stack) as (client, h):
            r = client.post(f"/api/v1/alarms/{alarm['id']}/ack", json={}, headers=h)
            assert r.status_code == 200, r.text
        assert dev.acks[seq][-1] == "delivered"  # nobody relays it while the gateway is down
        stack.gateway.start()
        wait_until(lambda: dev.acks[seq][-1] == "acknowledged", 20, "relayed after restart")
    finally:
        dev.stop()
