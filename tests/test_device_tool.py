"""`homeguard device` against a virtual board: real MicroPython behind a pty,
opened with pyserial; provisioning end to end with real Mosquitto, gateway
and centre (tests/harness/vboard.py, tests/harness/stack.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from homeguard.bench.firmware import VHW  # the virtual board's machine/network
from homeguard.simulator.board import BoardSpec
from homeguard.simulator.fleet import Fleet
from homeguard.tech import bundle, files, install, provision
from homeguard.tech.errors import TechError
from homeguard.tech.info import board_info
from homeguard.tech.link import Board
from homeguard.tech.onsite import Access, HopWatch
from homeguard.tech.onsite_cli import watch_account
from tests.harness.proc import wait_until
from tests.harness.stack import ADMIN, ADMIN_PASSWORD, TOKEN
from tests.harness.vboard import VBoard, vboard_fixture  # noqa: F401 - the `vboard` fixture
from tests.test_gateway_feedback import operator

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.timeout(60)


def device(*args: object, timeout: float = 40) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "homeguard", "device", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def put_v1(vb: VBoard) -> None:
    with Board(vb.port, say=lambda m: None) as b:
        install.install(b, bundle.build("button", version="1.0.0"))


def live_version(vb: VBoard) -> str | None:
    raw = vb.read("/lib/hg/manifest.json")
    return json.loads(raw)["version"] if raw else None


def runs_protocol(vb: VBoard) -> str:
    with Board(vb.port) as b:
        return b.run("from hg import protocol\nprint(protocol.VERSION)").strip()


def test_install_then_info_over_the_cli(vboard: VBoard) -> None:
    r = device("install", "--port", vboard.port, "--type", "button", "--version", "2.0.0")
    assert r.returncode == 0, r.stderr
    assert "installed 2.0.0 (previous: none" in r.stdout
    assert runs_protocol(vboard) == "1"
    files = vboard.listing()
    assert "lib/hg/protocol.mpy" in files and not any(f.endswith(".part") for f in files)
    r = device("info", "--port", vboard.port, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["firmware"] == "2.0.0" and info["firmware_type"] == "button"
    assert info["micropython"] == "1.27.0" and info["free_heap"] > 0
    assert info["config"] is None


def test_the_installed_app_and_library_import_on_the_board(vboard: VBoard) -> None:
    # the app is installed inside the firmware tree as package apps.<type>;
    # the board's boot.py (written by install) puts that tree on sys.path,
    # and main.py starts the app
    put_v1(vboard)
    with Board(vboard.port) as b:
        listed = b.run("import os\nprint(sorted(os.listdir('/')), sorted(os.listdir("
                       "'/lib/hg/apps')), open('/main.py').read().splitlines()[-1])")
        assert listed.strip() == ("['boot.py', 'dev', 'home', 'lib', 'main.py', 'proc', 'tmp']"
                                  " ['__init__.mpy', 'button'] import apps.button.main")
        out = b.run("exec(open('/boot.py').read())\n"
                    "import apps.button.app, hg.app, hg.device\n"
                    "print(apps.button.app.__file__, hg.app.__file__,"
                    " hasattr(apps.button.app, 'ButtonApp'), hasattr(hg.app, 'test_event'))")
    assert out.split() == ["/lib/hg/apps/button/app.mpy", "/lib/hg/app.mpy", "True", "True"]


def test_link_cut_mid_file_leaves_old_firmware_running(vboard: VBoard) -> None:
    put_v1(vboard)
    vboard.faults.cut_after(b"hgf.write(", count=3)  # the cable is pulled inside a file
    with pytest.raises(TechError, match="gave up"):
        with Board(vboard.port, timeout=0.5, attempts=2, say=lambda m: None) as b:
            install.install(b, bundle.build("button", version="2.0.0"))
    vboard.power_cycle()
    assert live_version(vboard) == "1.0.0"
    assert runs_protocol(vboard) == "1"
    assert not any(f.startswith("lib/hg/") and f.endswith(".part") for f in vboard.listing())
    # the next install finishes the job and keeps 1.0.0 for rollback
    with Board(vboard.port) as b:
        result = install.install(b, bundle.build("button", version="2.0.0"))
        assert (result.version, result.previous) == ("2.0.0", "1.0.0")
        assert install.rollback(b) == "1.0.0"
    assert live_version(vboard) == "1.0.0"


def test_corrupted_chunk_is_caught_by_the_hash_and_resent(vboard: VBoard) -> None:
    put_v1(vboard)
    said: list[str] = []
    vboard.faults.corrupt_after(b"a2b_base64(b'", times=1)
    with Board(vboard.port, say=said.append) as b:
        install.install(b, bundle.build("button", version="2.0.0"))
    assert vboard.faults.seen["corrupted"] == 1
    assert any("retrying" in s for s in said), said
    assert live_version(vboard) == "2.0.0" and runs_protocol(vboard) == "1"


def test_chunks_corrupted_every_time_fail_with_old_firmware_intact(vboard: VBoard) -> None:
    put_v1(vboard)
    vboard.faults.corrupt_after(b"a2b_base64(b'", times=1000)
    with pytest.raises(TechError, match="gave up"):
        with Board(vboard.port, attempts=2, say=lambda m: None) as b:
            install.install(b, bundle.build("button", version="2.0.0"))
    assert live_version(vboard) == "1.0.0" and runs_protocol(vboard) == "1"
    assert not any(f.endswith(".part") for f in vboard.listing() if "hg.new" not in f)


def test_slow_link_with_a_dropped_byte_still_installs(vboard: VBoard) -> None:
    vboard.faults.slow(0.00005)
    vboard.faults.drop_after(b"hgf.write(", times=1)
    with Board(vboard.port, say=lambda m: None) as b:
        install.install(b, bundle.build("button", version="3.0.0"))
        assert b.retries >= 1
        assert board_info(b)["firmware"] == "3.0.0"
    assert vboard.faults.seen["dropped"] == 1


def test_no_board_is_a_clear_error(tmp_path: Path) -> None:
    r = device("info", "--port", tmp_path / "ttyUSB9")
    assert r.returncode == 1
    assert "no board on" in r.stderr and "plugged in" in r.stderr
    r = device("flash", "--port", tmp_path / "ttyUSB9", "--chip", "esp32c3",
               Path(bundle.FIRMWARE) / "README.md")
    assert r.returncode == 1 and "no board on" in r.stderr


# --- a provisioned board boots (issue 13, defect 1) --------------------------

BOARDS = provision.BOARDS
# what a board does at reset: boot.py, then main.py (the simulated hardware
# modules live in /tmp, outside the flash, where a board has them in ROM)
RESET = """
import sys
sys.path.insert(0, '/tmp')
try:
    exec(open('/boot.py').read())
    exec(open('/main.py').read())
