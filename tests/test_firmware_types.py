"""The firmware type-checks against the MicroPython ESP32 stubs
(micropython-esp32-stubs from PyPI): mypy sees MicroPython's machine,
network, esp32, time, socket, ... instead of CPython's, so a call the board
does not have (machine.resett(), an ESP32-C3-only API on the wrong chip
module, a wrong argument type) fails here rather than on a board.

The stub distributions install plain .pyi files into site-packages, which
mypy ignores there; they are copied into a folder given as MYPYPATH, and
mypy runs without site-packages. Errors inside the stubs themselves are not
ours and are left out; hg/simhal.py is the CPython-only simulated hardware
(tests, demo) and is not checked against board stubs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
STUB_DISTS = ("micropython-esp32-stubs", "micropython-stdlib-stubs")


def stub_dir(dest: Path) -> Path:
    for name in STUB_DISTS:
        try:
            files = metadata.files(name) or []
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name} is not installed: pip install -e '.[dev]'", pytrace=False)
        for f in files:
            if f.suffix == ".pyi":
                target = dest / f
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f.locate(), target)
    return dest


def mypy(stubs: Path, *targets: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-site-packages", "--follow-imports=silent",
         "--python-version", "3.11", "--no-error-summary", "--explicit-package-bases",
         "--namespace-packages", "--check-untyped-defs", "--exclude", "simhal",
         "--cache-dir", str(stubs.parent / "mypy-cache"), *targets],
        cwd=FIRMWARE, env={"MYPYPATH": str(stubs), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=240)
    ours = [line for line in proc.stdout.splitlines()
            if line.startswith(("hg/", "apps/")) and ": error:" in line]
    if proc.returncode not in (0, 1):
        pytest.fail(f"mypy did not run:\n{proc.stdout}\n{proc.stderr}")
    return ours


def test_firmware_type_checks_against_the_esp32_stubs(tmp_path: Path) -> None:
    stubs = stub_dir(tmp_path / "stubs")
    targets = ["-p", "hg"] + (["-p", "apps"] if (FIRMWARE / "apps").is_dir() else [])
    assert mypy(stubs, *targets) == []


def test_the_stub_check_catches_a_call_the_board_lacks(tmp_path: Path) -> None:
    stubs = stub_dir(tmp_path / "stubs")
    bad = tmp_path / "fw" / "hg"
    shutil.copytree(FIRMWARE / "hg", bad, ignore=shutil.ignore_patterns("__pycache__"))
    hal = bad / "esp32hal.py"
    hal.write_text(hal.read_text().replace("machine.reset()", "machine.resett()"))
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-site-packages", "--follow-imports=silent",
         "--no-error-summary", "--explicit-package-bases", "--namespace-packages",
         "--check-untyped-defs", "--exclude", "simhal", "--cache-dir",
         str(tmp_path / "cache2"), "-p", "hg"],
        cwd=bad.parent, env={"MYPYPATH": str(stubs), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=240)
    assert 'Module has no attribute "resett"' in proc.stdout, proc.stdout[-2000:]
