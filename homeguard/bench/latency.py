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
            gap_s: float) -> list[dict[str, float]]:
    out = []
    for seq in range(first_seq, first_seq + count):
        press = time.time() * 1000
        wire = protocol.encode(fleet.KEY, BUTTON, seq, "alarm", "panic", 0, {}, int(press))
        button.publish(protocol.topic(BUTTON, "event"), wire, qos=1)
        seen, alarm = browser.wait(seq, 30)
        out.append({
            "press_to_gateway": alarm["gateway_time_ms"] - press,
            "gateway_to_centre": alarm["received_ms"] - alarm["gateway_time_ms"],
            "centre_to_browser": seen - alarm["received_ms"],
            "press_to_browser": seen - press,
        })
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


def run(tmp: Path, loads: list[int], count: int, gap_s: float, bg_devices: int) -> dict:
    rig = Rig(tmp)
    try:
        bg = fleet.ids("hg-bg", bg_devices)
        password = add_accounts(rig.broker, [BUTTON, *bg])
        registry = tmp / "devices.json"
        write_registry(registry, [BUTTON, *bg], fleet.KEY)
        rig.start_centre()
        gw = rig.gateway("gw-lat", registry).start()
        browser = Browser(rig.operator())
        browser.start()
        if not browser.connected.wait(10) or browser.error:
            raise BenchError(f"the SSE stream did not connect: {browser.error!r}")
        setup = Setup(rig, gw, _button(rig, password), browser, bg, password)
        results: dict = {}
        for n, rate in enumerate(loads):
            results[str(rate)] = _one_load(setup, rate, 1 + n * count, count, gap_s)
        setup.button.loop_stop()
        return results
    finally:
        rig.stop()


def _one_load(setup: Setup, rate: int, seq: int, count: int, gap_s: float) -> dict:
    proc = None
    if rate:
        broker = setup.rig.broker
        proc = background.start(setup.background, setup.password, broker.host, broker.port,
                                rate, seconds=count * (gap_s + 1.0) + 30)
        time.sleep(2.0)  # connections up, rate settled
    before, t0 = _telemetry(setup.gateway), time.monotonic()
    samples = presses(setup.button, setup.browser, seq, count, gap_s)
    achieved = (_telemetry(setup.gateway) - before) / (time.monotonic() - t0)
    if proc is not None:
        proc.terminate()
        proc.wait(10)
    stats = {s: report.percentiles([x[s] for x in samples]) for s in STAGES}
    return {"background_msg_per_s": rate, "background_achieved_msg_per_s": achieved,
            "stages_ms": stats}


def _telemetry(gw: Gateway) -> float:
    return gw.metrics().get("hg_gateway_telemetry_received_total", 0.0)


def table(results: dict) -> None:
    rows = []
    for rate, r in results.items():
        for stage in STAGES:
            s = r["stages_ms"][stage]
            rows.append([f"{rate} ({r['background_achieved_msg_per_s']:.0f})", stage,
                         s["p50"], s["p95"], s["p99"], s["max"]])
    report.show("alarm latency, ms (background msg/s asked (achieved))",
                ["background", "stage", "p50", "p95", "p99", "max"], rows)
