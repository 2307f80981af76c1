"""`homeguard bench throughput`: the gateway's full pipeline against a bare
paho subscriber and `mosquitto_sub`, draining the same queued stream; with
VictoriaMetrics installed also the gateway with its time-series sink on
(`gateway_ts`: done when every telemetry point is written to VictoriaMetrics).

For each consumer in turn: its persistent session is created (subscribed,
QoS 1, then disconnected), the flood publisher puts the same pre-encoded
messages into the broker's queue for it (every PUBACK received), and then
the consumer connects and drains the queue. The rate is messages from the
first to the last one handled, so start-up costs are left out and the
publisher cannot be the bottleneck. This is repeated for `rounds`, each
with fresh sequence numbers and a fresh gateway store."""

from __future__ import annotations

import asyncio
import resource
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from homeguard.bench import fleet, report, wire
from homeguard.bench.rig import (
    BenchError,
    Rig,
    add_accounts,
    forget_sessions,
    wait_until,
    write_registry,
)
from homeguard.bench.servers import VictoriaMetrics

Drained = tuple[float, float, float]  # first message, last message (wall s), CPU s
TOPICS = [("hg/v1/+/telemetry", 1), ("hg/v1/+/event", 1)]
GATEWAYS = ("gateway", "gateway_tuned", "gateway_ts")
# (consumer, baseline): every gateway against both bare consumers, and the
# time-series sink's own cost (the same gateway without it, same reader)
RATIOS = [(gw, other) for gw in GATEWAYS for other in ("paho", "mosquitto_sub")] + [
    ("gateway_ts", "gateway_tuned")]


def _paho(rig: Rig, client_id: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    c.username_pw_set(rig.gateway_user, rig.gateway_password)
    c.max_inflight_messages_set(100)
    return c


def prime(rig: Rig, client_id: str) -> None:
    """Create a persistent session subscribed to the stream, then leave."""
    c = _paho(rig, client_id)
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.on_connect = lambda client, *a: client.subscribe(TOPICS)
    c.connect(rig.broker.host, rig.broker.port)
    c.loop_start()
    if not done.wait(10):
        raise BenchError(f"{client_id}: the broker did not grant the subscription")
    c.disconnect()
    c.loop_stop()


def flood(rig: Rig, devices: list[wire.Device]) -> float:
    t0 = time.perf_counter()
    asyncio.run(wire.send_all(devices, rig.broker.host, rig.broker.port))
    return time.perf_counter() - t0


def drain_mosquitto_sub(rig: Rig, count: int, timeout: float) -> Drained:
    binary = shutil.which("mosquitto_sub")
    if binary is None:
        raise BenchError("mosquitto_sub is not installed (Debian: mosquitto-clients)")
    argv = [binary, "-h", rig.broker.host, "-p", str(rig.broker.port), "-u", rig.gateway_user,
            "-P", rig.gateway_password, "-i", "bench-mosquitto-sub", "-c", "-q", "1",
            "-C", str(count), "-F", "%U"]
    for t, _ in TOPICS:
        argv += ["-t", t]
    before = _children_cpu()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True)
    cpu = _children_cpu() - before  # the whole process, start-up included
    stamps = [float(x) for x in out.stdout.split()]
    if len(stamps) != count:
        raise BenchError(f"mosquitto_sub printed {len(stamps)} of {count} messages")
    return stamps[0], stamps[-1], cpu


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def drain_paho(rig: Rig, count: int, timeout: float) -> Drained:
    c = _paho(rig, "bench-paho")
    times: list[tuple[float, float]] = []  # wall time, CPU time of paho's thread
    c.on_message = lambda *a: times.append((time.time(), time.thread_time()))
    c.connect(rig.broker.host, rig.broker.port)
    c.loop_start()
    try:
        wait_until(lambda: len(times) >= count, timeout, f"paho to receive {count}")
    finally:
        c.disconnect()
        c.loop_stop()
    (first, cpu0), (last, cpu1) = times[0], times[count - 1]
    return first, last, cpu1 - cpu0


