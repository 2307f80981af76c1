"""`homeguard bench peers`: other products on the gateway's stream (issue 17
goal 5). The broker, the prepared telemetry-only stream and the way each
consumer drains it are throughput's (homeguard/bench/throughput.py): its
persistent session created, the stream queued for it, then it connects and
drains the queue; the rate is from its first message handled to its last.

    paho           a bare paho subscriber (the baseline)
    gateway_ts     the gateway writing every point to VictoriaMetrics
    nodered_each   Node-RED, one influxdb write a message (peers_nodered.py)
    nodered_batch  Node-RED, a join node's batches of 500 to influxdb batch
    tb_gateway     ThingsBoard IoT Gateway's MQTT connector to a platform
                   broker (peers_tb.py)

A time-series writer is done when VictoriaMetrics has a point for every
message; the points each one left there are counted at the end. A peer that
is not installed (peers_install.py) or that fails has a row that says so."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from homeguard.bench import fleet, report
from homeguard.bench.cost import forget_sessions
from homeguard.bench.peers_install import INSTALL_HINT, find_node_red, find_tb_gateway
from homeguard.bench.peers_nodered import NodeRedConsumer
from homeguard.bench.peers_tb import Platform, PlatformBroker, TBGatewayConsumer
from homeguard.bench.rig import BenchError, Rig, add_accounts, write_registry
from homeguard.bench.throughput import (
    Drained,
    TimeseriesConsumer,
    _victoria,
    drain_paho,
    flood,
    prime,
    samples_in,
    summarise,
)

CONSUMERS = ("paho", "gateway_ts", "nodered_each", "nodered_batch", "tb_gateway")
GUARANTEES = {  # durable before the ack / de-duplicated / signature checked
    "paho": "none (a counter)", "gateway_ts": "all three",
    "nodered_each": "none", "nodered_batch": "none", "tb_gateway": "none"}


@dataclass
class Consumer:
    prime: Callable[[], None]
    drain: Callable[[int, float], Drained]
    stored: Callable[[], int] | None = None  # points it left where it writes them
    # messages' worth it delivered in its last drain, when it can be fewer than
    # it took (tb_gateway): the rate counts only those
    delivered: Callable[[], int] | None = None


class Peers:
    """The stack and one Consumer per consumer that can run."""

    def __init__(self, tmp: Path, peers_dir: Path, devices: int) -> None:
        self.rig = Rig(tmp)
        self.victoria = _victoria(tmp)
        self.platform: PlatformBroker | None = None
        self.counter: Platform | None = None
        self.ids = fleet.ids("hg-p", devices)
        self.password = add_accounts(self.rig.broker, self.ids)
        self.registry = tmp / "devices.json"
        write_registry(self.registry, self.ids, fleet.KEY)
        self.rig.start_centre()
        self.not_run: dict[str, str] = {}
        self.shed: list[int] = []  # telemetry gateway_ts shed per round (0 unless overloaded)
        self.versions: dict[str, dict[str, str]] = {}
        self.consumers = {"paho": Consumer(lambda: prime(self.rig, "bench-paho"),
                                           lambda n, t: drain_paho(self.rig, n, t))}
        if self.victoria is None:
            for name in ("gateway_ts", "nodered_each", "nodered_batch"):
                self.not_run[name] = "victoria-metrics is not installed (Debian: victoria-metrics)"
        else:
            self.victoria.start()
            self._node_red(peers_dir)
        self._tb_gateway(peers_dir)

    def _node_red(self, peers_dir: Path) -> None:
        found = find_node_red(peers_dir)
        if found is None:
            self.not_run |= dict.fromkeys(("nodered_each", "nodered_batch"), INSTALL_HINT)
            return
        self.versions["node_red"] = found.versions
        for name, batched in (("nodered_each", False), ("nodered_batch", True)):
            assert self.victoria is not None
            c = NodeRedConsumer(self.rig, found, self.victoria, name, batched)
            self.consumers[name] = Consumer(c.prime, c.drain, c.stored)

    def _tb_gateway(self, peers_dir: Path) -> None:
        found = find_tb_gateway(peers_dir)
        if found is None:
            self.not_run["tb_gateway"] = INSTALL_HINT
            return
        self.versions["thingsboard_gateway"] = found.versions
        self.platform = PlatformBroker(self.rig.tmp / "platform")
        self.platform.start()
        self.counter = Platform(self.platform)
        c = TBGatewayConsumer(self.rig, found, self.platform, self.counter)
        self.consumers["tb_gateway"] = Consumer(c.prime, c.drain, c.stored,
                                                lambda: c.delivered[-1])

    def round_consumers(self, r: int, messages: int) -> dict[str, Consumer]:
        """This round's consumers in table order (a fresh gateway store each round)."""
        out = dict(self.consumers)
        if self.victoria is not None:
            ts = TimeseriesConsumer(self.rig, self.registry, f"gw-peers-ts-{r + 1}", self.shed,
                                    self.victoria, messages, messages)
            victoria = self.victoria
            out["gateway_ts"] = Consumer(ts.prime, ts.drain, lambda: samples_in(victoria))
        return {k: out[k] for k in CONSUMERS if k in out and k not in self.not_run}

    def stop(self) -> None:
        if self.counter is not None:
            self.counter.stop()
        for server in (self.platform, self.victoria):
            if server is not None:
                server.stop()
        self.rig.stop()


