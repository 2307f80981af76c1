"""Fault injection while a fleet streams alarms and telemetry through the real
stack: `homeguard chaos` (homeguard/chaos/) on a small fleet for a short
while. The gateway is SIGKILLed and restarted, the broker restarts, the
centre is killed and down for a while, every device link is cut (a TCP
proxy between the devices and the broker) and devices reboot with events in
their flash outbox. The devices are the real firmware (`homeguard
simulate`). Afterwards, reconciled from outside: every alarm their apps sent
is at the centre exactly once, and every telemetry point the broker
acknowledged is in the gateway's store unless the gateway counted it as shed.
(A longer soak: HG_SOAK_S=300 ./scripts/test -k faults, or `homeguard chaos`.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

from homeguard.chaos.faults import KINDS, FaultConfig
from homeguard.chaos.run import Params, run
from homeguard.chaos.stack import FleetConfig
from tests.harness.proc import require_binary

SOAK_S = float(os.environ.get("HG_SOAK_S", "16"))


def test_nothing_lost_nothing_doubled_under_faults(tmp_path: Path) -> None:
    require_binary("mosquitto", "apt-get install mosquitto")
    params = Params(
        # presses every ~3 s per board, telemetry every second, a board's own
        # link loss every ~10 s and a reboot every ~8 s
        fleet=FleetConfig(devices=15, prefix="sim", alarm_every_s=3, telemetry_s=1,
                          heartbeat_s=10, reboot_every_s=8, outage_every_s=10, seed=11),
        # each random kind once within the first seconds, then more; the centre down 2 s
        faults=FaultConfig(every_s=1.75, gateway_down_s=(0.2, 1.5), cut_s=(0.3, 1.5),
                           centre_outage_s=2.0, centre_at_s=2.0, seed=5),
        duration_s=SOAK_S, settle_s=120)
    result = run(params, tmp_path)
    print("fault run:", json.dumps({k: result[k] for k in (
        "alarms", "telemetry", "faults", "latency_ms", "devices")}))
    faults, alarms, points = result["faults"], result["alarms"], result["telemetry"]
    assert all(faults.get(kind, 0) >= 1 for kind in KINDS), faults
    assert faults["device_reboots"] >= 1 and faults["events_in_flash_at_reboot"] >= 1, faults
    assert faults["proxy_cuts_with_links"] >= 1, faults
    assert alarms["pressed"] > 0
    assert alarms["lost"] == 0 and alarms["duplicates"] == 0, alarms
    assert alarms["unexpected"] == 0 and alarms["at_centre"] == alarms["pressed"], alarms
    assert points["lost"] == 0 and points["acked_by_broker"] > 0, points
    assert result["ok"] and result["caught_up"]