class GatewayConsumer:
    """The real `homeguard gateway`; handled = stored + verified telemetry."""

    def __init__(self, rig: Rig, registry: Path, name: str, shed: list[int],
                 reader: str = "paho", extra: str = "") -> None:
        self.gw = rig.gateway(name, registry, reader=reader, extra=extra)
        self.shed = shed  # telemetry the gateway shed, per drain (0 unless overloaded)

    def prime(self) -> None:
        self.gw.start()  # the first start creates the persistent session
        self.gw.proc.stop()

    def progress(self, m: dict[str, float]) -> tuple[int, int]:
        """(messages it has begun with, messages it is done with) from /metrics."""
        n = self.gw.handled(m) + self.gw.shed(m)
        return n, n

    def drain(self, count: int, timeout: float) -> Drained:
        """Polls /metrics every 20 ms at the ends of the drain (where the
        times are read) and less often in between, so that the polling
        itself costs the gateway little CPU."""
        self.gw.proc.start()
        first = last = cpu0 = cpu1 = 0.0
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and not last:
                m = self.gw.metrics()
                (begun, n), now = self.progress(m), time.time()
                if begun and not first:
                    first, cpu0 = now, self._cpu()
                if n >= count:
                    last, cpu1 = now, self._cpu()
                    self.shed.append(self.gw.shed(m))
                time.sleep(_poll_s(first, now, n, count))
            if not last:
                raise BenchError(f"the gateway did {self.progress(self.gw.metrics())} of "
                                 f"{count} in {timeout:.0f}s:\n{self.gw.proc.logs()}")
        finally:
            self.gw.proc.stop()
        return first, last, cpu1 - cpu0

    def _cpu(self) -> float:
        t = psutil.Process(self.gw.proc.pid).cpu_times()
        return t.user + t.system


