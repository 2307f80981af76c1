"""`homeguard bench memory`: gateway RSS with many tracked devices.

For each size a fresh gateway (own store, own session) starts with a
registry of that many devices; its RSS is read once it is subscribed and
idle, then after every device has logged in with its own account and sent
one heartbeat (stored, so the dedup window holds every device). The
baseline is an idle gateway with a one-device registry, measured in the
same run on the same broker."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from homeguard.bench import fleet, report, wire
from homeguard.bench.rig import BenchError, Gateway, Rig, add_accounts, write_registry

SETTLE_S = 2.0


def _rss_settled(gw: Gateway) -> float:
    time.sleep(SETTLE_S)
    return gw.rss_mb()


def _heartbeats(rig: Rig, ids: list[str], password: str) -> float:
    devices = []
    for dev in ids:
        d = wire.Device(dev, fleet.KEY, password)
        d.add("heartbeat", fleet.heartbeat(dev, 1))
        devices.append(d)
    t0 = time.perf_counter()
    asyncio.run(wire.send_all(devices, rig.broker.host, rig.broker.port, concurrency=64,
                              spread_sources=True))
    return time.perf_counter() - t0


def _wait_persisted(gw: Gateway, count: int, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        m = gw.metrics()
        if m.get('hg_gateway_persisted_total{kind="heartbeat"}', 0) >= count:
            return time.monotonic() - t0
        time.sleep(0.5)
    raise BenchError(f"the gateway stored fewer than {count} heartbeats in {timeout:.0f}s")


def run(tmp: Path, sizes: list[int], timeout: float) -> dict:
    rig = Rig(tmp)
    try:
        ids = fleet.ids("hg-m", max(sizes))
        password = add_accounts(rig.broker, ids)
        rig.start_centre()
        one = tmp / "devices-1.json"
        write_registry(one, ids[:1], fleet.KEY)
        gw = rig.gateway("gw-idle", one).start()
        results: dict = {"baseline_idle_mb": _rss_settled(gw)}
        gw.proc.stop()
        for n in sizes:
            registry = tmp / f"devices-{n}.json"
            write_registry(registry, ids[:n], fleet.KEY)
            gw = rig.gateway(f"gw-{n}", registry).start()
            loaded = _rss_settled(gw)
            send_s = _heartbeats(rig, ids[:n], password)
            stored_s = _wait_persisted(gw, n, timeout)
            tracked = _rss_settled(gw)
            results[str(n)] = {
                "devices": n, "registry_bytes": registry.stat().st_size,
                "rss_registry_loaded_mb": loaded, "rss_tracked_mb": tracked,
                "over_baseline_mb": tracked - results["baseline_idle_mb"],
                "kb_per_device": (tracked - results["baseline_idle_mb"]) * 1024 / n,
                "heartbeats_sent_s": send_s, "all_stored_after_s": stored_s,
            }
            gw.proc.stop()
        return results
    finally:
        rig.stop()


def table(results: dict) -> None:
    base = results["baseline_idle_mb"]
    rows = [["idle (1 device)", base, "", "", ""]]
    for r in results.values():
        if isinstance(r, dict):
            rows.append([f"{r['devices']:,} devices", r["rss_tracked_mb"],
                         r["rss_registry_loaded_mb"], r["over_baseline_mb"], r["kb_per_device"]])
    report.show("gateway RSS, MB (goal: <= 300 MB at 100k devices)",
                ["gateway", "RSS tracked", "RSS registry only", "over idle", "KB/device"], rows)
