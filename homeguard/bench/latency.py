"""`homeguard bench latency`: alarm press -> gateway stored -> centre received
-> browser-side SSE event, under background telemetry.

A button device (paho, its own account) presses an alarm with its clock's
time in `ts`; the gateway stamps `gateway_time_ms`, the centre `received_ms`;
an SSE client streaming /api/v1/stream (what the operator's browser does)
stamps the arrival. One press at a time, the next after the previous one
arrived. All clocks are this machine's."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hg import protocol
from homeguard.bench import background, fleet, report
from homeguard.bench.rig import BenchError, Gateway, Rig, add_accounts, write_registry

BUTTON = "hg-b-lat-0001"
STAGES = ("press_to_gateway", "gateway_to_centre", "centre_to_browser", "press_to_browser")


class Browser(threading.Thread):
    """An SSE client on /api/v1/stream: arrival time (ms) of each alarm by seq."""

    def __init__(self, client: httpx.Client) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.arrived: dict[int, tuple[float, dict]] = {}
        self.connected = threading.Event()
        self.error: Exception | None = None
        self.cond = threading.Condition()

    def run(self) -> None:
        try:
            self._listen()
        except httpx.HTTPError as exc:
            self.error = exc  # the centre stopped (the end of the run, or a failure)
            self.connected.set()

    def _listen(self) -> None:
        with self.client.stream("GET", "/api/v1/stream", timeout=None) as resp:
            resp.raise_for_status()
            name = ""
            for line in resp.iter_lines():
                if line.startswith(": connected"):
                    self.connected.set()
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name == "alarm":
                    now = time.time() * 1000
                    alarm = json.loads(line[6:])
                    if alarm["device"] == BUTTON:
                        with self.cond:
                            self.arrived[alarm["seq"]] = (now, alarm)
                            self.cond.notify_all()

    def wait(self, seq: int, timeout: float) -> tuple[float, dict]:
        with self.cond:
            if not self.cond.wait_for(lambda: seq in self.arrived, timeout):
                raise BenchError(f"alarm seq {seq} did not reach the SSE stream in {timeout}s")
            return self.arrived[seq]


def _button(rig: Rig, password: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=BUTTON)
    c.username_pw_set(BUTTON, password)
    c.connect(rig.broker.host, rig.broker.port)
    c.loop_start()
    return c


def presses(button: mqtt.Client, browser: Browser, first_seq: int, count: int,
            gap_s: float, until: float = 0.0) -> list[dict[str, float]]:
    """`count` presses `gap_s` apart, and more until time.monotonic() > until."""
    out = []
    seq = first_seq
    while seq < first_seq + count or time.monotonic() < until:
        press = time.time() * 1000
        wire = protocol.encode(fleet.KEY, BUTTON, seq, "alarm", "panic", 0, {}, int(press))
        button.publish(protocol.topic(BUTTON, "event"), wire, qos=1)
        seen, alarm = browser.wait(seq, 60)
        out.append({
            "press_to_gateway": alarm["gateway_time_ms"] - press,
            "gateway_to_centre": alarm["received_ms"] - alarm["gateway_time_ms"],
            "centre_to_browser": seen - alarm["received_ms"],
            "press_to_browser": seen - press,
        })
        seq += 1
        time.sleep(gap_s)
    return out


@dataclass
class Setup:
    """Everything one latency run keeps up across its background rates."""

    rig: Rig
    gateway: Gateway
    button: mqtt.Client
    browser: Browser
    background: list[str]
    password: str
    next_seq: int = 1  # the button's next seq
    bg_seq: int = 0  # the background devices' seqs so far (each run starts above)
    capacity: float = 0.0  # telemetry msg/s the gateway stores when saturated


def run(tmp: Path, loads: list[str], count: int, gap_s: float, bg_devices: int,
        duration_s: float = 0.0) -> dict:
    """One row per load: msg/s, or `<k>x` for k times the gateway's capacity
    (measured first: telemetry stored per second while offered more than it takes)."""
    rig = Rig(tmp)
    try:
        bg = fleet.ids("hg-bg", bg_devices)
        password = add_accounts(rig.broker, [BUTTON, *bg])
        registry = tmp / "devices.json"
        write_registry(registry, [BUTTON, *bg], fleet.KEY)
        rig.flood_control = False
        rig.start_centre()
        gw = rig.gateway("gw-lat", registry).start()
        browser = Browser(rig.operator())
        browser.start()
        if not browser.connected.wait(10) or browser.error:
            raise BenchError(f"the SSE stream did not connect: {browser.error!r}")
        setup = Setup(rig, gw, _button(rig, password), browser, bg, password)
        results: dict = {}
        if any(load.endswith("x") for load in loads):
            results["capacity"] = _capacity(setup)
        for load in loads:
            rate = (round(float(load[:-1]) * setup.capacity) if load.endswith("x")
                    else int(load))
            results[load] = _one_load(setup, rate, count, gap_s, duration_s if rate else 0)
        setup.button.loop_stop()
        return results
    finally:
        rig.stop()


CAPACITY_S = 10.0  # publishing far more than the gateway takes fills its telemetry queue
SATURATE = 40000  # msg/s offered for it
DRAIN_S = 8.0  # then the stored rate while it drains that queue with no publisher running


def _capacity(setup: Setup) -> dict:
    """The gateway's capacity: telemetry stored per second while it drains a
    queue the broker holds for it, with no publisher competing for the CPU."""
    bg = _background(setup, SATURATE, CAPACITY_S)
    try:
        offered = bg.finish(timeout=CAPACITY_S + 120)
    finally:
        bg.stop()
    m0, t0 = setup.gateway.metrics(), time.monotonic()
    time.sleep(DRAIN_S)
    m1, t1 = setup.gateway.metrics(), time.monotonic()
    setup.capacity = (_stored(m1) - _stored(m0)) / (t1 - t0)
    _settle(setup.gateway)
    return {"stored_msg_per_s": setup.capacity, "offered_msg_per_s": offered}


def _background(setup: Setup, rate: int, seconds: float) -> background.Background:
    broker = setup.rig.broker
    per_device = int(rate / len(setup.background) * seconds) + 1
    first, setup.bg_seq = setup.bg_seq, setup.bg_seq + per_device + 1
    return background.start(setup.background, setup.password, broker.host, broker.port,
                            rate, seconds, first)


def _settle(gw: Gateway, timeout: float = 600) -> None:
    """Wait until the gateway has taken what the broker queued for it."""
    deadline, last = time.monotonic() + timeout, -1.0
    while time.monotonic() < deadline:
        now = _received(gw.metrics())
        if now == last:
            return
        last = now
        time.sleep(2.0)


def _one_load(setup: Setup, rate: int, count: int, gap_s: float, duration_s: float) -> dict:
    bg = None
    seconds = max(duration_s, count * (gap_s + 0.05)) + 5
    if rate:
        bg = _background(setup, rate, seconds)
        time.sleep(2.0)  # connections up, rate settled
    m0, t0 = setup.gateway.metrics(), time.monotonic()
    samples = presses(setup.button, setup.browser, setup.next_seq, count, gap_s,
                      t0 + duration_s)
    setup.next_seq += len(samples)
    m1, t1 = setup.gateway.metrics(), time.monotonic()
    offered = 0.0
    if bg is not None:
        try:
            offered = bg.finish(timeout=seconds + 120)
        finally:
            bg.stop()
        _settle(setup.gateway)
    stats = {s: report.percentiles([x[s] for x in samples]) for s in STAGES}
    return {"background_msg_per_s": rate, "background_achieved_msg_per_s": offered,
            "gateway_took_msg_per_s": (_received(m1) - _received(m0)) / (t1 - t0),
            "gateway_stored_msg_per_s": (_stored(m1) - _stored(m0)) / (t1 - t0),
            "shed": setup.gateway.shed(m1) - setup.gateway.shed(m0),
            "seconds": t1 - t0, "presses": len(samples), "stages_ms": stats}


def _received(m: dict[str, float]) -> float:
    return m.get('hg_gateway_received_total{leaf="telemetry"}', 0.0)


def _stored(m: dict[str, float]) -> float:
    return m.get('hg_gateway_persisted_total{kind="telemetry"}', 0.0)


def table(results: dict) -> None:
    rows = []
    cap = results.get("capacity")
    for load, r in results.items():
        if load == "capacity":
            continue
        for stage in STAGES:
            s = r["stages_ms"][stage]
            rows.append([f"{load}: {r['background_msg_per_s']} "
                         f"({r['background_achieved_msg_per_s']:.0f})",
                         f"{r['gateway_stored_msg_per_s']:.0f}", r["shed"], r["presses"],
                         stage, s["p50"], s["p95"], s["p99"], s["max"]])
    title = "alarm latency, ms (background msg/s asked (achieved at the broker))"
    if cap:
        title += (f"; gateway capacity {cap['stored_msg_per_s']:.0f} telemetry msg/s stored "
                  f"(offered {cap['offered_msg_per_s']:.0f})")
    report.show(title, ["background", "gw stored/s", "shed", "presses", "stage", "p50", "p95",
                        "p99", "max"], rows)
