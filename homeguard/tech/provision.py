"""Provisioning: give a board its identity and tell the system about it.

The board is the source of truth for its identity.  provision() first reads
/config.json from the board; when it holds an identity (device id, HMAC key,
broker password) that identity is kept, so running provision again on the
same board re-asserts the same device everywhere instead of creating a
second one.  Otherwise a new one is made: the id from the chip's unique id
when MicroPython has `machine.unique_id()`, else random.

Order: the board profile (/boards/<board>.json, from hardware/boards/, which
the firmware's hg.board reads at boot) and the config on the board first
(atomic: .part, SHA-256 check, rename), then the broker account, the
gateway's registry file, the centre; last, with a gateway URL, it waits
until the gateway has the device's key loaded (GET /devices/<id> on its
metrics port), so a device switched on right after provisioning is not
refused as unknown.  A run cut short anywhere is finished by running it
again.

/config.json (schema v1; docs/technician.md):
    {"v": 1, "device_id": "hg-b-1a2b3c4d", "type": "button", "board": "button-c3",
     "household": "H-0001", "grid": "G-01",
     "wifi": {"ssid": "...", "password": "..."},
     "broker": {"host": "...", "port": 8883, "tls": true, "ca": "/ca.crt",
                "username": "<device id>", "password": "..."},
     "key_hex": "<64 hex>", "heartbeat_s": 300, "thresholds": {}}
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import httpx

from broker import layout
from gateway.health import key_id
from hg import protocol
from homeguard.tech import enrol, files
from homeguard.tech.centre import CentreRegistry, DeviceRecord, NoRegistryAPI
from homeguard.tech.errors import TechError
from homeguard.tech.install import installed_manifest
from homeguard.tech.link import Board

CONFIG = "/config.json"
CA = "/ca.crt"
BOARDS = Path(str(resources.files("hardware") / "boards"))  # hardware/boards/<board>.json
PROFILES = "/boards"  # where hg.board looks for them on the board
PREFIX = {"button": "hg-b-", "sensor": "hg-s-"}
BOARD_OF = {"button": "button-c3", "sensor": "sensor-esp32"}
SECRET_KEYS = ("password", "key_hex")


@dataclass
class Request:
    type: str
    household: str = ""
    grid: str = ""
    board: str = ""  # board profile, hardware/boards/<board>.json; default by type
    wifi_ssid: str = ""
    wifi_password: str = ""
    broker_host: str = "127.0.0.1"
    broker_port: int = 8883
    broker_tls: bool = True
    heartbeat_s: int = 300
    thresholds: dict = field(default_factory=dict)
    new_identity: bool = False
    address: str = ""  # for registering a new household at the centre
    community: str = ""


@dataclass
class Result:
    config: dict
    reused: bool  # the board already had this identity
    broker_reloaded: bool = False
    registry_changed: bool = False
    centre: str = "not asked"  # "registered" | "not asked" | why it was skipped
    gateway_ms: int | None = None  # ms until the gateway had the key (None: not asked)

    @property
    def device_id(self) -> str:
        return str(self.config["device_id"])

    def gateway_line(self) -> str:
        """What provisioning says about the gateway, waited for or not."""
        if self.gateway_ms is not None:
            return f"gateway: ready, key loaded ({self.gateway_ms} ms)"
        return ("gateway: not waited for; the device may be refused until the gateway "
                "loads its key (give --gateway-url to wait)")


def read_config(board: Board) -> dict | None:
    raw = board.retry(lambda: files.read(board, CONFIG), "reading /config.json")
    if raw is None:
        return None
    try:
        cfg = json.loads(raw)
    except ValueError:
        return None  # unreadable: treated as unprovisioned, and replaced
    return cfg if isinstance(cfg, dict) else None


def _chip_id(board: Board) -> str | None:
    code = ("import binascii\ntry:\n import machine\n u = binascii.hexlify("
            "machine.unique_id()).decode()\nexcept ImportError:\n u = None")
    uid = board.retry(lambda: board.eval("u", code, what="reading the chip id"),
                      "reading the chip id")
    return uid[-8:] if isinstance(uid, str) and uid else None


def _identity(board: Board, req: Request, old: dict | None) -> tuple[dict, bool]:
    """(device_id, key_hex, password) to use, and whether they were the board's."""
    if old and not req.new_identity and _has_identity(old):
        if old.get("type") != req.type:
            raise TechError(f"this board is already {old['device_id']}, a {old.get('type')}; "
                            "use --new-identity to make it a new device")
        return {"device_id": old["device_id"], "key_hex": old["key_hex"],
                "password": old["broker"]["password"]}, True
    suffix = (None if req.new_identity else _chip_id(board)) or secrets.token_hex(4)
    return {"device_id": PREFIX[req.type] + suffix, "key_hex": secrets.token_hex(32),
            "password": layout.new_password()}, False


def _keep(req: Request, old: dict) -> None:
    """Fields not given again keep the board's values (re-running changes nothing)."""
    req.household = req.household or str(old.get("household", ""))
    req.grid = req.grid or str(old.get("grid", ""))
    wifi = old.get("wifi")
    wifi = wifi if isinstance(wifi, dict) else {}
    if not req.wifi_ssid:
        req.wifi_ssid, req.wifi_password = wifi.get("ssid", ""), wifi.get("password", "")
    req.thresholds = req.thresholds or dict(old.get("thresholds") or {})


def _has_identity(cfg: dict) -> bool:
    broker = cfg.get("broker")
    return (protocol.valid_id(str(cfg.get("device_id", "")))
            and isinstance(cfg.get("key_hex"), str) and len(cfg["key_hex"]) >= 32
            and isinstance(broker, dict) and bool(broker.get("password")))


