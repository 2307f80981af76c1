"""README command 1: `homeguard demo --once` brings the whole system up on
embedded defaults, presses an alarm on the button (the real firmware on
simulated hardware), and the alarm reaches the centre while the button app's
LED goes from sending to "the centre has it"; a second run continues with the
same state (the board's flash: its seqs go on)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.proc import free_port, require_binary

HOMEGUARD = Path(sys.executable).parent / "homeguard"


def run_demo(data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOMEGUARD, "demo", "--once", "--data-dir", str(data), "--port", str(free_port()),
         *extra],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("broker", ["mosquitto", "embedded"])
def test_demo_once_delivers_an_alarm_to_the_dashboard(tmp_path: Path, broker: str) -> None:
    extra = ("--embedded-broker",) if broker == "embedded" else ()
    if broker == "mosquitto":
        require_binary("mosquitto", "Debian package mosquitto")
    first = run_demo(tmp_path, *extra)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Dashboard: http://127.0.0.1:" in first.stdout
    assert "fire alarm seq" in first.stdout and "is on the dashboard" in first.stdout
    out = first.stdout  # the LED as the button app drives it
    assert "hg-b-0001 LED blink: sending" in out and "hg-b-0001 LED on: the centre has it" in out
    assert out.index("LED blink") < out.index("LED slow") < out.index("LED on")
    # a second run keeps the devices' seqs: its alarm is new, not a duplicate
    second = run_demo(tmp_path, *extra)
    assert second.returncode == 0, second.stdout + second.stderr
    seqs = [int(out.stdout.split("fire alarm seq ")[1].split()[0]) for out in (first, second)]
    assert seqs[1] > seqs[0]
