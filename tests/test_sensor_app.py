"""The electrical-safety sensor app.

1. tests/firmware/sensor_check.py (RMS on synthetic waveforms with harmonics
   and noise, leakage ramp, 94 %/106 % holds, restore, faults, NTC, stats)
   prints the same lines under CPython and the npm MicroPython, and those
   lines say what issue 3 asks: ±5 % accuracy, alarm within 30 s of the set
   point being exceeded, none at 94 %.
2. The whole sensor (SensorApp + hg.device + a simulated hal whose ADC
   produces mains waveforms) under CPython against the real Mosquitto, the
   test playing the gateway: residual current crossing the set point ->
   alarm within the time bound, restore after; a broken channel -> a fault
   event; min/mean/max telemetry."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness.proc import wait_until
from tests.test_firmware_store import DEV, Gateway, gateway, write_config  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
CHECK = ROOT / "tests/firmware/sensor_check.py"
PROFILE = ROOT / "hardware/boards/sensor-esp32.json"
sys.path.insert(0, str(FIRMWARE))  # `apps.sensor` as on the board

from apps.sensor.app import SensorApp  # noqa: E402

from hg.device import Device  # noqa: E402
from hg.simhal import SimHAL  # noqa: E402


def lines(out: str) -> dict[str, list[str]]:
    return {" ".join(ln.split()[:2]) if ln.startswith(("rms", "hold")) else ln.split()[0]:
            ln.split() for ln in out.splitlines()}


@pytest.fixture(scope="module")
def cpython_out() -> str:
    return subprocess.run([sys.executable, str(CHECK)], capture_output=True, text=True,
                          check=True, env={"PYTHONPATH": str(FIRMWARE)}).stdout


def test_measurement_and_detection_meet_the_standard(cpython_out: str) -> None:
    got = lines(cpython_out)
    for ma in (30, 150, 285, 300, 315, 500, 1000):
        measured = int(got[f"rms {ma}"][2])
        assert abs(measured - ma) <= 0.05 * 300, (ma, measured)  # ±5 % of the set point
    ramp = got["ramp"]
    crossed, alarm = int(ramp[2]), int(ramp[4])
    assert 0 <= alarm - crossed <= 30  # GB 14287.2: within 30 s of exceeding the set point
    assert got["hold 94"][3] == "None"  # 94 % of set: never
    assert got["hold 106"][3] != "None" and int(got["hold 106"][3]) <= 30
    assert got["restore"][1:] == ["alarm@1", "restore@6"]
    assert got["rail"][1:] == ["open", "short", "None"]
    assert got["ntc"][1:] == ["250", "528", "open", "short"]


def test_micropython_prints_the_same(micropython, cpython_out: str) -> None:
    out = micropython.run(CHECK.read_text(), path=["/"], timeout=120)
    assert out == cpython_out


# --- the whole sensor against the real Mosquitto ------------------------------

class WaveHAL(SimHAL):
    """SimHAL whose ADC gives mains waveforms for values the test sets."""

    def __init__(self) -> None:
        super().__init__(reset_cause="power_on")
        # channel -> value in its unit (mA, mV; temp_ntc: ADC counts)
        self.values = {"current": 5000, "voltage": 230000, "residual": 40, "temp_ntc": 2048}
        self.broken: set[str] = set()
        self.profile = __import__("json").loads(PROFILE.read_text())

    def adc_block(self, name: str, n: int, period_us: int) -> list[int]:
        if name in self.broken:
            return [0] * n
        if name == "temp_ntc":
            return [self.values[name]] * n
        spec = self.profile["analog"][name]
        amp = self.values[name] * spec["gain_den"] / spec["gain_num"] * math.sqrt(2)
        return [2048 + int(amp * math.sin(2 * math.pi * 50 * k * period_us / 1e6))
                for k in range(n)]


def boot_sensor(tmp: Path, broker) -> tuple[Device, WaveHAL, SensorApp]:  # noqa: ANN001
    write_config(tmp, broker, type="sensor", board="sensor-esp32", telemetry_s=2)
    hal = WaveHAL()
    from hg import config
    cfg, errors = config.load(str(tmp / "config.json"))
    assert errors == []
    app = SensorApp(cfg, hal, hal.profile)
    dev = Device(cfg, hal, app, str(tmp), resend_ms=2000)
    app.attach(dev)
    return dev, hal, app


def run(dev: Device, hal: WaveHAL, app: SensorApp, cond, what: str,  # noqa: ANN001
        timeout: float = 40.0) -> None:
    def step() -> bool:
        now = hal.ticks_ms()
        dev.poll(now)
        app.step(now)
        return bool(cond())
    wait_until(step, timeout, what, interval=0.01)


def test_residual_current_alarm_within_the_bound_and_restore(
        tmp_path: Path, mosquitto, gateway: Gateway) -> None:  # noqa: F811
    dev, hal, app = boot_sensor(tmp_path, mosquitto)
    run(dev, hal, app, lambda: gateway.msgs("telemetry"), "the first telemetry")
    tele = gateway.msgs("telemetry")[0]["data"]
    assert abs(tele["r_avg"] - 40) <= 15 and abs(tele["v_avg"] - 230000) <= 11500
    assert {"i_min", "i_avg", "i_max", "t_avg"} <= set(tele)
    assert gateway.msgs("alarm") == []
    hal.values["residual"] = 330  # 110 % of the 300 mA set point
    t0 = time.monotonic()
    run(dev, hal, app, lambda: gateway.msgs("alarm", "residual_current"), "the alarm")
    assert time.monotonic() - t0 <= 30
    alarm = gateway.msgs("alarm", "residual_current")[0]
    assert alarm["data"]["set"] == 300 and abs(alarm["data"]["v"] - 330) <= 15
    gateway.send("ack", "stored", {"ref": alarm["seq"]})
    hal.values["residual"] = 100
    run(dev, hal, app, lambda: gateway.msgs("restore", "residual_current"), "the restore")
    assert len(gateway.msgs("alarm", "residual_current")) == 1  # latched once, not repeated
    dev.close()


def test_broken_channel_is_a_fault_event_not_an_alarm(
        tmp_path: Path, mosquitto, gateway: Gateway) -> None:  # noqa: F811
    dev, hal, app = boot_sensor(tmp_path, mosquitto)
    hal.broken.add("residual")
    run(dev, hal, app, lambda: gateway.msgs("fault", "sensor"), "the fault event")
    fault = gateway.msgs("fault", "sensor")[0]
    assert fault["data"] == {"reason": "residual open", "ch": "residual"}
    time.sleep(1.5)
    run(dev, hal, app, lambda: True, "one more round")
    assert gateway.msgs("alarm") == [] and len(gateway.msgs("fault", "sensor")) == 1
    dev.close()
