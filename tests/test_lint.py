"""The code style gates from STYLE.md: ruff everywhere, mypy on the parts and the tools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    r = run(str(BIN / "ruff"), "check", "--no-cache", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_is_clean_on_the_parts_and_the_tools() -> None:
    r = run(str(BIN / "mypy"), "gateway", "dashboard", "broker", "homeguard")
    assert r.returncode == 0, r.stdout + r.stderr
