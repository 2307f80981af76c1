"""Fixture: run code under a real MicroPython (the npm WebAssembly port, in Node).

The runner is the benchmarks' (homeguard/bench/micropython.py: what `run`
puts on the interpreter's filesystem, errors, async code, and the runner's
npm project, whose one copy ships in homeguard/bench/mp/); this fixture
runs it from tests/harness/mp, where scripts/test installs that project
(beside the virtual board's board.mjs, which imports the same package),
with this checkout's firmware/.

    def test_x(micropython):
        out = micropython.run("from hg import protocol\\nprint(protocol.VERSION)")
        assert out == "1\\n"

One-time setup (scripts/test does it):
`.venv/bin/homeguard bench firmware --install --mp-dir tests/harness/mp`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from homeguard.bench.micropython import MicroPython, MicroPythonError, missing
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
    why = missing(RUNNER_DIR)
    if why is not None:
        _missing(f"{why}: run scripts/test, or `.venv/bin/homeguard bench firmware "
                 f"--install --mp-dir {RUNNER_DIR.relative_to(ROOT)}`")
    node = shutil.which("node")
    assert node is not None
    return MicroPython(node, RUNNER, FIRMWARE / "hg", FIRMWARE / "apps")
