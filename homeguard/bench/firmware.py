"""`homeguard bench firmware`: .mpy sizes of the firmware modules, heap each
takes when imported, and the protocol's encode/verify time under the npm
MicroPython (WebAssembly, in Node) relative to CPython, same code, same run.

It runs from an install as from a checkout: the firmware is the one
`homeguard device install` puts on a board (homeguard/tech/bundle.py), the
scripts run on the interpreter ship in homeguard/bench/onboard/, and the npm
MicroPython is installed once into a folder of its own (micropython.py):

    homeguard bench firmware --install [--mp-dir DIR]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from homeguard.bench import micropython, report
from homeguard.bench.micropython import MicroPython, RunnerError, firmware_files
from homeguard.bench.rig import BenchError
from homeguard.tech import bundle
from homeguard.tech.bundle import compile_file
from homeguard.tech.errors import TechError

# the scripts run on the (virtual) board, shipped with this package
ONBOARD = Path(str(resources.files("homeguard.bench") / "onboard"))
DEVICE_BENCH = ONBOARD / "device_bench.py"
BOARD_BENCH = ONBOARD / "board_bench.py"
VHW = ONBOARD / "vhw"  # the virtual board's machine/network

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

# (each reading after returning to the event loop: see onboard/device_bench.py)
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


def modules() -> dict[str, Path]:
    """The firmware's modules by their name in its tree: hg/x.py, apps/button/x.py."""
    out = {}
    for tree in (bundle.LIB, bundle.APPS):
        for path in tree.rglob("*.py"):
            if "__pycache__" not in path.parts:
                out[path.relative_to(tree.parent).as_posix()] = path
    return dict(sorted(out.items()))


# modules that touch the board (machine, network) or CPython-only ones:
# not imported under the npm MicroPython, and simhal is not in an app's image
BOARD_ONLY = ("esp32hal", "main")
NOT_ON_BOARD = ("simhal",)
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


def device_figures(mp: MicroPython) -> dict[str, dict]:
    """hg.device under both runtimes: press -> PUBLISH time, heap (see docs).
    Under MicroPython twice: importing the .py sources (compiled on the
    heap) and importing the .mpy files a board is installed with
    (homeguard/tech/bundle.py's compiler and options)."""
    code = device_code()
    under_mp = json.loads(mp.run(code, timeout=600, async_=True))
    as_installed = json.loads(mp.run(code, files=installed_files(), firmware=False, timeout=600,
                                     async_=True))
    with tempfile.TemporaryDirectory() as tmp:
        under_cp = _cpython(f"ROOT = {str(Path(tmp) / 'dev')!r}\n" + DEVICE_BENCH.read_text())
    return {"micropython": under_mp, "micropython_mpy": as_installed,
            "cpython": under_cp, "board_image": board_figures(mp)}


def board_figures(mp: MicroPython) -> dict:
    """The full button board image as installed and booted (hg.board.setup
    with hg.esp32hal on the virtual board's machine/network): heap booted,
    connected, after 1000 events (onboard/board_bench.py; hg.protocol
    counted, the socket and hg.net.Stream not: an in-memory link instead)."""
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
    return json.loads(mp.run(device_code(BOARD_BENCH), files=files, firmware=False,
                             timeout=600, async_=True))


def device_code(main: Path = DEVICE_BENCH) -> str:
    """onboard/device_bench.py as MicroPython runs it: the module, then the
    MICROPYTHON_MAIN text (top-level await) of `main` (it, or board_bench.py)."""
    tail = main.read_text().split('MICROPYTHON_MAIN = """')[1].split('"""')[0]
    return "ROOT = '/devbench'\nASYNC = True\n" + DEVICE_BENCH.read_text() + "\n" + tail


def installed_files() -> dict[str, str | bytes]:
    """The firmware tree with every module as the .mpy a board gets."""
    out: dict[str, str | bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path, content in firmware_files(bundle.LIB, bundle.APPS).items():
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
    for name, src in modules().items():
        try:
            mpy = compile_file(src)
        except TechError as exc:
            raise BenchError(str(exc)) from None
        out[name] = {"source_bytes": src.stat().st_size, "mpy_bytes": len(mpy)}
    return out


def install(mp_dir: Path | None) -> str:
    """`--install`: the npm MicroPython into mp_dir (npm ci, once); what was done."""
    where = mp_dir or micropython.default_dir()
    try:
        ran = micropython.install(where)
    except RunnerError as exc:
        raise BenchError(str(exc)) from None
    return f"npm MicroPython {'installed (npm ci)' if ran else 'ready'} in {where}"


def runner(mp_dir: Path | None) -> MicroPython:
    """The npm MicroPython installed in mp_dir (default: the user's cache),
    with the installed firmware; or a one-line BenchError saying what to run."""
    where = mp_dir or micropython.default_dir()
    why = micropython.missing(where)
    if why is not None:
        option = f" --mp-dir {where}" if mp_dir else ""
        raise BenchError(f"homeguard bench firmware: {why}; run once: "
                         f"homeguard bench firmware --install{option}")
    return MicroPython(shutil.which("node") or "node", where / "run.mjs", bundle.LIB,
                       bundle.APPS)


def _cpython(code: str) -> dict:
    """The JSON line `code` prints under this CPython, with the installed firmware."""
    path = os.pathsep.join(dict.fromkeys(str(p.parent) for p in (bundle.LIB, bundle.APPS)))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=bundle.LIB.parent, env={"PYTHONPATH": path})
    return json.loads(proc.stdout)


def timing(mp: MicroPython, n: int) -> dict[str, dict[str, float]]:
    t0 = time.perf_counter()
    under_mp = json.loads(mp.run(TIMING % n, timeout=600))
    mp_wall = time.perf_counter() - t0
    under_cp = _cpython(TIMING % n)
    return {"micropython": {**under_mp, "wall_s": mp_wall}, "cpython": under_cp,
            "ratio": {k: under_mp[k] / under_cp[k] for k in ("encode_us", "verify_us")}}


def heap(mp: MicroPython) -> dict[str, int]:
    names = [f"hg.{p.stem}" for p in modules().values() if p.parent == bundle.LIB
             and p.stem not in BOARD_ONLY + NOT_ON_BOARD]
    return json.loads(mp.run(HEAP % json.dumps(names), async_=True))


def run(n: int, mp_dir: Path | None = None) -> dict:
    mp = runner(mp_dir)  # or say what to install first
    sizes = mpy_sizes()
    return {"mpy": sizes, "mpy_per_app": app_sizes(sizes), "heap_bytes_on_import": heap(mp),
            "protocol": timing(mp, n), "device": device_figures(mp)}


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
