"""`homeguard bench connections`: how many device connections one
`homeguard simulate` process holds, and what they cost.

For each fleet size: that many device accounts (one shared password, hashed
once) and registry entries (buttons), then `homeguard simulate` runs them
as the real firmware (hg.device + apps.button on hg.simhal, homeguard/simulator/fleet.py)
with a heartbeat every `period_s` and no presses, against the project's
Mosquitto; a quiet board's loop turns once a second (TICK_MS; data on its
socket turns it at once). Every second the simulator's established TCP
connections to the broker are counted (psutil), with its RSS and CPU time
and the broker's RSS. Reported: connections held at the end of the run
(the figure), the time until all were up, simulator RSS per connection and
CPU per connection-second, broker RSS. The baseline is the same measurement
with 10 devices in the same run."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import psutil

from homeguard.bench import fleet, report
from homeguard.bench.rig import BIN, BenchError, Rig, add_accounts, write_registry

BASELINE = 10
TICK_MS = 1000  # a board with nothing to do: its loop's period (the simulator's default: 100)


def _established(proc: psutil.Process, port: int) -> int:
    try:
        conns = proc.net_connections(kind="tcp")
    except psutil.Error:
        return 0
    return sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED
               and c.raddr and c.raddr.port == port)


def one_size(rig: Rig, size: int, duration: float, period_s: float) -> dict:
    prefix = f"hg-c{size}"
    ids = [f"{prefix}-{i:04d}" for i in range(1, size + 1)]
    password = add_accounts(rig.broker, ids)
    state = rig.tmp / f"sim-{size}"
    state.mkdir()
    registry = state / "devices.json"
    write_registry(registry, ids, fleet.KEY)
    (state / "passwords.json").write_text(json.dumps({d: password for d in ids}))
    argv = [str(BIN / "homeguard"), "simulate", "--count", str(size), "--prefix", prefix,
            "--registry", str(registry), "--state-dir", str(state), "--port",
            str(rig.broker.port), "--duration", str(duration),
            "--telemetry-s", str(int(period_s)), "--heartbeat-s", str(int(period_s)),
            "--alarm-every-s", "0",
            "--tick-ms", str(TICK_MS)]
    sim = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc = psutil.Process(sim.pid)
    broker = psutil.Process(rig.broker.process.pid)
    t0 = time.monotonic()
    all_up = None
    samples: list[int] = []
    try:
        while time.monotonic() - t0 < duration - 1 and sim.poll() is None:
            n = _established(proc, rig.broker.port)
            samples.append(n)
            if all_up is None and n >= size:
                all_up = time.monotonic() - t0
            time.sleep(1.0)
        held = _established(proc, rig.broker.port)
        cpu = proc.cpu_times()
        rss = proc.memory_info().rss / (1 << 20)
        broker_rss = broker.memory_info().rss / (1 << 20)
    except psutil.Error as exc:
        raise BenchError(f"the simulator for {size} devices died: "
                         f"{sim.stderr.read().decode()[-2000:] if sim.stderr else exc}") from None
    finally:
        sim.terminate()
        sim.wait(60)
    return {"devices": size, "held": held, "max_held": max(samples, default=0),
            "all_up_s": all_up, "sim_rss_mb": rss, "sim_cpu_s": cpu.user + cpu.system,
            "broker_rss_mb": broker_rss, "duration_s": duration}


def run(tmp: Path, sizes: list[int], duration: float, period_s: float) -> dict:
    rig = Rig(tmp)
    try:
        base = one_size(rig, BASELINE, duration, period_s)
        results = [one_size(rig, n, duration, period_s) for n in sizes]
    finally:
        rig.stop()
    for r in results:
        extra = max(1, r["devices"] - base["devices"])
        r["sim_rss_kb_per_connection"] = (r["sim_rss_mb"] - base["sim_rss_mb"]) * 1024 / extra
        r["sim_cpu_ms_per_connection_s"] = r["sim_cpu_s"] * 1000 / (r["devices"] * duration)
    return {"baseline": base, "sizes": results}


def table(results: dict) -> None:
    rows = [[r["devices"], r["held"], r["max_held"],
             "-" if r["all_up_s"] is None else f"{r['all_up_s']:.0f}", r["sim_rss_mb"],
             r.get("sim_rss_kb_per_connection", "-"), r.get("sim_cpu_ms_per_connection_s", "-"),
             r["broker_rss_mb"]]
            for r in [results["baseline"], *results["sizes"]]]
    report.show("simulator connections held (one process, one MQTT connection per device, "
                "the real firmware)",
                ["devices", "held at end", "max held", "all up after s", "sim RSS MB",
                 "RSS KB/conn", "CPU ms per conn-s", "broker RSS MB"], rows)
