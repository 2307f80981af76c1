"""Time that survives queues (issue 16): while the gateway is away for
several times the clock window, a device keeps sending timestamped alarms
and telemetry, which Mosquitto queues for the gateway's persistent session.
When the gateway is back, every one of them is stored with its device time
and every alarm is at the centre once — no `clock_skew` refusal, no NAK, no
resend round trip. (Before, all of it was refused as clock_skew: after a
61 s outage, 12,000 of 12,000 queued points were lost.) A message sent
after the gateway is back is still judged by the window."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.harness.proc import wait_until
from tests.harness.stack import BUTTON, Stack
from tests.test_identity_e2e import Client

WINDOW_MS = 2000  # [verify] behind_ms for this test; the outage is several times it


def stored_points(tmp_path: Path) -> dict[int, int]:
    db = sqlite3.connect(f"file:{tmp_path / 'gw' / 'gateway.db'}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT seq, event_time_ms FROM telemetry WHERE device = ?",
                               (BUTTON,)).fetchall())
    finally:
        db.close()


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_a_backlog_older_than_the_clock_window_is_stored_with_its_times(
        mosquitto, tmp_path: Path, how: str) -> None:  # noqa: ANN001
    stack = Stack(mosquitto, tmp_path)
    with (tmp_path / "gateway.toml").open("a") as f:
        f.write(f"\n[verify]\nbehind_ms = {WINDOW_MS}\n")
    stack.start()
    dev = Client(stack)
    try:
        dev.send(1, "fire")
        dev.ack_for(1, "delivered")
        stack.gateway.stop() if how == "stopped" else stack.gateway.kill()
        sent: dict[int, int] = {}
        for seq in range(2, 42):  # points, and an alarm every tenth
            kind = "alarm" if seq % 10 == 0 else "telemetry"
            typ = "medical" if kind == "alarm" else "periodic"
            sent[seq] = dev.send(seq, typ, kind=kind, data={"n": seq}, ts_ago_ms=0)
        # the queue now holds messages older than several windows
        wait_until(lambda: time.time() * 1000 - sent[2] > 4 * WINDOW_MS, 60,
                   "the backlog older than four clock windows")
        stack.gateway.start().wait_ready(lambda: "subscribed topics=" in stack.gateway.logs())
        dev.send(50, "security", ts_ago_ms=0)  # live again: a new alarm
        acks = dev.ack_for(50, "delivered", timeout=60)
        assert [a for a in acks if a["type"] == "nak"] == []
        def mine() -> list[dict]:
            return [a for a in stack.alarms(1000) if a["device"] == BUTTON]

        wait_until(lambda: len(mine()) >= 6, 30, "every alarm at the centre")
        alarms = mine()
        assert sorted(a["seq"] for a in alarms) == [1, 10, 20, 30, 40, 50]  # once each
        for a in alarms:  # with the device's own time
            assert a["event_time_ms"] == sent.get(a["seq"], a["event_time_ms"])
        points = stored_points(tmp_path)
        assert {s: points.get(s) for s in sent if s % 10} == {
            s: t for s, t in sent.items() if s % 10}
        assert "reason=clock_skew" not in stack.gateway.logs(100_000)
        # a message sent now with a clock off by more than the window is still refused
        dev.send(60, "fire", ts_ago_ms=10 * WINDOW_MS)
        nak = dev.ack_for(60, "nak")[-1]
        assert nak["data"]["reason"] == "clock_skew"
    finally:
        dev.close()
        stack.stop()
