"""The wheel on its own (issue 14, packaging): built from this checkout with
no setuptools warning (seen in pip's verbose log), it ships every module and
data file; installed into clean venvs outside the checkout, each part runs
from there: `homeguard --help`, `broker init` and `broker run` (real
Mosquitto), the centre answering /healthz from a venv with [centre] alone,
the gateway against both from one with [gateway] alone, `device install`
on the virtual board (the firmware found inside the installed package), and
`bench firmware` with the npm MicroPython the tests' harness installed.  A
base install without a part's extra says what to install in one line."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from broker import layout
from tests.harness.micropython import RUNNER_DIR, MicroPython
from tests.harness.proc import Proc, free_port, require_binary, wait_until
from tests.harness.vboard import VBoard, vboard_fixture  # noqa: F401 - the `vboard` fixture

ROOT = Path(__file__).resolve().parents[1]
ROLES = "broker,gateway,centre,tech,dev"  # dev: homeguard bench
TOKEN = "wheel-token"
pytestmark = pytest.mark.timeout(300)
WARNING = re.compile(r"warning\b|warn\(", re.IGNORECASE)


class Venv:
    """A venv outside the checkout with the wheel installed; commands run in
    `cwd` with only its bin/ (and the system's) on PATH."""

    def __init__(self, root: Path, wheel: Path, extras: str = "") -> None:
        self.root = root
        self.bin = root / "bin"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", root], check=True)
        spec = f"{wheel}[{extras}]" if extras else str(wheel)
        # this pip installs into the new venv (--python); nothing else of ours is used
        r = subprocess.run([sys.executable, "-m", "pip", "--python", self.bin / "python",
                            "install", "-q", "--no-compile", spec],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        self.env = {"PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                    "PYTHONPATH": "", "VIRTUAL_ENV": str(root)}

    def homeguard(self, *args: object, cwd: Path,
                  timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.bin / "homeguard", *map(str, args)], cwd=cwd,
                              env={**os.environ, **self.env}, capture_output=True, text=True,
                              timeout=timeout)

    def proc(self, name: str, *args: object, cwd: Path) -> Proc:
        return Proc(name, [self.bin / "homeguard", *args], cwd, env=self.env, cwd=cwd)


def source_copy(dest: Path) -> Path:
    """The checkout's files (tracked, and new ones git does not ignore), so the
    build writes its build/ and egg-info there, not into the checkout."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(wheel, source it was built from, the build's output)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = source_copy(tmp / "src")
    # -v: without it pip hides the backend's log, where setuptools' own
    # "warning: ..." lines go; byte-compiling on, or every build says it is off
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", src,
                        "-w", tmp / "dist"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return next((tmp / "dist").glob("homeguard-*.whl")), src, r.stdout + r.stderr


@pytest.fixture(scope="module")
def venv(built: tuple[Path, Path, str], tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return Venv(tmp_path_factory.mktemp("roles") / "venv", built[0], ROLES)


@pytest.fixture(scope="module")
def centre_venv(built: tuple[Path, Path, str], tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return Venv(tmp_path_factory.mktemp("centre") / "venv", built[0], "centre")


@pytest.fixture(scope="module")
def gateway_venv(built: tuple[Path, Path, str],
                 tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return Venv(tmp_path_factory.mktemp("gateway") / "venv", built[0], "gateway")


@pytest.fixture(scope="module")
def base_venv(built: tuple[Path, Path, str], tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return Venv(tmp_path_factory.mktemp("base") / "venv", built[0])


def shipped(src: Path) -> set[str]:
    """What the wheel must hold: every module of the parts, hg from
    firmware/hg, the apps as firmware/apps, and the data files read at run time."""
    out = set()
    for part in ("broker", "dashboard", "gateway", "hardware", "homeguard", "firmware/apps",
                 "firmware/hg"):
        for path in (src / part).rglob("*.py"):
            rel = path.relative_to(src).as_posix()
            out.add(rel.removeprefix("firmware/") if part == "firmware/hg" else rel)
    for pattern in ("broker/templates/*", "dashboard/templates/*", "dashboard/static/**/*",
                    "dashboard/migrations/script.py.mako", "hardware/boards/*.json",
                    "gateway/sample.toml", "homeguard/bench/mp/*"):
        out |= {p.relative_to(src).as_posix() for p in src.glob(pattern) if p.is_file()}
    return out


def test_the_wheel_builds_without_warnings_and_ships_every_file(
        built: tuple[Path, Path, str]) -> None:
    wheel, src, output = built
    # a Python warning category (SetuptoolsDeprecationWarning, ...), warnings.warn,
    # or setuptools' log ("warning: no files found matching ...")
    assert "running bdist_wheel" in output, output  # the backend's log is there to read
    assert not [line for line in output.splitlines() if WARNING.search(line)], output
    names = set(zipfile.ZipFile(wheel).namelist())
    assert not sorted(shipped(src) - names)
    assert "hg/protocol.py" in names and "firmware/apps/button/app.py" in names
    assert not [n for n in names if n.startswith(("tests/", "firmware/hg/"))]


def test_without_its_extra_a_part_says_what_to_install(base_venv: Venv,
                                                       tmp_path: Path) -> None:
    for args, extra in [(["centre"], "centre"), (["centre-user", "list"], "centre"),
                        (["gateway", "--config", "gw.toml"], "gateway"),
                        (["broker", "init", "--dir", "b"], "broker"),
                        (["device", "install", "--port", "x", "--type", "button"], "tech"),
                        (["demo", "--once"], "demo"), (["bench", "throughput"], "dev")]:
        r = base_venv.homeguard(*args, cwd=tmp_path)
        assert r.returncode == 1 and r.stdout == "", (args, r.stdout, r.stderr)
        assert r.stderr == (f"homeguard {args[0]} needs the [{extra}] extra: "
                            f"pip install 'homeguard[{extra}]'\n"), args
    assert list(tmp_path.iterdir()) == []  # nothing ran before the message
    r = base_venv.homeguard("--help", cwd=tmp_path)
    assert r.returncode == 0 and "needs the [centre] extra" in r.stdout


def test_help_lists_every_part(venv: Venv, tmp_path: Path) -> None:
    r = venv.homeguard("--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for part in ("broker", "gateway", "centre", "centre-user", "device"):
        assert f" {part} " in r.stdout, r.stdout
    for extra in ROLES.split(","):
        assert f"needs the [{extra}]" not in r.stdout, r.stdout


@pytest.fixture
def stack() -> Iterator[list[Proc]]:
    procs: list[Proc] = []
    yield procs
    for p in reversed(procs):
        p.stop()


def test_broker_gateway_and_centre_run_from_the_wheel_each_with_its_extra_alone(
        venv: Venv, centre_venv: Venv, gateway_venv: Venv, tmp_path: Path,
        stack: list[Proc]) -> None:
    """The centre from a venv with [centre] only, the gateway from one with
    [gateway] only (as on two machines): a requirement missing from one
    extra fails here, hidden in a venv with every extra."""
    local = start_broker(venv, tmp_path, stack)
    centre_url = start_centre(centre_venv, tmp_path, stack)
    r = httpx.get(f"{centre_url}/login", timeout=10)  # a page: templates and static files
    assert r.status_code == 200 and "<form" in r.text, r.text
    health = start_gateway(gateway_venv, tmp_path, stack, local, centre_url)
    assert health["broker"] is True and "centre" in health["sinks"], health


def start_broker(venv: Venv, tmp_path: Path, stack: list[Proc]) -> int:
    """`broker init` and `broker run` (real Mosquitto); its local listener's port."""
    require_binary("mosquitto", "Debian: apt-get install mosquitto")
    local = free_port()
    r = venv.homeguard("broker", "init", "--dir", "broker", "--tls-port", free_port(),
                       "--local-port", local, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    broker = venv.proc("broker", "broker", "run", "--dir", "broker", cwd=tmp_path).start()
    stack.append(broker.wait_port(local))
    return local


def start_centre(venv: Venv, tmp_path: Path, stack: list[Proc]) -> str:
    """The centre on SQLite, answering /healthz; its URL."""
    port = free_port()
    centre = venv.proc("centre", "centre", "--host", "127.0.0.1", "--port", port,
                       "--db", f"sqlite:///{tmp_path / 'centre.db'}", "--gateway-token", TOKEN,
                       cwd=tmp_path).start()
    stack.append(centre)
    centre_url = f"http://127.0.0.1:{port}"
    centre.wait_ready(lambda: _get(f"{centre_url}/healthz") == 200, 60)
    return centre_url


def start_gateway(venv: Venv, tmp_path: Path, stack: list[Proc], local: int,
                  centre_url: str) -> dict:
    """The gateway against the broker in tmp_path; its /health once "ok"."""
    metrics = free_port()
    user, password = layout.gateway_credentials(tmp_path / "broker")
    (tmp_path / "devices.json").write_text(json.dumps({"devices": []}))
    config = {"gateway": {"id": "gw-wheel", "data_dir": "gateway"},
              "mqtt": {"port": local, "username": user, "password": password},
              "registry": {"path": "devices.json"},
              "centre": {"url": centre_url, "token": TOKEN}, "metrics": {"port": metrics}}
    (tmp_path / "gateway.toml").write_text("".join(
        f"[{section}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
        for section, keys in config.items()))
    gateway = venv.proc("gateway", "gateway", "--config", "gateway.toml", cwd=tmp_path).start()
    stack.append(gateway)
    health: dict = {}

    def healthy() -> bool:
        assert gateway.alive(), gateway.logs()
        try:
            health.update(httpx.get(f"http://127.0.0.1:{metrics}/health", timeout=2).json())
        except (httpx.HTTPError, ValueError):
            return False
        return health.get("status") == "ok"

    wait_until(healthy, 60, "the gateway's /health")
    return health


def test_device_install_finds_the_firmware_in_the_wheel(venv: Venv, vboard: VBoard,
                                                        tmp_path: Path) -> None:
    r = venv.homeguard("device", "install", "--port", vboard.port, "--type", "button",
                       cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    files = json.loads(vboard.read("/lib/hg/manifest.json") or b"{}")["files"]
    assert {"protocol.mpy", "device.mpy", "apps/button/app.mpy"} <= set(files), files


def test_bench_firmware_runs_from_the_wheel(venv: Venv, micropython: MicroPython,
                                            tmp_path: Path) -> None:
    """The firmware, the scripts run on the interpreter and the runner's npm
    project all come from the installed package; the npm MicroPython is the
    harness's (--mp-dir: nothing is downloaded). Without it: one line."""
    r = venv.homeguard("bench", "firmware", "--mp-dir", tmp_path / "none", cwd=tmp_path)
    assert r.returncode == 1 and r.stdout == "", r.stdout + r.stderr
    assert r.stderr == (f"homeguard bench firmware: the npm MicroPython is not installed in "
                        f"{tmp_path / 'none'}; run once: homeguard bench firmware --install "
                        f"--mp-dir {tmp_path / 'none'}\n")
    r = venv.homeguard("bench", "firmware", "--messages", 20, "--mp-dir", RUNNER_DIR,
                       "--out", "fw.json", cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    for shown in ("firmware modules", "hg/protocol.py", "apps/button/app.py", "button",
                  "sensor", ".mpy as installed", "encode_us", "verify_us"):
        assert shown in r.stdout, (shown, r.stdout)
    results = json.loads((tmp_path / "fw.json").read_text())["results"]
    firmware = ROOT / "firmware"
    assert set(results["mpy"]) == {p.relative_to(firmware).as_posix()
                                   for p in firmware.rglob("*.py") if "__pycache__" not in p.parts}
    assert results["heap_bytes_on_import"]["hg.protocol"] > 0
    assert results["protocol"]["ratio"]["verify_us"] > 0
    assert results["device"]["board_image"]["events"] == 1000


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0
