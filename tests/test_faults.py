"""Fault injection while a fleet streams alarms and telemetry through the real
stack: the gateway is SIGKILLed and restarted, the broker restarts, the centre
is down for a while, the devices' links are cut (a TCP proxy between them and
the broker) and devices reboot with alarms in their flash outbox. The devices
are the real firmware (`homeguard simulate`). Afterwards every alarm their
apps sent is at the centre exactly once, and every telemetry point the broker
acknowledged is in the gateway's store unless the gateway counted it as shed.
(A longer soak: HG_SOAK_S=300 ./scripts/test -k faults)"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from gateway.store import SHED_COUNTER
from tests.harness.proc import wait_until
from tests.harness.stack import Stack
from tests.harness.tcpproxy import TcpProxy

HOMEGUARD = Path(sys.executable).parent / "homeguard"
SOAK_S = float(os.environ.get("HG_SOAK_S", "16"))


def faults(stack: Stack, proxy: TcpProxy, rng: random.Random, soak_s: float) -> list[str]:
    """Inject every kind of fault once, then more at random until soak_s has
    passed, at random moments; returns what was done."""
    kinds = ["kill_gateway", "restart_broker", "centre_down", "cut_links"]
    plan = rng.sample(kinds, len(kinds))  # each kind once first, then at random
    done: list[str] = []
    until = time.monotonic() + soak_s
    while len(done) < len(plan) or time.monotonic() < until:
        time.sleep(rng.uniform(1.0, 2.5))
        fault = plan[len(done)] if len(done) < len(plan) else rng.choice(kinds)
        if fault == "cut_links":
            proxy.down(rng.uniform(0.3, 1.5))
        elif fault == "kill_gateway":
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
    proxy = TcpProxy((stack.broker.host, stack.broker.port)).start()
    log = tmp_path / "sim.log"
    with open(log, "w") as f:  # the boards' link messages: a file, not a pipe to drain
        sim = subprocess.Popen(
            [HOMEGUARD, "simulate", "--count", "15", "--registry", tmp_path / "devices.json",
             "--broker-dir", stack.broker.config_dir, "--port", str(proxy.port),
             "--duration", "3600", "--telemetry-s", "1", "--heartbeat-s", "10",
             "--alarm-every-s", "3", "--outage-every-s", "10", "--reboot-every-s", "8",
             "--state-dir", tmp_path / "sim", "--report", report, "--seed", "11"],
            stdout=f, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "boards running" in log.read_text() or sim.poll() is not None, 120,
                   "the fleet provisioned and running")
        done = faults(stack, proxy, random.Random(5), SOAK_S)
        sim.send_signal(signal.SIGINT)  # the run ends: it drains and reports
        sim.wait(180)
    finally:
        if sim.poll() is None:
            sim.kill()
        proxy.stop()
    out = log.read_text()[-5000:]
    assert sim.returncode == 0, out
    result = json.loads(report.read_text())
    sent = {(dev, seq) for dev, rep in result["devices"].items() for seq in rep["alarms"]}

    def at_centre() -> list[tuple[str, int]]:
        return [(a["device"], a["seq"]) for a in stack.alarms(limit=1000)
                if a["device"].startswith("sim-") and a["seq"] > 0]  # not supervision

    wait_until(lambda: set(at_centre()) >= sent, 60,
               f"every alarm at the centre; faults {done}")
    shown = at_centre()
    telemetry = {(dev, seq) for dev, rep in result["devices"].items()
                 for seq in rep["telemetry_seqs"]}  # acknowledged by the broker
    gw_db = stack.tmp / "gw" / "gateway.db"

    def telemetry_missing() -> set[tuple[str, int]]:
        with sqlite3.connect(gw_db) as db:
            kept = set(db.execute("SELECT device, seq FROM telemetry"))
        return telemetry - kept

    def shed() -> int:
        with sqlite3.connect(gw_db) as db:
            row = db.execute("SELECT value FROM counters WHERE name = ?",
                             (SHED_COUNTER,)).fetchone()
        return int(row[0]) if row else 0

    wait_until(lambda: len(telemetry_missing()) <= shed(), 60,
               "every acknowledged telemetry point stored or counted as shed")
    counts = {"sent": len(sent), "stored": len(set(shown)),
              "duplicates": len(shown) - len(set(shown)), "lost": len(sent - set(shown)),
              "telemetry_acked": len(telemetry), "telemetry_shed": shed(),
              "telemetry_lost": max(0, len(telemetry_missing()) - shed()),
              "links_cut": proxy.cuts, "faults": done, **result["totals"]}
    print("fault run:", json.dumps(counts))
    assert set(done) >= {"kill_gateway", "restart_broker", "centre_down", "cut_links"}
    assert counts["duplicates"] == 0 and counts["lost"] == 0
    assert set(shown) == sent, (sorted(set(shown) - sent), sorted(sent - set(shown)))
    assert counts["telemetry_lost"] == 0 and counts["telemetry_acked"] > 0
