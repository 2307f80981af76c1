"""`homeguard bench throughput`: the gateway's full pipeline against a bare
paho subscriber and `mosquitto_sub`, draining the same queued stream.

For each consumer in turn: its persistent session is created (subscribed,
QoS 1, then disconnected), the flood publisher puts the same pre-encoded
messages into the broker's queue for it (every PUBACK received), and then
the consumer connects and drains the queue. The rate is messages from the
first to the last one handled, so start-up costs are left out and the
publisher cannot be the bottleneck."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.bench import fleet, report, wire
from gateway.bench.rig import BenchError, Rig, add_accounts, wait_until, write_registry

TOPICS = [("hg/v1/+/telemetry", 1), ("hg/v1/+/event", 1)]


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


def drain_mosquitto_sub(rig: Rig, count: int, timeout: float) -> tuple[float, float]:
    binary = shutil.which("mosquitto_sub")
    if binary is None:
        raise BenchError("mosquitto_sub is not installed (Debian: mosquitto-clients)")
    argv = [binary, "-h", rig.broker.host, "-p", str(rig.broker.port), "-u", rig.gateway_user,
            "-P", rig.gateway_password, "-i", "bench-mosquitto-sub", "-c", "-q", "1",
            "-C", str(count), "-F", "%U"]
    for t, _ in TOPICS:
        argv += ["-t", t]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True)
    stamps = [float(x) for x in out.stdout.split()]
    if len(stamps) != count:
        raise BenchError(f"mosquitto_sub printed {len(stamps)} of {count} messages")
    return stamps[0], stamps[-1]


def drain_paho(rig: Rig, count: int, timeout: float) -> tuple[float, float]:
    c = _paho(rig, "bench-paho")
    times: list[float] = []
    c.on_message = lambda *a: times.append(time.time())
    c.connect(rig.broker.host, rig.broker.port)
    c.loop_start()
    try:
        wait_until(lambda: len(times) >= count, timeout, f"paho to receive {count}")
    finally:
        c.disconnect()
        c.loop_stop()
    return times[0], times[count - 1]


class GatewayConsumer:
    """The real `homeguard gateway`; handled = stored + verified telemetry."""

    def __init__(self, rig: Rig, registry: Path) -> None:
        self.gw = rig.gateway("gw-bench", registry)

    def prime(self) -> None:
        self.gw.start()  # the first start creates the persistent session
        self.gw.proc.stop()

    def drain(self, count: int, timeout: float) -> tuple[float, float]:
        self.gw.proc.start()
        first = last = 0.0
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and not last:
                n, now = self.gw.handled(), time.time()
                if n and not first:
                    first = now
                if n >= count:
                    last = now
                time.sleep(0.02)
            if not last:
                raise BenchError(f"the gateway handled {self.gw.handled()} of {count} "
                                 f"in {timeout:.0f}s:\n{self.gw.proc.logs()}")
        finally:
            self.gw.proc.stop()
        return first, last


def run(tmp: Path, messages: int, devices: int, alarm_every: int,
        timeout: float) -> dict:
    rig = Rig(tmp)
    try:
        ids = fleet.ids("hg-t", devices)
        password = add_accounts(rig.broker, ids)
        registry = tmp / "devices.json"
        write_registry(registry, ids, fleet.KEY)
        rig.start_centre()
        stream = fleet.mixed(ids, password, messages, alarm_every)
        gateway = GatewayConsumer(rig, registry)
        consumers = {
            "mosquitto_sub": (lambda: prime(rig, "bench-mosquitto-sub"),
                              lambda: drain_mosquitto_sub(rig, messages, timeout)),
            "paho": (lambda: prime(rig, "bench-paho"),
                     lambda: drain_paho(rig, messages, timeout)),
            "gateway": (gateway.prime, lambda: gateway.drain(messages, timeout)),
        }
        results: dict = {}
        for name, (do_prime, drain) in consumers.items():
            do_prime()
            flood_s = flood(rig, stream)
            first, last = drain()
            span = max(last - first, 1e-6)
            results[name] = {"messages": messages, "seconds": span,
                             "msg_per_s": (messages - 1) / span, "flood_s": flood_s}
        results["ratio_gateway_paho"] = (results["gateway"]["msg_per_s"]
                                         / results["paho"]["msg_per_s"])
        results["ratio_gateway_mosquitto_sub"] = (results["gateway"]["msg_per_s"]
                                                  / results["mosquitto_sub"]["msg_per_s"])
        return results
    finally:
        rig.stop()


def table(results: dict) -> None:
    rows = [[name, r["messages"], r["seconds"], r["msg_per_s"]]
            for name, r in results.items() if isinstance(r, dict)]
    report.show("throughput: draining the same queued stream",
                ["consumer", "messages", "seconds", "msg/s"], rows)
    report.show("ratios (goal: gateway/paho >= 0.5)", ["ratio", "value"], [
        ["gateway / paho", results["ratio_gateway_paho"]],
        ["gateway / mosquitto_sub", results["ratio_gateway_mosquitto_sub"]]])
