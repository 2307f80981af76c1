"""`homeguard simulate`: a fleet of boards running the real firmware, with
outages, through the real stack, reconciled with what the centre stored: every
alarm the boards' apps sent is there exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.harness.stack import Stack

HOMEGUARD = Path(sys.executable).parent / "homeguard"


def test_fleet_with_outages_reconciles_with_the_centre(stack: Stack, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    r = subprocess.run(
        [HOMEGUARD, "simulate", "--count", "20", "--registry", tmp_path / "devices.json",
         "--broker-dir", stack.broker.config_dir, "--port", str(stack.broker.port),
         "--duration", "12", "--telemetry-s", "1", "--heartbeat-s", "10",
         "--alarm-every-s", "4", "--outage-every-s", "6", "--state-dir", tmp_path / "sim",
         "--report", report, "--seed", "7"],
        capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads(report.read_text())
    totals = result["totals"]
    assert totals["alarms"] >= 20 and totals["outages"] >= 5 and totals["unacked"] == 0
    assert totals["telemetry"] > 0 and totals["app_errors"] == 0
    sent = {(dev, seq) for dev, rep in result["devices"].items() for seq in rep["alarms"]}
    at_centre = [(a["device"], a["seq"]) for a in stack.alarms(limit=1000)
                 if a["device"].startswith("sim-") and a["seq"] > 0]  # not supervision
    assert len(at_centre) == len(set(at_centre)), "an alarm is shown twice"
    assert set(at_centre) == sent, f"lost: {sent - set(at_centre)}"