class TimeseriesConsumer(GatewayConsumer):
    """The gateway (the tuned reader, as issue 17's figures were measured;
    its own cost is gateway_tuned's) with its time-series sink writing to
    VictoriaMetrics: done
    with the stream when every telemetry point is written (the sink's
    hg_gateway_delivered_total, which counts only points VictoriaMetrics
    answered 204 for; the run checks the samples there at the end)."""

    def __init__(self, rig: Rig, registry: Path, name: str, shed: list[int],
                 victoria: VictoriaMetrics, messages: int, points: int) -> None:
        super().__init__(rig, registry, name, shed, reader="tuned",
                         extra=f'\n[timeseries]\nurl = "{victoria.influx_url}"\n')
        self.messages = messages
        self.points = points  # telemetry points in the stream

    def progress(self, m: dict[str, float]) -> tuple[int, int]:
        begun = self.gw.handled(m) + self.gw.shed(m)
        if not self.points:
            return begun, begun
        # points written, shed (an overloaded lane; the table says so) or acked
        # again as duplicates (their first copy's point is the one written)
        done = (m.get('hg_gateway_delivered_total{sink="timeseries"}', 0.0) + self.gw.shed(m)
                + m.get("hg_gateway_duplicates_total", 0.0))
        return begun, int(done * self.messages // self.points)  # in messages


def telemetry_points(stream: list[wire.Device], alarm_every: int, first_seq: int) -> int:
    """Telemetry messages in a fleet.mixed() stream (every alarm_every-th seq is an alarm)."""
    total = 0
    for d in stream:
        lo, hi = first_seq, first_seq + len(d.packets)
        total += hi - lo - ((hi // alarm_every - lo // alarm_every) if alarm_every else 0)
    return total


def _victoria(tmp: Path) -> VictoriaMetrics | None:
    binary = shutil.which("victoria-metrics")
    if binary is None:
        return None
    # no de-dup: every sample written is kept, so the count at the end is exact
    return VictoriaMetrics(binary, tmp / "victoria", dedup=False)


def samples_in(victoria: VictoriaMetrics, series: str = "telemetry_v_dv") -> int:
    """Samples of one field of the bench's telemetry (one per point written)."""
    return sum(len(s["values"]) for s in victoria.export(series))


def _poll_s(first: float, now: float, n: int, count: int) -> float:
    """20 ms before the first message and when the last is near, else up to 0.25 s."""
    if not first or not n:
        return 0.02
    left_s = (count - n) / (n / max(now - first, 1e-3))
    return min(0.25, max(0.02, left_s / 2))


def run(tmp: Path, messages: int, devices: int, alarm_every: int, timeout: float,
        rounds: int = 3) -> dict:
    """Each round: one fresh stream (new seqs) drained by every consumer in
    turn, a fresh gateway store; figures are medians over the rounds."""
    rig = Rig(tmp)
    victoria = _victoria(tmp)
    try:
        ids = fleet.ids("hg-t", devices)
        password = add_accounts(rig.broker, ids)
        registry = tmp / "devices.json"
        write_registry(registry, ids, fleet.KEY)
        rig.start_centre()
        if victoria is not None:
            victoria.start()
        # "gateway": stock paho (the default); "gateway_tuned": [mqtt] reader = "tuned";
        # "gateway_ts": gateway_tuned writing its points to VictoriaMetrics
        rates: dict[str, list[float]] = {"mosquitto_sub": [], "paho": [], "gateway": [],
                                         "gateway_tuned": []}
        if victoria is not None:
            rates["gateway_ts"] = []
        cpu: dict[str, list[float]] = {k: [] for k in rates}
        per_device = -(-messages // devices)
        shed: list[int] = []
        points = 0
        for r in range(rounds):
            stream = fleet.mixed(ids, password, messages, alarm_every, r * per_device)
            gateway = GatewayConsumer(rig, registry, f"gw-bench-{r + 1}", shed)
            tuned = GatewayConsumer(rig, registry, f"gw-bench-tuned-{r + 1}", shed, "tuned")
            consumers: dict[str, tuple[Callable[[], None], Callable[[], Drained]]] = {
                "mosquitto_sub": (lambda: prime(rig, "bench-mosquitto-sub"),
                                  lambda: drain_mosquitto_sub(rig, messages, timeout)),
                "paho": (lambda: prime(rig, "bench-paho"),
                         lambda: drain_paho(rig, messages, timeout)),
                "gateway": (gateway.prime, partial(gateway.drain, messages, timeout)),
                "gateway_tuned": (tuned.prime, partial(tuned.drain, messages, timeout)),
            }
            if victoria is not None:
                n = telemetry_points(stream, alarm_every, r * per_device)
                ts = TimeseriesConsumer(rig, registry, f"gw-bench-ts-{r + 1}", shed,
                                        victoria, messages, n)
                consumers["gateway_ts"] = (ts.prime, partial(ts.drain, messages, timeout))
                points += n
            for name, (do_prime, drain) in consumers.items():
                # every consumer logs in as the gateway: the last one's sessions
                # would go on queueing this flood beside the one being measured
                forget_sessions(rig.broker.host, rig.broker.port, rig.gateway_user,
                                rig.gateway_password)
                do_prime()
                flood(rig, stream)
                first, last, cpu_s = drain()
                rates[name].append((messages - 1) / max(last - first, 1e-6))
                cpu[name].append(cpu_s * 1e6 / messages)
        out = summarise(rates, cpu, messages) | {"gateway_shed_rounds": shed}
        if victoria is not None:
            out["timeseries_points"] = {"sent": points, "in_victoriametrics": samples_in(victoria)}
        return out
    finally:
        if victoria is not None:
            victoria.stop()
        rig.stop()


def summarise(rates: dict[str, list[float]], cpu: dict[str, list[float]],
              messages: int) -> dict:
    out: dict = {name: {"messages": messages, "msg_per_s": statistics.median(v),
                        "min": min(v), "max": max(v), "rounds": v,
                        "cpu_us_per_msg": statistics.median(cpu[name]),
                        "cpu_us_per_msg_rounds": cpu[name]}
                 for name, v in rates.items()}
    for gw, other in RATIOS:
        if gw in rates and other in rates:
            per_round = [g / o for g, o in zip(rates[gw], rates[other], strict=True)]
            out[f"ratio_{gw}_{other}"] = statistics.median(per_round)
            out[f"ratio_{gw}_{other}_rounds"] = per_round
    return out


def table(results: dict) -> None:
    rows = [[name, r["messages"], len(r["rounds"]), r["msg_per_s"], r["min"], r["max"],
             r["cpu_us_per_msg"]]
            for name, r in results.items() if isinstance(r, dict) and "rounds" in r]
    report.show("throughput: draining the same queued stream, msg/s",
                ["consumer", "messages", "rounds", "median", "min", "max", "CPU us/msg"], rows)
    report.show("ratios, median of the rounds (goal: gateway/paho >= 0.5, gateway_ts/paho "
                ">= 0.7; gateway = stock paho, the default; gateway_tuned = \\[mqtt] reader = "
                "\"tuned\"; gateway_ts = gateway_tuned writing its points to VictoriaMetrics)",
                ["ratio", "median", "rounds"], [
        [f"{gw} / {other}", results[f"ratio_{gw}_{other}"],
         " ".join(f"{x:.2f}" for x in results[f"ratio_{gw}_{other}_rounds"])]
        for gw, other in RATIOS if f"ratio_{gw}_{other}" in results])
    points = results.get("timeseries_points")
    if points is None:
        report.note("no gateway_ts row: victoria-metrics is not installed (Debian: "
                    "victoria-metrics)")
    elif points["in_victoriametrics"] != points["sent"]:
        report.note(f"[red]VictoriaMetrics holds {points['in_victoriametrics']} of the "
                    f"{points['sent']} telemetry points sent[/red]")
    if any(results.get("gateway_shed_rounds", [])):
        report.note(f"[red]the gateway shed telemetry (overloaded): "
                             f"{results['gateway_shed_rounds']} per round; its rate counts "
                             f"them as handled[/red]")
