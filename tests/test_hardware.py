"""hardware/: board profiles, wiring diagrams, BOMs and the two scripts."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

HW = Path(__file__).resolve().parent.parent / "hardware"
PROFILES = sorted((HW / "boards").glob("*.json"))
sys.path.insert(0, str(HW))

import calibrate  # noqa: E402
import power_budget  # noqa: E402

ESP32_ADC1 = {32, 33, 34, 35, 36, 37, 38, 39}
C3_WAKE = {0, 1, 2, 3, 4, 5}
C3_RESERVED = {2, 8, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21}
ESP32_RESERVED = {0, 2, 5, 6, 7, 8, 9, 10, 11, 12, 15}
REQUIRED = {
    "button-c3": {"btn_fire", "btn_medical", "btn_security", "tamper", "led", "buzzer",
                  "battery"},
    "sensor-esp32": {"current", "voltage", "residual", "temp_ntc", "led", "buzzer"},
}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def roles(p: dict) -> dict[str, dict]:
    return {r: s for g in ("inputs", "outputs", "analog") for r, s in p.get(g, {}).items()}


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_profile_is_complete_and_pins_are_sound(path: Path) -> None:
    p = load(path)
    assert p["schema"] == 1 and p["board"] == path.stem
    pins = roles(p)
    assert REQUIRED[p["board"]] <= set(pins)
    gpios = [s["gpio"] for s in pins.values()]
    assert len(gpios) == len(set(gpios)), "a GPIO is used twice"
    if p["chip"] == "esp32":
        assert not set(gpios) & ESP32_RESERVED
        assert all(s["gpio"] in ESP32_ADC1 and s["adc"].startswith("ADC1")
                   for s in p["analog"].values())
    else:
        assert not set(gpios) & C3_RESERVED
        assert all(s["gpio"] in C3_WAKE for s in p["inputs"].values() if s.get("wake"))
    for alarm_type, role in p.get("buttons", {}).items():
        assert alarm_type in ("fire", "medical", "security") and role in pins


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_wiring_svg_names_every_pin(path: Path) -> None:
    p = load(path)
    svg = (HW / "wiring" / f"{p['board']}.svg").read_text()
    ET.fromstring(svg)  # well-formed
    for role, spec in roles(p).items():
        assert f"GPIO{spec['gpio']}" in svg and role in svg


def test_wiring_svgs_are_current() -> None:
    r = subprocess.run([sys.executable, str(HW / "wiring" / "make_svg.py"), "--check"])
    assert r.returncode == 0, "run hardware/wiring/make_svg.py"


@pytest.mark.parametrize("bom", sorted((HW / "bom").glob("*.csv")), ids=lambda p: p.stem)
def test_bom_parses(bom: Path) -> None:
    with bom.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["ref"] and r["part"] and int(r["qty"]) >= 1 for r in rows)
    assert all(None not in r for r in rows), "a row has more columns than the header"


def test_calibrate_recovers_gain_and_offset() -> None:
    points = [(c, c * 0.75 + 12) for c in (0, 40, 160, 400, 640)]
    gain, offset = calibrate.fit(points)
    assert gain == pytest.approx(0.75) and offset == pytest.approx(12)
    cal = calibrate.cal_entries("residual", gain, offset)
    assert cal["r_gain_num"] / cal["r_gain_den"] == pytest.approx(0.75)
    assert cal["r_offset"] == 12


def test_calibrate_flags_out_of_tolerance(capsys: pytest.CaptureFixture[str]) -> None:
    good = ["0:0", "200:150", "400:300", "600:450"]
    assert calibrate.main(["--channel", "residual", "--points", *good]) == 0
    # a bent front end: linear fit leaves > 5 % error at the set point
    bad = ["0:0", "200:100", "400:340", "600:420"]
    assert calibrate.main(["--channel", "residual", "--points", *bad]) == 1
    assert "NOT within" in capsys.readouterr().out


def test_power_budget_matches_the_documented_figure() -> None:
    b = power_budget.Budget()
    assert round(b.life_days()) == 660
    assert "660 days" in (HW / "power.md").read_text()
    assert power_budget.Budget(heartbeat_min=60).life_days() > 1.5 * b.life_days()
