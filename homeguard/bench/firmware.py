"""`homeguard bench firmware`: .mpy sizes of the firmware modules, heap each
takes when imported, and the protocol's encode/verify time under the npm
MicroPython (WebAssembly, in Node) relative to CPython, same code, same run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from homeguard.bench import report
from homeguard.bench.micropython import PACKAGE, MicroPython, firmware_files
from homeguard.bench.rig import BenchError
from homeguard.tech.bundle import compile_file
from homeguard.tech.errors import TechError

# This benchmark runs from a source checkout: the firmware's sources, the
# device bench scripts in tests/firmware/ and the npm MicroPython project
# tests/harness/mp (npm ci --prefix tests/harness/mp).
ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
RUNNER_DIR = ROOT / "tests/harness/mp"

# runs unchanged under both runtimes; prints one JSON line
TIMING = """
import json, time
from hg import protocol
try:
    clock, scale = time.ticks_us, 1
except AttributeError:
    clock, scale = time.perf_counter, 1000000
KEY = b"k" * 32
DATA = {"rms_ma": 1234, "v_dv": 2301, "leak_ma": 3, "temp_dc": 315}
N = %d
t0 = clock()
wires = [protocol.encode(KEY, "hg-e-0001", i, "telemetry", "periodic", 0, DATA)
         for i in range(1, N + 1)]
t1 = clock()
for w in wires:
    protocol.verify("hg/v1/hg-e-0001/telemetry", w, lambda d: KEY)
t2 = clock()
if scale == 1:
    enc, ver = time.ticks_diff(t1, t0), time.ticks_diff(t2, t1)
else:
    enc, ver = (t1 - t0) * scale, (t2 - t1) * scale
print(json.dumps({"encode_us": enc / N, "verify_us": ver / N, "bytes": len(wires[0])}))
"""

# (each reading after returning to the event loop: see tests/firmware/device_bench.py)
HEAP = """
import asyncio, gc, json
out = {}
for name in %s:
    await asyncio.sleep(0)
    gc.collect()
    before = gc.mem_alloc()
    __import__(name)
    await asyncio.sleep(0)
    gc.collect()
    out[name] = gc.mem_alloc() - before
print(json.dumps(out))
"""


def modules() -> list[Path]:
    return sorted(p for p in FIRMWARE.rglob("*.py") if "__pycache__" not in p.parts)


# modules that touch the board (machine, network) or CPython-only ones:
# not imported under the npm MicroPython, and simhal is not in an app's image
BOARD_ONLY = ("esp32hal", "main")
NOT_ON_BOARD = ("simhal",)
DEVICE_BENCH = ROOT / "tests/firmware/device_bench.py"
BOARD_BENCH = ROOT / "tests/firmware/board_bench.py"
VHW = ROOT / "tests/firmware/vhw"  # the virtual board's machine/network
BOARD = "button-c3"


def app_sizes(sizes: dict[str, dict[str, int]]) -> dict[str, int]:
    """Total .mpy bytes a board of each app carries: hg/ (without the CPython
    simulation) plus apps/<app>/."""
    hg = sum(r["mpy_bytes"] for name, r in sizes.items()
             if name.startswith("hg/") and Path(name).stem not in NOT_ON_BOARD)
    apps = sorted({Path(name).parts[1] for name in sizes if name.startswith("apps/")
                   and len(Path(name).parts) > 2})
    return {app: hg + sum(r["mpy_bytes"] for name, r in sizes.items()
                          if name.startswith(f"apps/{app}/")) for app in apps}


def device_figures() -> dict[str, dict]:
    """hg.device under both runtimes: press -> PUBLISH time, heap (see docs).
    Under MicroPython twice: importing the .py sources (compiled on the
    heap) and importing the .mpy files a board is installed with
    (homeguard/tech/bundle.py's compiler and options)."""
    code = device_code()
    mp = _micropython()
    under_mp = json.loads(mp.run(code, timeout=600, async_=True))
    as_installed = json.loads(mp.run(code, files=installed_files(), firmware=False, timeout=600,
                                     async_=True))
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-c", f"ROOT = {str(Path(tmp) / 'dev')!r}\n"
             + DEVICE_BENCH.read_text()], capture_output=True, text=True, check=True,
            cwd=FIRMWARE, env={"PYTHONPATH": str(FIRMWARE)})
    return {"micropython": under_mp, "micropython_mpy": as_installed,
            "cpython": json.loads(proc.stdout), "board_image": board_figures()}


def board_figures() -> dict:
    """The full button board image as installed and booted (hg.board.setup
    with hg.esp32hal on the virtual board's machine/network): heap booted,
    connected, after 1000 events (tests/firmware/board_bench.py; hg.protocol
    counted, the socket and hg.net.Stream not: an in-memory link instead)."""
    from homeguard.tech import bundle
    from homeguard.tech.provision import profile
    files: dict[str, str | bytes] = {f"/lib/hg/{rel}": data
                                     for rel, data in bundle.build("button").files.items()}
    files["/boards/button-c3.json"] = profile(BOARD)
    files["/config.json"] = json.dumps({
        "v": 1, "device_id": "hg-b-0900", "type": "button", "board": BOARD,
        "wifi": {"ssid": "home", "password": "pw"},
        "broker": {"host": "b", "port": 1, "tls": False, "username": "hg-b-0900",
                   "password": "p"}, "key_hex": "6b" * 32, "heartbeat_s": 300})
    for name in ("machine", "network"):
        files[f"/t/{name}.py"] = (VHW / f"{name}.py").read_text()
    tail = BOARD_BENCH.read_text().split('MICROPYTHON_MAIN = """')[1].split('"""')[0]
    code = "ROOT = '/devbench'\nASYNC = True\n" + DEVICE_BENCH.read_text() + "\n" + tail
    return json.loads(_micropython().run(code, files=files, firmware=False, timeout=600,
                                         async_=True))


