"""Alarms first (issue 17, goal 1): real Mosquitto, the gateway and the
centre as processes. Telemetry and alarms queue in separate broker
sessions of the gateway (source.py), so an alarm published after a backlog
of telemetry is not handed over behind it.

The gateway is stopped; a sensor publishes N telemetry messages, which
Mosquitto queues for the gateway; then a button's fire alarm. With one
session for everything (the release before) the broker handed the alarm
over after all N points: every point was received before it. Now the
alarm is received before the backlog is drained and reaches the centre
while points are still arriving; every point is stored (or counted as shed)
once. The assertions compare the gateway's own receive times and counters,
not wall-clock windows."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.store import SHED_COUNTER
from hg import protocol
from tests.harness.proc import wait_until
from tests.harness.stack import BUTTON, Stack
from tests.test_identity_e2e import Client

SENSOR = "hg-s-0201"
BACKLOG = 20000  # telemetry queued for the gateway: seconds of draining, not milliseconds
WAIT_S = 300


def publish_backlog(stack: Stack, key: bytes, password: str) -> None:
    """BACKLOG signed telemetry messages from the sensor's own account, each
    taken by the broker (PUBACK) before this returns."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=SENSOR)
    c.username_pw_set(SENSOR, password)
    c.max_inflight_messages_set(1000)
    c.connect(stack.broker.host, stack.broker.port)
    c.loop_start()
    try:
        now = int(time.time() * 1000)
        infos = [c.publish(protocol.topic(SENSOR, "telemetry"),
                           protocol.encode(key, SENSOR, seq, "telemetry", "periodic", 0,
                                           {"i_ma": seq % 1000}, now), qos=1)
                 for seq in range(1, BACKLOG + 1)]
        for info in infos:
            info.wait_for_publish(WAIT_S)
    finally:
        c.loop_stop()
        c.disconnect()


def store(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{tmp_path / 'gw' / 'gateway.db'}?mode=ro", uri=True)


def points_and_shed(tmp_path: Path) -> int:
    db = store(tmp_path)
    try:
        points = db.execute("SELECT count(*) FROM telemetry WHERE device = ?",
                            (SENSOR,)).fetchone()[0]
        shed = db.execute("SELECT value FROM counters WHERE name = ?",
                          (SHED_COUNTER,)).fetchone()
        return points + (shed[0] if shed else 0)
    finally:
        db.close()


def test_an_alarm_is_not_handed_over_behind_a_telemetry_backlog(
        mosquitto, tmp_path: Path) -> None:  # noqa: ANN001
    stack = Stack(mosquitto, tmp_path)
    sensor_key, sensor_password = stack.add_device(SENSOR, "sensor", "H-0201")
    stack.start()  # both sessions exist: the broker queues for them from now on
    button = Client(stack)
    try:
        stack.gateway.stop()
        publish_backlog(stack, sensor_key, sensor_password)
        button.send(1, "fire", ts_ago_ms=0)  # after the whole backlog
        stack.gateway.start()
        wait_until(lambda: any(a["device"] == BUTTON and a["seq"] == 1
                               for a in stack.alarms()), WAIT_S, "the fire alarm at the centre")
        wait_until(lambda: points_and_shed(tmp_path) >= BACKLOG, WAIT_S,
                   "every point stored or counted as shed")
        db = store(tmp_path)
        try:
            received, delivered = db.execute(
                "SELECT e.gateway_time_ms, d.delivered_at FROM events e JOIN deliveries d "
                "ON d.event_id = e.id AND d.sink = 'centre' WHERE e.device = ? AND e.seq = 1",
                (BUTTON,)).fetchone()
            times = [t for (t,) in db.execute(
                "SELECT gateway_time_ms FROM telemetry WHERE device = ?", (SENSOR,))]
            shed = db.execute("SELECT value FROM counters WHERE name = ?",
                              (SHED_COUNTER,)).fetchone()
        finally:
            db.close()
        assert len(times) + (shed[0] if shed else 0) == BACKLOG  # each point once
        before = sum(t < received for t in times)
        print(f"points before the alarm: {before} of {BACKLOG}; delivered {delivered}, "
              f"first point {min(times)}, last point {max(times)}, shed {shed}")
        # one session would have handed over every point first (before == BACKLOG)
        assert before < BACKLOG // 2, f"{before} of {BACKLOG} points came before the alarm"
        # at the centre while the backlog was still being handed over
        assert delivered is not None and delivered < max(times), (delivered, max(times))
        logs = stack.gateway.logs(100_000)
        assert "session=telemetry" in logs and "session=events" in logs
        assert "reason=replay" not in logs and "reason=clock_skew" not in logs
    finally:
        button.close()
        stack.stop()
