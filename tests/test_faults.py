"""Fault injection while a fleet streams alarms and telemetry through the real
stack: the gateway is SIGKILLed and restarted, the broker restarts, the centre
is down for a while. Afterwards every alarm the devices pressed is at the
centre exactly once. (A longer soak: HG_SOAK_S=300 ./scripts/test -k faults)"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from tests.harness.proc import wait_until
from tests.harness.stack import Stack

HOMEGUARD = Path(sys.executable).parent / "homeguard"
SOAK_S = float(os.environ.get("HG_SOAK_S", "16"))


def faults(stack: Stack, rng: random.Random, until: float) -> list[str]:
    """Inject one fault after another until `until`; returns what was done."""
    done = []
    while time.monotonic() < until - 3:
        time.sleep(rng.uniform(1.0, 2.5))
        fault = rng.choice(["kill_gateway", "restart_broker", "centre_down"])
        if fault == "kill_gateway":
            stack.gateway.kill()
            time.sleep(rng.uniform(0.2, 1.5))
            stack.gateway.start()
        elif fault == "restart_broker":
            stack.broker.restart()
        else:
            stack.centre.stop()
            time.sleep(rng.uniform(0.5, 2.0))
            stack.centre.start().wait_ready(stack._centre_up)
        done.append(fault)
    return done


def test_nothing_lost_nothing_doubled_under_faults(stack: Stack, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    sim = subprocess.Popen(
        [HOMEGUARD, "simulate", "--count", "15", "--registry", tmp_path / "devices.json",
         "--broker-dir", stack.broker.config_dir, "--port", str(stack.broker.port),
         "--duration", str(SOAK_S), "--telemetry-s", "1", "--heartbeat-s", "5",
         "--alarm-every-s", "3", "--outage-every-s", "10", "--state-dir", tmp_path / "sim",
         "--report", report, "--seed", "11"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(2)  # the fleet is provisioned and streaming
        done = faults(stack, random.Random(5), time.monotonic() + SOAK_S - 2)
        out, _ = sim.communicate(timeout=SOAK_S + 120)
    finally:
        if sim.poll() is None:
            sim.kill()
    assert sim.returncode == 0, out
    result = json.loads(report.read_text())
    sent = {(dev, seq) for dev, rep in result["devices"].items() for seq in rep["alarms"]}

    def at_centre() -> list[tuple[str, int]]:
        return [(a["device"], a["seq"]) for a in stack.alarms(limit=1000)
                if a["device"].startswith("sim-")]

    wait_until(lambda: set(at_centre()) >= sent, 60,
               f"every alarm at the centre; faults {done}")
    shown = at_centre()
    counts = {"sent": len(sent), "stored": len(set(shown)),
              "duplicates": len(shown) - len(set(shown)), "lost": len(sent - set(shown)),
              "faults": done, **result["totals"]}
    print("fault run:", json.dumps(counts))
    assert len(done) >= 3
    assert counts["duplicates"] == 0 and counts["lost"] == 0
    assert set(shown) == sent