def run(tmp: Path, peers_dir: Path, messages: int, devices: int, timeout: float,
        rounds: int = 3) -> dict:
    """Each round: a fresh telemetry-only stream (new seqs) drained by each
    consumer in turn; a consumer that fails is left out of later rounds."""
    peers = Peers(tmp, peers_dir, devices)
    try:
        rates: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        stored: dict[str, Callable[[], int]] = {}
        per_device = -(-messages // devices)
        for r in range(rounds):
            stream = fleet.mixed(peers.ids, peers.password, messages, 0, r * per_device)
            for name, c in peers.round_consumers(r, messages).items():
                forget_sessions(peers.rig)
                c.prime()
                flood(peers.rig, stream)
                try:
                    first, last, cpu_s = c.drain(messages, timeout)
                except BenchError as e:
                    peers.not_run[name] = f"failed in round {r + 1}: {str(e)[:300]}"
                    rates.pop(name, None)
                    continue
                n = c.delivered() if c.delivered is not None else messages
                rates.setdefault(name, []).append((n - 1) / max(last - first, 1e-6))
                cpu.setdefault(name, []).append(cpu_s * 1e6 / messages)
                if c.stored is not None:
                    stored[name] = c.stored
        out = summarise({k: v for k, v in rates.items() if k not in peers.not_run}, cpu,
                        messages)
        _ratios(out, rates)
        out["points"] = {name: {"sent": messages * len(rates[name]), "stored": count()}
                         for name, count in stored.items() if name in out}
        return out | {"not_run": peers.not_run, "versions": peers.versions,
                      "gateway_shed_rounds": peers.shed,
                      "guarantees": GUARANTEES}
    finally:
        peers.stop()


def _ratios(out: dict, rates: dict[str, list[float]]) -> None:
    """Each consumer's msg/s over paho's in the same round; the median."""
    for name, values in rates.items():
        if name != "paho" and name in out and "paho" in rates:
            per_round = [v / p for v, p in zip(values, rates["paho"], strict=True)]
            out[name]["ratio_paho"] = statistics.median(per_round)
            out[name]["ratio_paho_rounds"] = per_round


def table(results: dict) -> None:
    rows = []
    for name in CONSUMERS:
        r = results.get(name)
        if r is None:
            continue
        ratio = (f"{r['ratio_paho']:.2f} ({' '.join(f'{x:.2f}' for x in r['ratio_paho_rounds'])})"
                 if "ratio_paho" in r else "1")
        p = results["points"].get(name)
        kept = f"{p['stored']:,} of {p['sent']:,}" if p else ""
        if p and p["stored"] != p["sent"]:
            kept = f"[red]{kept}[/red]"
        rows.append([name, r["msg_per_s"], r["min"], r["max"], r["cpu_us_per_msg"], ratio,
                     kept])
    report.show("peers: draining the same queued telemetry stream (ratios: same round as paho)",
                ["consumer", "msg/s median", "min", "max", "CPU us/msg", "/ paho (rounds)",
                 "points kept"], rows)
    if results["not_run"]:
        report.show("not run", ["consumer", "why"], [
            [name, why.splitlines()[0][:90]] for name, why in results["not_run"].items()])
    for peer, versions in results["versions"].items():
        report.note(f"{peer}: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if any(results["gateway_shed_rounds"]):
        report.note(f"[red]gateway_ts shed telemetry (overloaded): "
                    f"{results['gateway_shed_rounds']} per round[/red]")
    report.note("points kept: in VictoriaMetrics; for tb_gateway, messages' worth of values "
                "that reached its platform, a plain Mosquitto (not ThingsBoard). Durable "
                "before the ack, de-dup, signature check: gateway_ts does all three, the peers "
                "none.")