except Exception as e:
    print('stopped:', type(e).__name__, e)
import os
print(sorted(os.listdir('/')))
"""


def with_hardware(vb: VBoard) -> Board:
    b = Board(vb.port).open()
    for name in ("machine", "network"):
        files.put_file(b, f"/tmp/{name}.py", (VHW / f"{name}.py").read_bytes())
    return b


@pytest.mark.parametrize(("kind", "profile"), [("button", "button-c3"),
                                               ("sensor", "sensor-esp32")])
def test_installed_and_provisioned_board_boots_to_its_network_step(
        vboard: VBoard, kind: str, profile: str) -> None:
    r = device("install", "--port", vboard.port, "--type", kind)
    assert r.returncode == 0, r.stderr
    r = device("provision", "--port", vboard.port, "--type", kind, "--household", "H-0300",
               "--wifi-ssid", "home", "--wifi-password", "pw", "--broker-host", "127.0.0.1",
               "--broker-port", "1883", "--no-tls")
    assert r.returncode == 0, r.stderr
    # not asked to wait for the gateway: it says so, and how to make it wait
    assert ("gateway: not waited for; the device may be refused until the gateway loads its "
            "key (give --gateway-url to wait)") in " ".join(r.stdout.split())
    assert vboard.read(f"/boards/{profile}.json") == (BOARDS / f"{profile}.json").read_bytes()
    b = with_hardware(vboard)
    try:
        out = b.run(RESET, timeout=30, what="reset")
    finally:
        b.close()
    assert "cannot start" not in out
    stopped, files_now = out.strip().splitlines()[-2:]
    assert stopped == "stopped: Stop joining Wi-Fi home", out
    assert "'obx'" in files_now  # hg.device booted: its flash outbox is there


def test_device_test_shows_the_boards_own_boot_error(vboard: VBoard, mosquitto) -> None:  # noqa: ANN001,E501
    put_v1(vboard)
    r = device("provision", "--port", vboard.port, "--type", "button", "--no-tls",
               "--broker-host", mosquitto.host, "--broker-port", mosquitto.port,
               "--broker-dir", mosquitto.config_dir)
    assert r.returncode == 0, r.stderr
    with Board(vboard.port) as b:  # a board whose profile went missing
        b.run("import os\nos.remove('/boards/button-c3.json')")
    r = device("test", "--port", vboard.port, "--broker-dir", mosquitto.config_dir,
               "--centre-url", "http://127.0.0.1:9", "--centre-token", "x")
    said = " ".join(r.stderr.split())
    assert r.returncode == 1
    assert "cannot start: board profile /boards/button-c3.json:" in said, r.stderr
    r = device("provision", "--port", vboard.port, "--type", "button", "--board", "button-x")
    said = " ".join(r.stderr.split())  # the console wraps long lines
    assert r.returncode == 1 and "no board profile 'button-x'" in said
    assert "known: button-c3, sensor-esp32" in said


def test_a_board_that_stops_answering_is_reported_with_what_it_printed() -> None:
    class Silent:  # prints why it cannot start, then waits (30 s before its reset)
        def read_until(self, n: int, ending: bytes, timeout: float,
                       data_consumer=None) -> bytes:  # noqa: ANN001
            for c in b"cannot start: board profile /boards/x.json: ENOENT\r\n":
                data_consumer(bytes([c]))
            return b"\n"

    board = Board("/dev/null")
    board._t = Silent()  # type: ignore[assignment]
    with pytest.raises(TechError) as exc:
        board._follow(15, "test event")
    assert str(exc.value) == ("test event: no complete answer within 15s; the board printed: "
                              "cannot start: board profile /boards/x.json: ENOENT")


def provision(vb: VBoard, stack, *extra: str) -> subprocess.CompletedProcess:  # noqa: ANN001
    return device("provision", "--port", vb.port, "--type", "button",
                  "--broker-dir", stack.broker.config_dir, "--registry", stack.tmp / "devices.json",
                  "--centre-url", stack.centre_url, "--centre-user", ADMIN,
                  "--centre-password", ADMIN_PASSWORD,
                  "--broker-host", "127.0.0.1", "--broker-port", stack.broker.port, "--no-tls",
                  *extra)


def test_provisioned_device_connects_and_its_alarm_reaches_the_centre(
        vboard: VBoard, stack, tmp_path: Path) -> None:  # noqa: ANN001
    r = provision(vboard, stack, "--household", "H-0200", "--grid", "G-02",
                  "--wifi-ssid", "home", "--wifi-password", "wifi-secret")
    assert r.returncode == 1 and "G-02 is not registered" in r.stderr  # says where to add it
    r = provision(vboard, stack, "--household", "H-0200", "--grid", "G-02",
                  "--address", "Building 3, Room 201", "--community", "Heping",
                  "--wifi-ssid", "home", "--wifi-password", "wifi-secret")
    assert r.returncode == 0, r.stderr
    cfg = json.loads(vboard.read("/config.json") or b"{}")
    dev = cfg["device_id"]
    # the refused first run already gave the board its identity: kept, not made again
    assert f"kept identity {dev}" in r.stdout and "H-0200" in r.stdout  # the label
    gw_registry = json.loads((stack.tmp / "devices.json").read_text())["devices"]
    assert any(d["id"] == dev and d["key"] == cfg["key_hex"] for d in gw_registry)
    assert cfg["broker"]["username"] == dev and cfg["household"] == "H-0200"
    assert "centre: registered" in r.stdout
    with operator(stack) as (client, _):
        reg = client.get(f"/api/v1/registry/devices/{dev}").json()
        assert (reg["household"], reg["has_key"], reg["type"]) == ("H-0200", True, "button")
        hh = client.get("/api/v1/registry/households/H-0200").json()
        assert (hh["address"], hh["grid_cell"]) == ("Building 3, Room 201", "G-02")

    fleet = Fleet()  # the board's firmware with its identity, on simulated hardware
    board = fleet.add(BoardSpec(dev, cfg["key_hex"], cfg["broker"]["password"], "127.0.0.1",
                                stack.broker.port, tmp_path / "sim" / dev, resend_ms=1000))
    fleet.start()
    try:
        assert board.wait_connected(10), stack.broker.logs()
        seq = board.press("medical")
        wait_until(lambda: any(a["device"] == dev and a["seq"] == seq
                               for a in stack.alarms()), 15, "the alarm at the centre")
        # the board path of `device test` watches the hops on an account of its own:
        # the running gateway keeps its session (sessions are keyed by account)
        user, password = watch_account(stack.broker.config_dir)
        watch = HopWatch(dev, Access("127.0.0.1", stack.broker.port, user, password, "",
                                     stack.centre_url, TOKEN)).start()
        try:
            hops = watch.run(lambda: board.press("fire") or 0, 30)
        finally:
            watch.stop()
        assert all(h.ms is not None for h in hops), [str(h) for h in hops]
        assert "disconnected from broker" not in stack.gateway.logs(100_000)
    finally:
        fleet.stop()

    again = provision(vboard, stack)  # same board: same identity, nothing new
    assert again.returncode == 0, again.stderr
    assert f"kept identity {dev}" in again.stdout and "registry unchanged" in again.stdout
    assert "centre: updated" in again.stdout
    assert json.loads(vboard.read("/config.json") or b"{}") == cfg

    r = device("info", "--port", vboard.port)
    assert dev in r.stdout and "wifi-secret" not in r.stdout
    assert cfg["key_hex"] not in r.stdout and cfg["broker"]["password"] not in r.stdout

    r = device("test", "--port", vboard.port, "--broker-dir", stack.broker.config_dir,
               "--centre-url", stack.centre_url, "--centre-token", TOKEN, "--sim",
               "--state-dir", tmp_path / "sim", "--wait", 15)
    assert r.returncode == 0, r.stdout + r.stderr
    for hop in ("broker", "gateway", "centre"):
        assert any(line.startswith(hop) and line.endswith(" ms")
                   for line in r.stdout.splitlines()), r.stdout


# --- provisioning completes when the gateway will accept the device -----------

from hg import config as fw_config  # noqa: E402
from hg.device import Device  # noqa: E402
from hg.simhal import SimHAL  # noqa: E402
from tests.harness.proc import Proc, free_port  # noqa: E402
from tests.test_firmware_store import App, run  # noqa: E402


def start_gateway(tmp: Path, mosquitto, registry: Path) -> tuple[Proc, str]:  # noqa: ANN001
    """A real gateway on `registry`, its metrics port (GET /devices/<id>) open."""
    port = free_port()
    cfg = tmp / "gateway.toml"
    cfg.write_text(
        f'[gateway]\nid = "gw-prov"\ndata_dir = "{tmp / "gw"}"\n\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\n'
        f'username = "{mosquitto.gateway_user}"\npassword = "{mosquitto.gateway_password}"\n'
        f'client_id = "gw-prov"\n\n[registry]\npath = "{registry}"\n\n'
        f'[centre]\nurl = "http://127.0.0.1:9"\ntoken = "x"\n\n[metrics]\nport = {port}\n')
    gw = Proc("gateway", [BIN / "homeguard", "gateway", "--config", cfg], tmp).start()
    gw.wait_ready(lambda: "subscribed topics=" in gw.logs())
    return gw, f"http://127.0.0.1:{port}"


def test_provision_returns_once_the_gateway_accepts_the_device(
        vboard: VBoard, mosquitto, tmp_path: Path) -> None:  # noqa: ANN001
    put_v1(vboard)
    registry = tmp_path / "devices.json"
    registry.write_text('{"devices": []}')
    gw, url = start_gateway(tmp_path, mosquitto, registry)
    try:
        r = device("provision", "--port", vboard.port, "--type", "button", "--no-tls",
                   "--broker-host", mosquitto.host, "--broker-port", mosquitto.port,
                   "--broker-dir", mosquitto.config_dir, "--registry", registry,
                   "--gateway-url", url)
        assert r.returncode == 0, r.stderr
        assert "gateway: ready, key loaded (" in r.stdout
        # the board powered on at once: the real firmware with the config provisioned
        root = tmp_path / "board"
        root.mkdir()
        (root / "config.json").write_bytes(vboard.read("/config.json") or b"")
        cfg, errors = fw_config.load(str(root / "config.json"))
        assert errors == []
        app = App()
        dev = Device(cfg, SimHAL(), app, str(root))
        try:
            run(dev, dev.hal, lambda: dev.link.connected, "connected")
            seq = dev.send_event("fire")
            run(dev, dev.hal, lambda: ("stored", seq) in app.feedback, "the gateway's stored ack")
        finally:
            dev.close()
        assert "unknown_device" not in gw.logs(20000)
        # a gateway that reads another registry: provisioning says so and fails
        r = device("provision", "--port", vboard.port, "--type", "button", "--no-tls",
                   "--broker-host", mosquitto.host, "--broker-port", mosquitto.port,
                   "--registry", tmp_path / "other.json", "--gateway-url", url,
                   "--gateway-wait", 1, "--new-identity")
        said = " ".join(r.stderr.split())
        assert r.returncode == 1
        assert f"the gateway at {url} has not loaded the key of" in said
        assert "(it does not know the device)" in said
    finally:
        gw.stop()
