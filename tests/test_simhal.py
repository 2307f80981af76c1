"""The simulated hardware layer (hg.simhal) is MicroPython: tests/firmware/
simhal_check.py prints the same lines under CPython and the npm MicroPython
(its clock, the wall clock, the simulated ADC read back by the sensor app,
and the button app with hg.device on it: a press held on the pin goes to the
flash outbox and the LED shows "sending" while the network is down)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "tests/firmware/simhal_check.py"
BOARDS = ROOT / "hardware/boards"
PROFILES = ", ".join(f"json.loads({(BOARDS / f'{b}.json').read_text()!r})"
                     for b in ("button-c3", "sensor-esp32"))


def rows(out: str) -> dict[str, dict]:
    # the firmware may also print (a link error, once): only the check lines count
    got = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {r.pop("check"): r for r in got}


@pytest.fixture(scope="module")
def cpython_out(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("simhal") / "flash"
    code = f"import json, simhal_check\nsimhal_check.main({str(root)!r}, {PROFILES})\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={"PYTHONPATH": f"{ROOT / 'firmware'}:{CHECK.parent}"},
                          timeout=60).stdout


def test_simhal_values(cpython_out: str) -> None:
    r = rows(cpython_out)
    assert r["clock"] == {"ints": True, "monotonic": True, "wall_after_2026": True}
    assert r["hal_clock"] == {"at_boot": 0, "later": 250, "offset_applied": True,
                              "unsynced": None}
    want = {"current": 5000, "voltage": 230000, "residual": 330, "temp_ntc": 250}
    for name, value in r["adc"]["read"].items():
        assert abs(value - want[name]) <= 0.01 * want[name], (name, value)
    assert r["adc"]["open"] == "open"
    button = r["button"]
    assert button["errors"] == [] and button["events"] == ["alarm"]
    assert button["leds"][-1] == "blink"  # the app's indicator: sending
    assert button["connect_failed"] and "no network" in button["last_error"]
    assert button["feeds"]


def test_micropython_prints_the_same(micropython, cpython_out: str) -> None:  # noqa: ANN001
    got = micropython.run(f"import json, simhal_check\nsimhal_check.main('/flash', {PROFILES})\n",
                          files={"/t/simhal_check.py": CHECK.read_text()}, path=["/", "/t"],
                          timeout=120)
    assert rows(got) == rows(cpython_out)
