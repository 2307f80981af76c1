"""A planned Mosquitto restart under 200 connected devices, through the real
broker, gateway and centre: the devices' last wills (sent by the broker as
it shuts down, and queued in the gateway's session for its return) are one
`link_lost` for the gateway, not 200 `offline` alarms; the devices that are
back produce nothing of their own; the one that stays away (its broker
account is gone when the broker comes back) gets its own `offline` once its
window has passed, and the `link_lost` then restores itself.

The fleet is `homeguard simulate` in one process (buttons running the real
firmware); every step waits on what
the gateway stored or the centre shows, with generous deadlines."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker import layout
from tests.harness.proc import wait_until
from tests.harness.stack import Stack

HOMEGUARD = Path(sys.executable).parent / "homeguard"
FLEET = 200
AWAY = f"sim-{FLEET:04d}"  # the one that does not come back
HEARTBEAT_S = 10  # the firmware's shortest
WINDOW_S = 45.0  # supervision window: four heartbeats and some
GW = "gw-test"
DEADLINE = 120.0


@pytest.fixture
def stack(mosquitto, tmp_path: Path) -> Iterator[Stack]:  # noqa: ANN001
    s = Stack(mosquitto, tmp_path)
    (tmp_path / "devices.json").write_text('{"devices": []}')  # the fleet registers itself
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(cfg.read_text() + (
        f"\n[supervision]\nwindows = {{ button = {WINDOW_S} }}\ncheck_s = 0.5\n"
        "link_grace_s = 5.0\n"))
    s.start()
    yield s
    s.stop()


def gateway_rows(stack: Stack, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(stack.tmp / "gw" / "gateway.db") as db:
        return db.execute(sql, args).fetchall()


def online_since(stack: Stack, after_id: int) -> set[str]:
    """Devices whose `status`/`online` (sent on every connect) was stored after a row."""
    return {d for (d,) in gateway_rows(
        stack, "SELECT DISTINCT device FROM events WHERE kind = 'status' AND type = 'online'"
        " AND id > ?", after_id)}


def open_alarms(stack: Stack) -> list[tuple[str, str]]:
    return sorted((a["device"], a["type"]) for a in stack.alarms(limit=1000))


def test_broker_restart_under_200_devices_is_one_link_lost_not_200_alarms(
        stack: Stack, tmp_path: Path) -> None:
    log = (tmp_path / "fleet.log").open("w")  # the fleet's output, kept with the test's files
    fleet = subprocess.Popen(
        [HOMEGUARD, "simulate", "--count", str(FLEET), "--registry", tmp_path / "devices.json",
         "--broker-dir", stack.broker.config_dir, "--port", str(stack.broker.port),
         "--duration", "900", "--heartbeat-s", str(HEARTBEAT_S), "--sensor-every", "0",
         "--alarm-every-s", "0", "--state-dir", tmp_path / "sim", "--seed", "3"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        everyone = {f"sim-{i:04d}" for i in range(1, FLEET + 1)}
        # connected, and the gateway has a window for each: a heartbeat of every one
        wait_until(lambda: len(gateway_rows(
            stack, "SELECT DISTINCT device FROM events WHERE kind = 'heartbeat'")) == FLEET,
            DEADLINE, f"a heartbeat from each of the {FLEET} devices")
        assert open_alarms(stack) == []

        stack.broker.stop()  # the broker sends every device's last will
        [(mark,)] = gateway_rows(stack, "SELECT max(id) FROM events")
        layout.remove_device(stack.broker.config_dir, AWAY)  # it will not get back in
        stack.broker.start()

        back = everyone - {AWAY}
        wait_until(lambda: online_since(stack, mark) >= back, DEADLINE,
                   f"{len(back)} devices back after the restart")
        # the link's grace passes: each last will is grouped or reported by now
        wait_until(lambda: gateway_rows(
            stack, "SELECT 1 FROM events WHERE kind = 'supervision' AND id > ?"
            " AND type IN ('link_lost', 'offline')", mark), DEADLINE,
            "the gateway to act on the last wills")
        wait_until(lambda: _centre_has_all_of_the_gateway(stack), DEADLINE,
                   "the centre to have everything the gateway stored")
        raised = gateway_rows(stack, "SELECT device, type, json_extract(data, '$.devices') FROM"
                              " events WHERE kind = 'supervision' AND id > ?", mark)
        shown = open_alarms(stack)
        assert [a for a in shown if a[0] != GW] == [], f"device alarms after a restart: {shown}"
        assert shown in ([], [(GW, "link_lost")]), shown
        print("after the restart:", json.dumps(raised))

        # the one that stays away: its own offline after its window, then the
        # link_lost is over and restores itself
        wait_until(lambda: open_alarms(stack) == [(AWAY, "offline")], WINDOW_S + DEADLINE,
                   f"only {AWAY}'s own offline open: {open_alarms(stack)}")
        assert fleet.poll() is None, (tmp_path / "fleet.log").read_text()[-2000:]
    finally:
        fleet.kill()
        fleet.wait()
        log.close()


def _centre_has_all_of_the_gateway(stack: Stack) -> bool:
    [(pending,)] = gateway_rows(
        stack, "SELECT count(*) FROM deliveries WHERE sink = 'centre' AND delivered_at IS NULL")
    return bool(pending == 0)
