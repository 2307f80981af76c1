"""One chaos run: start the stack (stack.py), let the fleet stream while the
driver breaks things (faults.py), end the fleet's run, wait until the
centre and the gateway's store have caught up, and reconcile (reconcile.py).

    result = run(Params(duration_s=600), Path("chaos-run"))
    result["ok"]   # nothing lost, nothing doubled
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from homeguard.chaos import reconcile
from homeguard.chaos.faults import Driver, FaultConfig
from homeguard.chaos.stack import ChaosRig, FleetConfig

log = logging.getLogger("homeguard.chaos")
PROGRESS_S = 30.0  # a progress line this often
COUNT_EVERY_S = 2.0  # how often --alarms counts the centre's alarms


@dataclass
class Params:
    fleet: FleetConfig = field(default_factory=FleetConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    duration_s: float | None = 600.0  # None: until `alarms`
    alarms: int = 0  # stop once the centre has stored this many of the fleet's alarms
    db_url: str | None = None  # the centre's store; None: SQLite in the run's directory
    settle_s: float = 300.0  # after the faults: how long the stack may take to catch up

    def as_dict(self) -> dict:
        return asdict(self)


def run(params: Params, tmp: Path) -> dict:
    """The whole run in `tmp`; the reconciled figures (see reconcile.py)."""
    rig = ChaosRig(tmp, params.fleet, params.db_url)
    try:
        rig.start()
        started = time.time()
        driver = Driver(rig, params.faults, params.duration_s)
        faults = driver.run(_stop_when(params, rig, started))
        streamed = time.time() - started
        log.info("faults over after %.0f s: ending the fleet's run", streamed)
        report = rig.finish_fleet()
        sent = reconcile.sent_alarms(report)
        acked = reconcile.acked_telemetry(report)
        flash = reconcile.in_flash(report)
        caught_up = _settle(rig, params, sent - flash, acked)
        stored = reconcile.centre_alarms(rig.db_url, params.fleet.prefix)
        kept, shed = reconcile.gateway_telemetry(rig.gateway_db)
        links_cut = rig.proxy.cuts
    finally:
        rig.stop()
    alarms = reconcile.alarms(sent, stored, reconcile.acked_stored(report), flash)
    points = reconcile.telemetry(acked, kept, shed)
    ok = not (alarms["lost"] or alarms["duplicates"] or alarms["unexpected"] or points["lost"])
    return {"ok": ok, "commit": commit(), "streamed_s": round(streamed, 1),
            "caught_up": caught_up, "alarms": alarms, "telemetry": points,
            "faults": reconcile.faults_by_kind(faults, report["totals"], links_cut),
            "latency_ms": reconcile.latency(sent, stored, faults),
            "devices": report["totals"], "fault_log": [f.as_dict() for f in faults]}


def _stop_when(params: Params, rig: ChaosRig, started: float) -> Callable[[], bool]:
    """The driver's stop: the duration is over, or the centre has `alarms`."""
    state = {"counted": 0.0, "said": time.monotonic()}
    counted = [0]  # the centre's alarms at the last count

    def stop() -> bool:
        now = time.monotonic()
        if params.alarms and now - state["counted"] >= COUNT_EVERY_S:
            state["counted"] = now
            counted[0] = reconcile.centre_alarm_count(rig.db_url, params.fleet.prefix)
        if now - state["said"] >= PROGRESS_S:
            state["said"] = now
            log.info("%.0f s: %s", time.time() - started, _progress(rig, counted[0]))
        if params.duration_s is not None and time.time() - started >= params.duration_s:
            return True
        return bool(params.alarms) and counted[0] >= params.alarms
    return stop


def _progress(rig: ChaosRig, counted: int) -> str:
    if not counted:
        counted = reconcile.centre_alarm_count(rig.db_url, rig.fleet_cfg.prefix)
    return f"{counted} alarms at the centre, {rig.proxy.cuts} link cuts"


def _settle(rig: ChaosRig, params: Params, sent: set[reconcile.Key],
            acked: set[reconcile.Key]) -> bool:
    """Wait (up to settle_s) until every sent alarm is at the centre and every
    acknowledged point is stored or counted shed; whether they got there."""
    deadline = time.monotonic() + params.settle_s
    while time.monotonic() < deadline:
        stored = reconcile.centre_alarms(rig.db_url, params.fleet.prefix)
        kept, shed = reconcile.gateway_telemetry(rig.gateway_db)
        if sent <= {(s.device, s.seq) for s in stored} and len(acked - kept) <= shed:
            return True
        time.sleep(1.0)
    return False


def commit() -> str:
    """The checkout's commit ('+dirty' with uncommitted changes), or 'unknown'."""
    here = Path(__file__).parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=here, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return f"{head}{'+dirty' if dirty else ''}" if head else "unknown"
