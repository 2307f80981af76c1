"""The layout's one rule: imports go one way, tools -> parts -> hg.

    tools  homeguard/ (the command, demo, simulator, dev broker, benchmarks,
           technician's tools)
    parts  broker/, gateway/, dashboard/ (the centre), hardware/
    base   hg (firmware/hg, the device library) and the device apps

A part imports itself and hg only: never another part, a tool or the tests.
hg and the device apps import nothing of the host. No product code imports
tests/. Every import is read from the source (the syntax tree), including
imports inside functions and `importlib.import_module("...")` with a
literal name, so a lazy import cannot slip past."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = {"homeguard"}
PARTS = {"broker", "gateway", "dashboard", "hardware"}
BASE = {"hg", "firmware"}
OWN = TOOLS | PARTS | BASE | {"tests"}
# where each layer's sources are, and the top-level names its files belong to
SOURCES = {
    "homeguard": ROOT / "homeguard",
    "broker": ROOT / "broker",
    "gateway": ROOT / "gateway",
    "dashboard": ROOT / "dashboard",
    "hardware": ROOT / "hardware",
    "hg": ROOT / "firmware" / "hg",
    "firmware": ROOT / "firmware" / "apps",
}


def allowed(owner: str) -> set[str]:
    if owner in TOOLS:
        return TOOLS | PARTS | BASE
    if owner in PARTS:
        return {owner} | BASE
    return BASE  # hg and the device apps


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level name) of every import in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and (getattr(node.func, "attr", None) == "import_module"
                   or getattr(node.func, "id", None) in ("import_module", "__import__"))):
            yield node.lineno, node.args[0].value.split(".")[0]


def violations() -> list[str]:
    out = []
    for owner, folder in SOURCES.items():
        ok = allowed(owner)
        for path in sorted(folder.rglob("*.py")):
            for line, name in imports(path):
                if name in OWN and name not in ok:
                    out.append(f"{path.relative_to(ROOT)}:{line}: {owner} imports {name}")
    return out


def test_imports_go_one_way_tools_parts_hg() -> None:
    assert violations() == []


def test_the_rule_sees_a_lazy_cross_part_import(tmp_path: Path) -> None:
    """The checker itself: a lazy import of another part, a tool or the tests
    inside a function, or through import_module, is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("import importlib\n"
                   "def f():\n"
                   "    from gateway.statelock import hold\n"
                   "    import homeguard.demo\n"
                   "    importlib.import_module('tests.harness')\n")
    found = {name for _, name in imports(bad)}
    assert {"gateway", "homeguard", "tests"} <= found
    assert "gateway" not in allowed("dashboard") and "homeguard" not in allowed("gateway")
    assert "dashboard" in allowed("homeguard") and "hg" in allowed("broker")


def test_each_part_and_tool_is_a_package_of_its_own() -> None:
    """Tools live under homeguard/ and nowhere in a part."""
    for gone in ("gateway/cli.py", "gateway/demo.py", "gateway/bench", "gateway/fleet.py",
                 "gateway/simulate.py", "broker/dev.py", "broker/embedded.py", "hardware/tech"):
        assert not (ROOT / gone).exists(), f"{gone} is a tool: it belongs under homeguard/"
    for home in ("cli.py", "demo.py", "simulator", "devbroker", "bench", "tech"):
        assert (ROOT / "homeguard" / home).exists(), home
