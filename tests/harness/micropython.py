"""Fixture: run code under a real MicroPython (the npm WebAssembly port, in Node).

The runner is the benchmarks' (homeguard/bench/micropython.py: what `run`
puts on the interpreter's filesystem, errors, async code); this fixture
gives it the npm project tests/harness/mp and this checkout's firmware/.

    def test_x(micropython):
        out = micropython.run("from hg import protocol\\nprint(protocol.VERSION)")
        assert out == "1\\n"

One-time setup: `npm ci --prefix tests/harness/mp` (scripts/test does it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from homeguard.bench.micropython import PACKAGE, MicroPython, MicroPythonError
from tests.harness.proc import servers_required

__all__ = ["FIRMWARE", "RUNNER", "RUNNER_DIR", "MicroPython", "MicroPythonError", "micropython"]

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
RUNNER_DIR = Path(__file__).resolve().parent / "mp"
RUNNER = RUNNER_DIR / "run.mjs"


def _missing(msg: str) -> None:
    if servers_required():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def micropython() -> MicroPython:
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed (Debian: apt-get install nodejs npm); "
                 "scripts/test installs it")
    if not (RUNNER_DIR / "node_modules" / PACKAGE / "package.json").is_file():
        _missing(f"{PACKAGE} is not installed: run scripts/test or "
                 f"`npm ci --prefix {RUNNER_DIR.relative_to(ROOT)}`")
    assert node is not None
    return MicroPython(node, RUNNER, FIRMWARE)
