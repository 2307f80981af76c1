"""The battery button's wake cycle (apps/button/battery.py) under CPython
against the real Mosquitto, the test playing the gateway: a press that woke
the board is noted in RTC memory first, held past the guard, sent from the
flash outbox, and the board goes back to deep sleep (until the next
heartbeat, waking on any button or tamper) once the `stored` ack is in; with
the broker down the hard budget ends the wake, the board sleeps for the
retry interval, and the next wake resends the same seq."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from tests.test_firmware_store import Gateway, gateway, write_config  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "firmware"))

from apps.button.app import ButtonApp  # noqa: E402
from apps.button.battery import RECORD, WakeCycle  # noqa: E402

from hg import config  # noqa: E402
from hg.device import Device  # noqa: E402
from hg.simhal import SimHAL  # noqa: E402

PROFILE = json.loads((ROOT / "hardware/boards/button-c3.json").read_text())
HOLD_MS = 300


class BatteryHAL(SimHAL):
    """SimHAL with RTC memory and a deep sleep that only records the request."""

    def __init__(self, rtc: dict) -> None:
        super().__init__(reset_cause="deep_sleep")
        self.rtc = rtc
        self.slept: list[tuple[int, list[str]]] = []

    def rtc_memory(self, data: bytes | None = None) -> bytes:
        if data is not None:
            self.rtc["mem"] = data
        return self.rtc.get("mem", b"")

    def deep_sleep(self, ms: int, wake_inputs: list[str] = ()) -> None:  # type: ignore[assignment]
        self.slept.append((ms, list(wake_inputs)))


def wake(root: Path, rtc: dict, held_ms: int = 0, budget_ms: int = 8000,
         ack: Gateway | None = None, retry_ms: int = 300000) -> tuple[BatteryHAL, tuple, Device]:
    """One wake of the board, as after a deep-sleep reset; returns what it did."""
    cfg, errors = config.load(str(root / "config.json"))
    assert errors == []
    hal = BatteryHAL(rtc)
    app = ButtonApp(cfg, hal, PROFILE)
    dev = Device(cfg, hal, app, str(root), resend_ms=1000)
    app.attach(dev)
    cycle = WakeCycle(app, dev, hal, budget_ms=budget_ms, retry_ms=retry_ms)
    if held_ms:
        hal.pins["btn_fire"] = 1
        threading.Timer(held_ms / 1000, lambda: hal.pins.update(btn_fire=0)).start()
    cycle.record_wake()
    acked: set[int] = set()

    def play_gateway(now: int) -> None:
        if ack is None:
            return
        for m in ack.msgs("alarm"):
            if m["seq"] not in acked:
                acked.add(m["seq"])
                ack.send("ack", "stored", {"ref": m["seq"]})

    result = cycle.run(play_gateway)
    cycle.sleep(result[0])
    return hal, result, dev


def test_a_wake_by_a_press_sends_the_alarm_and_sleeps_again(
        tmp_path: Path, mosquitto, gateway: Gateway) -> None:  # noqa: F811
    write_config(tmp_path, mosquitto, button={"hold_ms": HOLD_MS}, heartbeat_s=3600)
    rtc: dict = {}
    hal, (ms, why), dev = wake(tmp_path, rtc, held_ms=HOLD_MS + 400, ack=gateway)
    assert rtc["mem"] == (RECORD + ":btn_fire").encode()  # noted before anything slow
    alarms = gateway.msgs("alarm", "fire")
    assert len(alarms) == 1
    assert why == "done" and ms == 3600 * 1000 and not dev.obx.pending()
    assert hal.slept == [(3600000, ["btn_fire", "btn_medical", "btn_security", "tamper"])]
    assert gateway.msgs("heartbeat")  # every wake reports in


def test_a_press_too_short_sends_nothing(tmp_path: Path, mosquitto,
                                         gateway: Gateway) -> None:  # noqa: F811
    write_config(tmp_path, mosquitto, button={"hold_ms": HOLD_MS}, heartbeat_s=3600)
    hal, (ms, why), dev = wake(tmp_path, {}, held_ms=100, ack=gateway)
    assert why == "done" and gateway.msgs("alarm") == []


def test_broker_down_the_budget_ends_the_wake_and_the_next_wake_resends(
        tmp_path: Path, mosquitto, gateway: Gateway) -> None:  # noqa: F811
    write_config(tmp_path, mosquitto, button={"hold_ms": HOLD_MS}, heartbeat_s=3600)
    mosquitto.stop()
    try:
        hal, (ms, why), dev = wake(tmp_path, {}, held_ms=HOLD_MS + 400, budget_ms=3000,
                                   retry_ms=60000)
        assert why == "budget" and ms == 60000  # an alarm is still pending: retry soon
        pending = [s for s in dev.obx.pending() if dev.obx.kind(s) == "alarm"]
        assert len(pending) == 1
    finally:
        mosquitto.start()
    gateway.ready.wait(10)
    # the timer wake: no press, the pending alarm goes out with its seq
    hal2, (ms2, why2), dev2 = wake(tmp_path, {}, ack=gateway, budget_ms=15000)
    assert [m["seq"] for m in gateway.msgs("alarm", "fire")] == pending
    assert why2 == "done" and not dev2.obx.pending()
