"""`homeguard demo`: the whole system on one machine with embedded defaults.

Starts a broker (Mosquitto when installed, else an embedded Python broker),
the centre (SQLite), the gateway (SQLite store) and two devices running the
real firmware on simulated hardware (homeguard/simulator/fleet.py): a household-guard
button and an electrical-safety sensor, all keeping their state (the boards'
flash included) in one folder so a second run continues where the first
stopped.  A press holds the button's input until its app sends the alarm; the
button's LED, as its app drives it, is printed as it changes.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import httpx
import typer

from gateway import statelock
from hg.device import FW
from homeguard.simulator.board import BoardSpec, SimBoard, stand_in_floor
from homeguard.simulator.fleet import Fleet
from homeguard.tech.centre import CentreRegistry, DeviceRecord
from homeguard.tech.errors import TechError

log = logging.getLogger("homeguard.demo")

BUTTON = "hg-b-0001"
SENSOR = "hg-s-0001"
KEYS = {"f": "fire", "m": "medical", "s": "security"}
# the household both devices are in, its grid cell and community: the desk
# shows them with every alarm (registered at the centre on every start,
# idempotently, as a technician's `homeguard device provision` would)
SITE = {"household": "H-0001", "grid": "G-01", "grid_name": "和平社区第一网格",
        "community": "和平社区",
        "compound": "和平花园", "address": "和平花园 3 栋 2 单元 501 室",
        "worker_name": "王建国", "worker_phone": "13700137003"}
CONTACTS = ({"name": "张秀兰", "phone": "13800138001", "relation": "本人"},
            {"name": "李强", "phone": "13900139002", "relation": "儿子"})
# the button's LED as its app (apps/button/indicator.py) drives it
LED = {"blink": "sending", "slow": "stored at the gateway",
       "on": "the centre has it (received, operator on it)", "off": "off"}


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port")


class Child:
    """A part of the system running as its own process, logging to a file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "ab") as out:
            self.start = out.tell()  # the log goes on across runs: this run's part starts here
            self.popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                          env={**os.environ, **(env or {})})

    def log(self) -> str:
        """What this run of the process has logged."""
        with open(self.log_path, "rb") as f:
            f.seek(self.start)
            return f.read().decode(errors="replace")

    def check(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log()[-2000:]
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n{tail}")

    def wait_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            self.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not log {text!r} within {timeout:.0f}s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()


def _homeguard() -> list[str]:
    return [sys.executable, "-c", "from homeguard.cli import main; main()"]


def _registry(path: Path) -> dict[str, bytes]:
    """The demo devices' keys, made once and kept in the registry file."""
    if path.exists():
        devices = json.loads(path.read_text())["devices"]
    else:
        devices = [
            {"id": BUTTON, "key": secrets.token_hex(32), "type": "button",
             "household": "H-0001", "grid": "G-01"},
            {"id": SENSOR, "key": secrets.token_hex(32), "type": "sensor",
             "household": "H-0001", "grid": "G-01"},
        ]
        path.write_text(json.dumps({"devices": devices}, indent=1))
    return {d["id"]: bytes.fromhex(d["key"]) for d in devices}


def _wait_http(url: str, child: Child, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{child.name} did not answer {url} within {timeout:.0f}s")


def _wait_alarm(centre: str, token: str, seq: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    auth = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < deadline:
        for alarm in httpx.get(f"{centre}/api/v1/alarms", headers=auth, timeout=2).json():
            if alarm.get("device") == BUTTON and alarm.get("seq") == seq:
                return alarm
        time.sleep(0.2)
    raise RuntimeError(f"alarm seq {seq} did not reach the centre within {timeout:.0f}s")


def _start_broker(data: Path, logs: Path, embedded: bool) -> tuple[Child, int, str]:
    """Broker dir in data/broker with the demo devices; returns (child, port, gateway pw)."""
    from broker import layout

    bdir = data / "broker"
    port = _free_port(1883)
    layout.init(bdir, local_port=port, tls_port=_free_port(8883))
    passwords = {}
    for dev in (BUTTON, SENSOR):
        pw_file = data / f"{dev}.password"
        if not pw_file.exists():
            pw_file.write_text(layout.add_device(bdir, dev))
        passwords[dev] = pw_file.read_text()
    _, gw_password = layout.gateway_credentials(bdir)
    argv = [*_homeguard(), "broker", "run", "-d", str(bdir)]
    child = Child("broker", argv + (["--embedded"] if embedded else []), logs)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        child.check()
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"broker did not listen on {port}")
    (data / "passwords.json").write_text(json.dumps(passwords))
    return child, port, gw_password


def _gateway_config(data: Path, mqtt_port: int, mqtt_password: str, centre: str,
                    token: str, metrics_port: int) -> Path:
    path = data / "gateway.toml"
    path.write_text(
        "[gateway]\n"
        'id = "gw-demo"\n'
        f'data_dir = "{data / "gateway"}"\n\n'
        "[mqtt]\n"
        'host = "127.0.0.1"\n'
        f"port = {mqtt_port}\n"
        'username = "gateway"\n'
        f'password = "{mqtt_password}"\n'
        'client_id = "homeguard-gw-demo"\n\n'
        "[registry]\n"
        f'path = "{data / "devices.json"}"\n\n'
        "[centre]\n"
        f'url = "{centre}"\n'
        f'token = "{token}"\n\n'
        "[metrics]\n"  # /telemetry here feeds the alarm detail's chart at the centre
        'host = "127.0.0.1"\n'
        f"port = {metrics_port}\n"
    )
    return path


def _register(centre: str, admin_password: str, keys: dict[str, bytes]) -> None:
    """The household, its grid cell and both devices in the centre's registry."""
    for dev, typ, board in ((BUTTON, "button", "button-c3"), (SENSOR, "sensor", "sensor-esp32")):
        rec = DeviceRecord(device_id=dev, type=typ, board=board, firmware=FW,
                           key_hex=keys[dev].hex(), contacts=CONTACTS, **SITE)
        CentreRegistry(centre, "admin", admin_password).register(rec)


def _boards(data: Path, keys: dict[str, bytes], port: int) -> tuple[Fleet, SimBoard, SimBoard]:
    """The button and the sensor, their flash in data/devices/<id>/."""
    passwords = json.loads((data / "passwords.json").read_text())
    fleet = Fleet()
    for dev, typ in ((BUTTON, "button"), (SENSOR, "sensor")):
        fleet.add(BoardSpec(dev, keys[dev].hex(), passwords[dev], "127.0.0.1", port,
                            data / "devices" / dev, type=typ, household="H-0001", grid="G-01",
                            heartbeat_s=30, telemetry_s=10,
                            seq_floor=stand_in_floor(data / "devices", dev)))
    button, sensor = fleet.boards
    button.on_output = _shown
    return fleet, button, sensor


def _shown(board: SimBoard, output: str, pattern: str) -> None:
    if output == "led":
        print(f"  {board.id} LED {pattern}: {LED.get(pattern, pattern)}", flush=True)
    elif pattern != "off":
        print(f"  {board.id} buzzer {pattern}", flush=True)


def _led_reaches(board: SimBoard, pattern: str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while pattern not in board.hal.leds:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _console(button: SimBoard, sensor: SimBoard, centre: str) -> None:
    print("\nType f + Enter to press the button's fire key (m medical, s security; cf, cm,")
    print("cs: hold it 5 s to cancel), l for a residual-current leak on the sensor, q to stop.\n")
    for line in sys.stdin:
        cmd = line.strip().lower()
        if cmd == "q":
            return
        try:
            if cmd in KEYS:
                seq = button.press(KEYS[cmd])
                print(f"  {BUTTON}: {KEYS[cmd]} alarm sent as seq {seq}; watch {centre}/" if seq
                      else f"  {BUTTON}: no alarm: {KEYS[cmd]} is latched until the centre "
                      "resolves it (cancel it with c" + cmd + ")")
            elif cmd[:1] == "c" and cmd[1:] in KEYS:
                seq = button.cancel_press(KEYS[cmd[1:]])
                print(f"  {BUTTON}: cancel sent as seq {seq}" if seq else "  nothing to cancel")
            elif cmd == "l":
                seq = sensor.leak()
                print(f"  {SENSOR}: residual-current alarm sent as seq {seq}")
            elif cmd:
                print("  f, m, s, cf, cm, cs, l or q")
        except RuntimeError as exc:  # still busy with the last press or leak
            print(f"  {exc}")


def demo(
    data_dir: Annotated[Path, typer.Option(help="Where every part keeps its state.")] = Path(
        "demo-data"),
    port: Annotated[int, typer.Option(help="Dashboard port (a free one if busy).")] = 8080,
    once: Annotated[bool, typer.Option(
        help="Press one fire alarm, wait until the centre has it, exit.")] = False,
    embedded_broker: Annotated[bool, typer.Option(
        help="Use the embedded Python broker even when Mosquitto is installed.")] = False,
) -> None:
    """Run broker, gateway, centre and two devices (the real firmware, simulated hardware)."""
    # `kill`, a service manager or a closed terminal stops the demo as Ctrl-C
    # does: the parts it started are stopped with it, never left running
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("paho", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    data = data_dir.resolve()
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    try:  # one demo per state directory: a second stack would share its stores
        statelock.hold(data, "demo")
    except statelock.InUse as exc:
        typer.secho(f"demo: cannot start: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    keys = _registry(data / "devices.json")
    token_file = data / "gateway.token"
    if not token_file.exists():
        token_file.write_text(secrets.token_urlsafe(24))
    token = token_file.read_text()
    with ExitStack() as stack:
        broker, mqtt_port, gw_password = _start_broker(data, logs, embedded_broker)
        stack.callback(broker.stop)
        centre_port = _free_port(port)
        centre = f"http://127.0.0.1:{centre_port}"
        gateway_metrics = _free_port(0)
        admin_file = data / "centre-admin.password"
        if not admin_file.exists():
            admin_file.write_text(secrets.token_urlsafe(12))
        admin_password = admin_file.read_text()
        # the admin is created on the first run only (the store has no user yet)
        c = Child("centre", [*_homeguard(), "centre", "--host", "127.0.0.1", "--port",
                             str(centre_port), "--db", f"sqlite:///{data / 'centre.db'}",
                             "--gateway-token", f"gw-demo:{token}",
                             "--bootstrap-admin", f"admin:{admin_password}",
                             # a demo-data/ from an older checkout is brought up to date
                             "--migrate"], logs,
                  env={"HG_CENTRE_TELEMETRY_URLS": f"http://127.0.0.1:{gateway_metrics}"})
        stack.callback(c.stop)
        _wait_http(f"{centre}/healthz", c)
        try:
            _register(centre, admin_password, keys)
        except TechError as exc:
            raise typer.Exit(_fail(f"could not register the devices at the centre: {exc}")) \
                from None
        cfg = _gateway_config(data, mqtt_port, gw_password, centre, token, gateway_metrics)
        g = Child("gateway", [*_homeguard(), "gateway", "--config", str(cfg)], logs)
        stack.callback(g.stop)
        # the devices speak once the gateway has subscribed: a broker without a
        # session for it (the embedded one after a restart) keeps nothing for it
        g.wait_log("subscribed topics=")
        fleet, button, sensor = _boards(data, keys, mqtt_port)
        stack.callback(fleet.stop)
        fleet.start()
        if not (button.wait_connected() and sensor.wait_connected()):
            raise typer.Exit(_fail("the devices could not connect to the broker"))
        print(f"\nHomeguard demo is running. Dashboard: {centre}/")
        print(f"Log in as admin, password {admin_password} (kept in {admin_file})")
        print(f"Logs: {logs}/  State: {data}/")
        if once:
            seq = button.press("fire")
            if seq is None:
                raise typer.Exit(_fail("the button app sent no alarm"))
            alarm = _wait_alarm(centre, token, seq)
            g.check()
            print(f"fire alarm seq {seq} is on the dashboard: {json.dumps(alarm)}")
            if not _led_reaches(button, "on"):
                raise typer.Exit(_fail("the button's LED never showed the centre has it"))
            return
        _console(button, sensor, centre)


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _fail(msg: str) -> int:
    typer.secho(msg, fg="red", err=True)
    return 1


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
