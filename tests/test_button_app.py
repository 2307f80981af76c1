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
   alarm arrives after it returns; a long cancel press -> a cancel event."""

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
