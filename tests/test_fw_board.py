"""The board loop itself (issue 13, always armed): hg.board.run, as a
button's main.py calls it, under CPython on the virtual board's machine and
network modules (homeguard/bench/onboard/vhw/; time's ticks_* and sleep_ms from the
small shim below), with hg.esp32hal, hg.device, hg.link/hg.mqtt/hg.net and
the button app as installed.  Wi-Fi joins at once; the broker is a
listening socket that accepts TCP and never answers, the SNTP server a UDP
socket that never answers.  While the board is connecting, a held press
lands in the flash outbox and the LED shows "sending" (blink), and no loop
turn waits for the network.  run() is ended by its `until` callback."""

from __future__ import annotations

import importlib.util
import json
import socket
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from hg import board, net
from homeguard.bench.firmware import VHW

ROOT = Path(__file__).resolve().parents[1]
HOLD_MS = 300
sys.path.insert(0, str(ROOT / "firmware"))  # `apps.button` as on the board
pytestmark = pytest.mark.timeout(120)


def vhw(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, VHW / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def virtual_board(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """machine/network of the virtual board, MicroPython's time functions
    on CPython's time, and no name known yet to hg.net."""
    machine, network = vhw("machine"), vhw("network")
    network.stop = False  # Wi-Fi joins at once
    monkeypatch.setitem(sys.modules, "machine", machine)
    monkeypatch.setitem(sys.modules, "network", network)
    monkeypatch.delitem(sys.modules, "hg.esp32hal", raising=False)
    for name, fn in (("ticks_ms", lambda: time.monotonic_ns() // 1000000),
                     ("ticks_us", lambda: time.monotonic_ns() // 1000),
                     ("ticks_diff", lambda a, b: a - b), ("ticks_add", lambda a, b: a + b),
                     ("sleep_ms", lambda ms: time.sleep(ms / 1000))):
        monkeypatch.setattr(time, name, fn, raising=False)
    monkeypatch.setattr(net, "known", {})
    return machine


def test_board_run_keeps_a_press_while_the_broker_never_answers(
        tmp_path: Path, virtual_board: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts TCP (in the kernel), never reads nor answers
    ntp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ntp.bind(("127.0.0.1", 0))  # takes requests, never answers
    real = socket.getaddrinfo

    def lookup(host, port, *args):  # noqa: ANN001,ANN002,ANN202
        if host == "pool.ntp.org":
            return real("127.0.0.1", ntp.getsockname()[1], *args)
        return real(host, port, *args)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    profile = (ROOT / "hardware/boards/button-c3.json").read_text()
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards/button-c3.json").write_text(profile)
    (tmp_path / "config.json").write_text(json.dumps({
        "v": 1, "device_id": "hg-b-0079", "type": "button", "board": "button-c3",
        "wifi": {"ssid": "home", "password": "pw"},
        "broker": {"host": "127.0.0.1", "port": silent.getsockname()[1], "tls": False,
                   "username": "hg-b-0079", "password": "pw"},
        "key_hex": bytes(range(32)).hex(), "button": {"hold_ms": HOLD_MS}}))
    pins = json.loads(profile)["inputs"]
    fire = pins["btn_fire"]["gpio"]
    virtual_board.held.add(pins["tamper"]["gpio"])  # the case is closed
    turns: list[float] = []  # seconds between the ends of two loop turns
    seen: dict[str, object] = {}
    parts: list = []  # the board's hal and device, closed at the end
    last = [time.perf_counter()]
    deadline = time.monotonic() + 60

    def until(hal, app, dev) -> bool:  # noqa: ANN001
        t = time.perf_counter()
        turns.append(t - last[0])
        last[0] = t
        assert time.monotonic() < deadline, f"no alarm in the outbox: {seen}"
        parts[:] = [hal, dev]
        now = hal.ticks_ms()
        if "pressed" not in seen and dev.link.connecting:
            seen["pressed"] = now  # the board is connecting: press fire
            virtual_board.held.add(fire)
        elif "released" not in seen and now - seen.get("pressed", now) >= HOLD_MS + 200:
            seen["released"] = now
            virtual_board.held.discard(fire)
        alarms = [json.loads(dev.obx.get(s))["type"] for s in dev.obx.pending()
                  if dev.obx.kind(s) == "alarm"]
        seen.update(alarms=alarms, led=hal.outputs["led"].pattern,
                    connecting=dev.link.connecting, wifi=hal.wlan.isconnected())
        return "released" in seen and "fire" in alarms and seen["led"] == "blink"

    from apps.button.app import ButtonApp  # noqa: PLC0415
    try:
        board.run(ButtonApp, "button-c3", str(tmp_path), until=until)
    finally:
        if parts:
            parts[1].close()
            if parts[0].sntp:
                parts[0].sntp.close()
        silent.close()
        ntp.close()
    assert seen["wifi"] and seen["connecting"]  # joined, still connecting
    assert seen["alarms"] == ["fire"] and seen["led"] == "blink"
    # no turn waited for the network: the loose bound is for a busy machine
    assert max(turns) < 1.0, max(turns)
    assert statistics.median(turns) < 0.05, statistics.median(turns)