def make_config(ident: dict, req: Request, ca: bool) -> dict:
    broker = {"host": req.broker_host, "port": req.broker_port, "tls": req.broker_tls,
              "username": ident["device_id"], "password": ident["password"]}
    if ca:
        broker["ca"] = CA
    return {"v": 1, "device_id": ident["device_id"], "type": req.type,
            "board": req.board or BOARD_OF[req.type], "household": req.household,
            "grid": req.grid, "wifi": {"ssid": req.wifi_ssid, "password": req.wifi_password},
            "broker": broker, "key_hex": ident["key_hex"], "heartbeat_s": req.heartbeat_s,
            "thresholds": req.thresholds}


def profile(name: str) -> bytes:
    """The board profile hardware/boards/<name>.json; TechError naming the known ones."""
    path = BOARDS / f"{name}.json"
    if "/" in name or not path.is_file():
        known = ", ".join(sorted(p.stem for p in BOARDS.glob("*.json")))
        raise TechError(f"no board profile {name!r} in {BOARDS}; known: {known}")
    data = path.read_bytes()
    try:
        json.loads(data)
    except ValueError as exc:
        raise TechError(f"{path}: not valid JSON ({exc})") from None
    return data


def put_profile(board: Board, name: str) -> None:
    """/boards/<name>.json on the board, copied only when it differs."""
    data = profile(name)
    path = f"{PROFILES}/{name}.json"
    same = board.retry(lambda: files.sha256(board, path), f"hashing {path}")
    if same != hashlib.sha256(data).hexdigest():
        board.retry(lambda: files.mkdirs(board, PROFILES), f"creating {PROFILES}")
        files.put_file(board, path, data)


def write_config(board: Board, cfg: dict) -> None:
    files.put_file(board, CONFIG, json.dumps(cfg, sort_keys=True).encode())


def provision(board: Board, req: Request, broker_dir: Path | None = None,
              registry: Path | None = None, centre: CentreRegistry | None = None,
              gateway: str | None = None, gateway_wait_s: float = 30) -> Result:
    if req.type not in PREFIX:
        raise TechError(f"unknown device type {req.type!r}; use button or sensor")
    old = read_config(board)
    ident, reused = _identity(board, req, old)
    if reused and old:
        _keep(req, old)
    ca = enrol.broker_ca(broker_dir) if broker_dir and req.broker_tls else None
    if ca:
        files.put_file(board, CA, ca)
    cfg = make_config(ident, req, ca is not None)
    put_profile(board, cfg["board"])
    if cfg != old:
        write_config(board, cfg)
    result = Result(cfg, reused)
    if broker_dir:
        result.broker_reloaded = enrol.broker_account(broker_dir, cfg["device_id"],
                                                      ident["password"])
    if registry:
        result.registry_changed = enrol.registry_entry(registry, {
            "id": cfg["device_id"], "key": cfg["key_hex"], "type": req.type,
            "household": req.household, "grid": req.grid})
    if centre:
        result.centre = _register(board, centre, cfg, req.address, req.community)
    if gateway:
        result.gateway_ms = wait_gateway(gateway, cfg["device_id"], cfg["key_hex"],
                                         gateway_wait_s)
    return result


def wait_gateway(url: str, device_id: str, key_hex: str, wait_s: float = 30) -> int:
    """Milliseconds until the gateway at `url` (its metrics port) has this
    device's key loaded; TechError saying what it answered after wait_s."""
    want = key_id(bytes.fromhex(key_hex))
    t0 = time.monotonic()
    while True:
        try:
            r = httpx.get(f"{url.rstrip('/')}/devices/{device_id}", timeout=5)
            if r.status_code == 200 and r.json().get("key_id") == want:
                return int((time.monotonic() - t0) * 1000)
            last = {200: "it has an older key", 404: "it does not know the device"}.get(
                r.status_code, f"HTTP {r.status_code}")
        except (httpx.HTTPError, ValueError) as exc:
            last = f"no answer: {exc}"
        if time.monotonic() - t0 >= wait_s:
            raise TechError(
                f"the gateway at {url} has not loaded the key of {device_id} after "
                f"{wait_s:.0f}s ({last}); is its [registry] path the file given with "
                "--registry, or [registry] centre_sync_s set? Run provision again once it has")
        time.sleep(0.2)


def _register(board: Board, centre: CentreRegistry, cfg: dict, address: str = "",
              community: str = "") -> str:
    manifest = installed_manifest(board) or {}
    try:
        return centre.register(DeviceRecord(
            cfg["device_id"], cfg["type"], cfg["board"], str(manifest.get("version", "")),
            cfg["household"], cfg["grid"], cfg["key_hex"], address, community))
    except NoRegistryAPI as exc:
        return str(exc)


def redacted(cfg: dict) -> dict:
    """The config with every secret replaced by 'set' / 'missing'."""
    out: dict = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out[k] = redacted(v)
        elif k in SECRET_KEYS:
            out[k] = "set" if v else "missing"
        else:
            out[k] = v
    return out


def label(cfg: dict) -> str:
    """The text printed on the device's label."""
    lines = [f"Homeguard {cfg['type']}", f"ID   {cfg['device_id']}",
             f"HH   {cfg.get('household') or '-'}", f"GRID {cfg.get('grid') or '-'}",
             f"BRD  {cfg.get('board', '')}"]
    width = max(len(line) for line in lines) + 2
    rule = "+" + "-" * width + "+"
    return "\n".join([rule, *(f"| {line.ljust(width - 1)}|" for line in lines), rule])
