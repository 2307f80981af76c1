"""The household-guard alarm button app (issue 3, button part).

1. tests/firmware/button_check.py (debounce chain on bounce trains, hold,
   double press, cancel press, fire+medical test, tamper, low battery, the
   indicator timeline, ButtonApp with a fake hal/device) prints the same
   lines under CPython and the npm MicroPython, and those lines say what the
   issue asks.
2. The whole button (ButtonApp + hg.device + SimHAL) under CPython against
   the real Mosquitto, the test playing the gateway with signed acks: a held
   press -> alarm -> LED blink -> slow -> on -> off on `resolved`; a bounce
   shorter than the hold sends nothing; broker down during the press -> the
   alarm arrives after it returns; a long cancel press -> a cancel event.
3. One press through the real gateway and centre (the `stack` fixture): the
   alarm at the centre once, the LED steady on from the centre's `delivered`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
CHECK = ROOT / "tests/firmware/button_check.py"


def results(out: str) -> dict[str, object]:
    """label -> the printed value, for the lines shaped `label <literal>`."""
    got: dict[str, object] = {}
    for ln in out.splitlines():
        label, _, rest = ln.partition(" ")
        if not label.endswith(":"):
            got[label] = ast.literal_eval(rest)
    return got


@pytest.fixture(scope="module")
def cpython_out() -> str:
    return subprocess.run([sys.executable, str(CHECK)], capture_output=True, text=True,
                          check=True, env={"PYTHONPATH": str(FIRMWARE)}).stdout


def test_debounce_and_the_accidental_press_guard(cpython_out: str) -> None:
    r = results(cpython_out)
    assert r["debounce.train"] == [(141, 1), (635, 0)]  # bounces: one press, one release
    assert r["debounce.glitch"] == []  # a 25 ms spike is no press
    assert r["debounce.held_at_boot"] == [(30, 1)]  # the press that woke the board
    assert r["hold.short"] == []  # 1.4 s < the 1.5 s hold: nothing
    assert r["hold.long"] == [(1630, "alarm", "fire")]  # 30 ms settle + 1.5 s
    assert r["hold.latched"] == [(1630, "alarm", "fire"), ["fire"]]  # no second alarm
    # latched: a 4 s and a 1 s press do nothing, a 5 s press cancels
    assert r["cancel"] == [(1630, "alarm", "fire"), (14530, "cancel", "fire"), []]
    # holding on after the alarm is no cancel: the cancel press is a new press
    assert r["held.through"] == [(1630, "alarm", "security"), ["security"]]
    assert r["resolved"] == [[], (1530, "alarm", "medical")]  # re-armed by the centre
    # resolved while the button is held: that press raises nothing, the next does
    assert r["resolved.while_held"] == [(1630, "alarm", "fire"), (6530, "alarm", "fire")]
    assert r["double.single"] == [] and r["double.slow"] == []
    assert r["double.twice"] == [(630, "alarm", "fire")]
    assert r["double.hold"] == [(3030, "alarm", "medical")]  # the 2nd press held 1 s
    assert r["combo"] == [(2430, "test", "manual")]  # fire + medical for 2 s
    assert r["combo.short"] == [[]]  # no fire/medical alarm from a combination
    assert r["two.buttons"] == [(1630, "alarm", "fire"), (1730, "alarm", "security")]
    # two readings below 2600 mV -> once; re-armed above 2700 mV
    assert r["battery"] == [None, None, None, None, "alarm", None, None, "restore", None,
                            "alarm"]


def test_indicator_timeline(cpython_out: str) -> None:
    tl = results(cpython_out)["indicator"]
    assert isinstance(tl, list)
    failures = tl.pop()
    assert tl == [
        (0, "off", "off"),
        (1000, "blink", "off"),  # sending
        (2000, "slow", "off"),  # stored + delivered came together: each has its second
        (3000, "on", "off"),
        (6000, "off", "off"),  # resolved
        (7000, "blink", "off"),  # alarm 8, then test 9 on top of it
        (8000, "slow", "off"),  # the test stored
        (12500, "blink", "off"),  # the test done after 5 s: alarm 8 still sending
        (13500, "slow", "off"),  # alarm 8 was stored at 9 s
        (20000, "blink", "off"),  # cancel sending
        (21000, "off", "off"),  # cancel stored
        (30000, "blink", "off"),
        (90000, "blink", "failed"),  # no `stored` within 60 s
    ]
    assert failures == 1
    times = [t for t, _, _ in tl]
    assert all(b - a >= 1000 for a, b in zip(times[:-1], times[1:], strict=True))  # >= 1 s each


def test_the_app_with_a_fake_device(cpython_out: str) -> None:
    r = results(cpython_out)
    assert r["app.events"] == [
        (101, "alarm", "fire", []),  # the 0.9 s press sent nothing; the 2 s one did
        (102, "alarm", "tamper", []), (103, "restore", "tamper", []),
        (104, "alarm", "fire", []), (105, "cancel", "fire", [("ref", 104)]),
        (106, "alarm", "low_battery", [("low_mv", 2600), ("mv", 2500)]),  # retried
    ]
    assert r["app.outputs"] == [
        (0, "led", "off"), (0, "buzzer", "off"),
        (3530, "led", "blink"), (4530, "led", "slow"), (9000, "led", "on"),
        (61530, "buzzer", "failed"),  # security pressed with the outbox full
        (100000, "led", "off"), (100000, "buzzer", "off"),
        (120000, "buzzer", "failed"),  # low_battery refused too (retried at 180 s)
        (131530, "led", "blink"), (131530, "buzzer", "off"), (139000, "led", "off"),
    ]
    assert r["app.state"] == [[], 2, "alarm low_battery: outbox full of events", 1, []]
    assert r["profile.input"] == ["buttons.fire: no input btn_x on this board"]
    assert r["profile.type"] == ["buttons.gas: not one of fire, medical, security"]
    assert "button: not sent: alarm security: outbox full of events" in cpython_out


def test_micropython_prints_the_same(micropython, cpython_out: str) -> None:
    out = micropython.run(CHECK.read_text(), path=["/"], timeout=120)
    assert out == cpython_out


# --- the whole button against the real Mosquitto ------------------------------

import json  # noqa: E402
import time  # noqa: E402

from tests.harness.proc import wait_until  # noqa: E402
from tests.test_firmware_store import Gateway, gateway, write_config  # noqa: E402, F401

sys.path.insert(0, str(FIRMWARE))  # `apps.button` as on the board

from apps.button.app import ButtonApp  # noqa: E402

from hg import config  # noqa: E402
from hg.device import Device  # noqa: E402
from hg.simhal import SimHAL  # noqa: E402

PROFILE = json.loads((ROOT / "hardware/boards/button-c3.json").read_text())
HOLD_MS = 300


class ButtonHAL(SimHAL):
    """SimHAL that also notes when each LED pattern was asked for: the loop
    turn's `now`, the time the app decided on (a fresh clock read would add
    how long the turn had run so far, a few ms either way)."""

    def __init__(self) -> None:
        super().__init__(reset_cause="power_on")
        self.led_at: list[tuple[int, str]] = []
        self.turn_ms = 0  # `now` of the loop turn under way

    def led(self, pattern: str) -> None:
        super().led(pattern)
        self.led_at.append((self.turn_ms, pattern))


class Button:
    def __init__(self, root: Path, broker, write: bool = True) -> None:  # noqa: ANN001
        if write:
            write_config(root, broker, button={"hold_ms": HOLD_MS})
        cfg, errors = config.load(str(root / "config.json"))
        assert errors == []
        self.hal = ButtonHAL()
        self.app = ButtonApp(cfg, self.hal, PROFILE)
        self.dev = Device(cfg, self.hal, self.app, str(root), resend_ms=2000)
        self.app.attach(self.dev)

    def step(self) -> None:
        now = self.hal.turn_ms = self.hal.ticks_ms()
        self.dev.poll(now)
        self.app.step(now)

    def run(self, cond, what: str, timeout: float = 20.0) -> None:  # noqa: ANN001
        def once() -> bool:
            self.step()
            return bool(cond())
        wait_until(once, timeout, what, interval=0.01)

    def run_for(self, ms: int) -> None:
        end = self.hal.ticks_ms() + ms
        self.run(lambda: self.hal.ticks_ms() >= end, f"{ms} ms of the loop")

    def press(self, ms: int, pin: str = "btn_fire") -> None:
        """Hold the button `ms` (the loop keeps running), then let go."""
        self.hal.pins[pin] = 1
        self.run_for(ms)
        self.hal.pins[pin] = 0

    def led(self) -> str | None:
        return self.hal.leds[-1] if self.hal.leds else None


@pytest.fixture
def button(tmp_path: Path, mosquitto, gateway: Gateway):  # noqa: ANN201, F811
    b = Button(tmp_path, mosquitto)
    b.run(lambda: b.dev.link.connected and not b.dev.link.client.subscribing
          and gateway.msgs("heartbeat"), "online, subscribed, first heartbeat")
    yield b
    b.dev.close()


def test_held_press_alarm_and_the_indicator_until_resolved(
        button: Button, gateway: Gateway) -> None:  # noqa: F811
    b = button
    for _ in range(4):  # a bounce train, then held less than the hold: nothing
        b.press(5)
        b.run_for(5)
    b.press(HOLD_MS - 150)
    b.run_for(1000)
    assert gateway.msgs("alarm") == [] and b.app.sent == 0 and b.led() == "off"
    b.press(HOLD_MS + 200)
    b.run(lambda: gateway.msgs("alarm"), "the alarm")
    alarm = gateway.msgs("alarm")[0]
    assert (alarm["type"], b.led()) == ("fire", "blink")
    gateway.send("ack", "stored", {"ref": alarm["seq"]})
    gateway.send("ack", "delivered", {"ref": alarm["seq"]})
    b.run(lambda: b.led() == "on", "steady on (delivered)")
    gateway.send("ack", "acknowledged", {"ref": alarm["seq"]})
    b.run_for(300)
    assert b.app.guard.latched() == ["fire"]
    b.press(HOLD_MS + 200)  # latched: a second press raises nothing new
    gateway.send("ack", "resolved", {"ref": alarm["seq"]})
    b.run(lambda: b.led() == "off", "off on resolved")
    assert b.hal.leds == ["off", "blink", "slow", "on", "off"]
    times = [t for t, _ in b.hal.led_at[1:]]
    gaps = [b - a for a, b in zip(times[:-1], times[1:], strict=True)]
    assert min(gaps) >= 1000, b.hal.led_at  # each state shown >= 1 s
    assert b.app.guard.latched() == [] and len(gateway.msgs("alarm")) == 1
    assert b.hal.buzzes == ["off"] and not b.dev.obx.pending()


def test_broker_down_during_the_press_alarm_delivered_after(
        button: Button, mosquitto, gateway: Gateway) -> None:  # noqa: F811
    b = button
    mosquitto.stop()
    b.run(lambda: not b.dev.link.connected, "the device to notice")
    b.press(HOLD_MS + 200, "btn_medical")
    b.run(lambda: b.dev.obx.pending(), "the alarm in the flash outbox")
    assert b.led() == "blink" and gateway.msgs("alarm") == []
    mosquitto.start()
    b.run(lambda: gateway.msgs("alarm", "medical"), "the alarm after the broker returned")
    seq = gateway.msgs("alarm", "medical")[0]["seq"]
    assert b.dev.obx.pending() == [seq]
    gateway.send("ack", "stored", {"ref": seq})
    b.run(lambda: b.led() == "slow" and not b.dev.obx.pending(), "stored: slow blink")


def test_long_cancel_press_sends_a_cancel_event(button: Button, gateway: Gateway) -> None:  # noqa: F811,E501
    b = button
    b.press(HOLD_MS + 200, "btn_security")
    b.run(lambda: gateway.msgs("alarm", "security"), "the alarm")
    seq = gateway.msgs("alarm", "security")[0]["seq"]
    gateway.send("ack", "stored", {"ref": seq})
    b.run(lambda: b.led() == "slow", "stored")
    t0 = time.monotonic()
    b.hal.pins["btn_security"] = 1
    b.run(lambda: gateway.msgs("cancel"), "the cancel event", timeout=10)
    held = time.monotonic() - t0
    b.hal.pins["btn_security"] = 0
    assert 5.0 <= held < 6.5
    cancel = gateway.msgs("cancel")[0]
    assert (cancel["type"], cancel["data"]) == ("security", {"ref": seq})
    assert b.app.guard.latched() == [] and b.led() == "blink"  # the cancel is being sent
    gateway.send("ack", "stored", {"ref": cancel["seq"]})
    b.run(lambda: b.led() == "off", "off once the cancel is stored")
    assert len(gateway.msgs("alarm")) == 1


# --- one press through the real gateway and centre ----------------------------

from tests.harness.stack import BUTTON as STACK_BUTTON  # noqa: E402
from tests.harness.stack import Stack  # noqa: E402


def test_one_press_through_the_real_gateway_and_centre(tmp_path: Path, stack: Stack) -> None:
    root = tmp_path / "button"
    root.mkdir()
    (root / "config.json").write_text(json.dumps({
        "v": 1, "device_id": STACK_BUTTON, "type": "button", "board": "button-c3",
        "broker": {"host": stack.broker.host, "port": stack.broker.port, "tls": False,
                   "username": STACK_BUTTON, "password": stack.password},
        "key_hex": stack.key.hex(), "button": {"hold_ms": HOLD_MS}}))
    b = Button(root, stack.broker, write=False)
    try:
        b.run(lambda: b.dev.link.connected and not b.dev.link.client.subscribing, "online")
        b.press(HOLD_MS + 200, "btn_medical")
        b.run(lambda: [a for a in stack.alarms() if a["device"] == STACK_BUTTON],
              "the alarm at the centre")
        mine = [a for a in stack.alarms() if a["device"] == STACK_BUTTON]
        assert [(a["type"], a["seq"]) for a in mine] == [("medical", max(b.app.alarms))]
        b.run(lambda: b.led() == "on", "steady on: the centre has it")
        assert b.hal.leds == ["off", "blink", "slow", "on"] and not b.dev.obx.pending()
    finally:
        b.dev.close()