def device_code() -> str:
    """tests/firmware/device_bench.py as MicroPython runs it: the module, then
    its MICROPYTHON_MAIN text (top-level await)."""
    source = DEVICE_BENCH.read_text()
    tail = source.split('MICROPYTHON_MAIN = """')[1].split('"""')[0]
    return "ROOT = '/devbench'\nASYNC = True\n" + source + "\n" + tail


def installed_files() -> dict[str, str | bytes]:
    """The firmware tree with every module as the .mpy a board gets."""
    out: dict[str, str | bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path, content in firmware_files(FIRMWARE).items():
            if not path.endswith(".py") or path.endswith("/main.py"):
                out[path] = content
                continue
            src = Path(tmp) / path.rsplit("/", 1)[1]
            src.write_bytes(content if isinstance(content, bytes) else content.encode())
            out[path[:-3] + ".mpy"] = compile_file(src)
    return out


def mpy_sizes() -> dict[str, dict[str, int]]:
    """Source and .mpy bytes per module, compiled as a board's bundle is."""
    out: dict[str, dict[str, int]] = {}
    for src in modules():
        try:
            mpy = compile_file(src)
        except TechError as exc:
            raise BenchError(str(exc)) from None
        out[str(src.relative_to(FIRMWARE))] = {"source_bytes": src.stat().st_size,
                                               "mpy_bytes": len(mpy)}
    return out


def _micropython() -> MicroPython:
    if not (FIRMWARE / "hg").is_dir() or not DEVICE_BENCH.is_file():
        raise BenchError(f"bench firmware runs from a source checkout ({ROOT} is not one)")
    node = shutil.which("node")
    if node is None or not (RUNNER_DIR / "node_modules" / PACKAGE).is_dir():
        raise BenchError(f"needs node and {PACKAGE}: npm ci --prefix {RUNNER_DIR}")
    return MicroPython(node, RUNNER_DIR / "run.mjs", FIRMWARE)


def timing(n: int) -> dict[str, dict[str, float]]:
    mp = _micropython()
    t0 = time.perf_counter()
    under_mp = json.loads(mp.run(TIMING % n, timeout=600))
    mp_wall = time.perf_counter() - t0
    proc = subprocess.run([sys.executable, "-c", TIMING % n], capture_output=True, text=True,
                          check=True, cwd=FIRMWARE, env={"PYTHONPATH": str(FIRMWARE)})
    under_cp = json.loads(proc.stdout)
    return {"micropython": {**under_mp, "wall_s": mp_wall}, "cpython": under_cp,
            "ratio": {k: under_mp[k] / under_cp[k] for k in ("encode_us", "verify_us")}}


def heap() -> dict[str, int]:
    names = [f"hg.{p.stem}" for p in modules() if p.parent.name == "hg"
             and p.stem not in BOARD_ONLY + NOT_ON_BOARD]
    return json.loads(_micropython().run(HEAP % json.dumps(names), async_=True))


def run(n: int) -> dict:
    _micropython()  # from a checkout with the npm MicroPython, or say why not first
    sizes = mpy_sizes()
    return {"mpy": sizes, "mpy_per_app": app_sizes(sizes), "heap_bytes_on_import": heap(),
            "protocol": timing(n), "device": device_figures()}


def table(results: dict) -> None:
    heap_of = results["heap_bytes_on_import"]
    rows = []
    for name, r in results["mpy"].items():
        mod = "hg." + Path(name).stem if name.startswith("hg/") else name
        rows.append([name, r["source_bytes"], r["mpy_bytes"], heap_of.get(mod, "")])
    report.show("firmware modules", ["module", ".py bytes", ".mpy bytes", "heap on import"],
                rows)
    report.show("firmware image per app (.mpy bytes; goal <= 48 KB)", ["app", ".mpy bytes"],
                [[a, b] for a, b in results["mpy_per_app"].items()])
    d = results["device"]
    rows = []
    for label, key in (("micropython, .mpy as installed", "micropython_mpy"),
                       ("micropython, .py sources", "micropython")):
        mp = d[key]
        base = mp["heap_before_import"]
        rows.append([label, mp["press_to_publish_us_p50"], mp["press_to_publish_us_p99"],
                     mp["heap_after_init"] - base, mp["heap_after_events"] - base])
    rows.append(["cpython", d["cpython"]["press_to_publish_us_p50"],
                 d["cpython"]["press_to_publish_us_p99"], "-", "-"])
    report.show("hg.device with the button app alone, 1000 alarm events through an "
                "in-memory broker+gateway (heap over the interpreter's own)",
                ["runtime", "press->PUBLISH p50 us", "p99 us", "heap after init",
                 "heap after 1000 events"], rows)
    b = d["board_image"]
    report.show("the full button board image as installed and booted (hg.board, "
                "hg.esp32hal, hg.net, hg.protocol, hg.link, hg.mqtt, hg.device, the app; "
                ".mpy; heap over the interpreter's own; an in-memory link stands for the "
                "socket and hg.net.Stream, not counted; goal <= 48 KB)",
                ["micropython", "booted", "connected", "after 1000 events", "p50 us"],
                [[".mpy as installed", b["heap_booted"], b["heap_connected"],
                  b["heap_after_events"], b["press_to_publish_us_p50"]]])
    p = results["protocol"]
    report.show("protocol per message, us (MicroPython = npm WebAssembly port in Node)",
                ["operation", "MicroPython", "CPython", "MicroPython / CPython"], [
                    [op, p["micropython"][op], p["cpython"][op], p["ratio"][op]]
                    for op in ("encode_us", "verify_us")])
