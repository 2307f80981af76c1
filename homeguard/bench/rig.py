"""The stack a benchmark runs against, as the tests start it: Mosquitto with
the project's broker config (homeguard.devbroker.dev), the centre and the gateway as real
`homeguard` subprocesses (homeguard/bench/servers.py), device accounts and a
device registry."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from broker import acl, layout, passwd
from homeguard.bench.servers import Proc, free_port, http_ok, wait_until
from homeguard.devbroker.dev import DevBroker, start_dev_broker

BIN = Path(sys.executable).parent
TOKEN = "bench-token"
__all__ = ["Proc", "free_port", "wait_until", "Rig"]


class BenchError(Exception):
    """A benchmark could not run; str() says why."""


def start_broker(root: Path) -> DevBroker:
    return start_dev_broker(root / "broker", free_port(), free_port())


def add_accounts(broker: DevBroker, ids: list[str]) -> str:
    """Give every id a device account with one shared password (hashed once:
    100k PBKDF2 hashes would take minutes) and reload the broker."""
    password = secrets.token_urlsafe(18)
    hashed = passwd.hash_password(password, iterations=101)
    entries = passwd.read(broker.dir.passwd_file)
    for dev in ids:
        entries[dev] = hashed
    broker.dir.passwd_file.write_text(passwd.render(entries))
    broker.reload()
    time.sleep(0.3)  # SIGHUP is asynchronous; Mosquitto re-reads within milliseconds
    return password


def write_registry(path: Path, ids: list[str], key: bytes) -> None:
    devices = [{"id": d, "key": key.hex(), "type": "button", "household": f"H-{i:06d}",
                "grid": "G-01"} for i, d in enumerate(ids)]
    path.write_text(json.dumps({"devices": devices}))


def forget_sessions(host: str, port: int, user: str, password: str, tries: int = 30) -> None:
    """End the persistent sessions of a gateway's two accounts, events and
    telemetry: a clean-session login as each, which the broker keys sessions
    by, wipes its queue and subscriptions. Mosquitto would otherwise keep
    queueing for a consumer that left (a share group's member, a consumer
    that logged in as the gateway), and the next flood would queue twice."""
    for u in (user, acl.telemetry_user(user)):
        _clean_login(host, port, u, password, tries)


def _clean_login(host: str, port: int, user: str, password: str, tries: int) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, clean_session=True)
    c.username_pw_set(user, password)
    done = threading.Event()
    c.on_connect = lambda *a: done.set()
    for attempt in range(tries):
        try:
            c.connect(host, port)
            break
        except OSError:  # no free local port (another run's many connections)
            if attempt == tries - 1:
                raise
            time.sleep(1.0)
    c.loop_start()
    try:
        if not done.wait(10):
            raise BenchError(f"{user}: the broker did not answer a clean login")
    finally:
        c.disconnect()
        c.loop_stop()


class Rig:
    """Broker + centre + gateways in one scratch directory."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = Path(tmp)
        self.broker = start_broker(self.tmp)
        self.gateway_user, self.gateway_password = layout.gateway_credentials(
            self.broker.dir.root)
        self.procs: list[Proc] = []
        self.centre_url = ""

    # False: the centre shows every alarm of a device as its own (a bench
    # pressing one button hundreds of times measures each one)
    flood_control = True

    def start_centre(self) -> str:
        port = free_port()
        self.centre_url = f"http://127.0.0.1:{port}"
        proc = Proc("centre", [
            str(BIN / "homeguard"), "centre", "--host", "127.0.0.1", "--port", str(port),
            "--db", f"sqlite:///{self.tmp / 'centre.db'}", "--gateway-token", f"gw-bench:{TOKEN}"],
            self.tmp, env=None if self.flood_control else {"HG_CENTRE_FLOOD_ALARMS": "0"})
        self.procs.append(proc.start())
        proc.wait_ready(lambda: http_ok(f"{self.centre_url}/healthz"), 60)
        return self.centre_url

    def operator(self) -> httpx.Client:
        """An operator account on the centre and a client logged in with it, as
        the desk's browser is (session cookie; the login form's CSRF token)."""
        return self.operator_login()[0]

    def operator_login(self) -> tuple[httpx.Client, str]:
        """operator(), and the account's password (bench-operator)."""
        password = secrets.token_urlsafe(12)
        subprocess.run([BIN / "homeguard", "centre-user", "add", "bench-operator",
                        "--role", "operator", "--db", f"sqlite:///{self.tmp / 'centre.db'}",
                        "--password", password], check=True, capture_output=True)
        client = httpx.Client(base_url=self.centre_url, timeout=10)
        page = client.get("/login").text
        m = re.search(r'name="csrf_token" value="([^"]+)"', page)
        if m is None:
            raise BenchError("the centre's login page has no csrf_token field")
        resp = client.post("/login", data={"username": "bench-operator", "password": password,
                                           "csrf_token": m.group(1), "next": "/"})
        if resp.status_code not in (200, 303):
            raise BenchError(f"operator login failed: HTTP {resp.status_code}")
        return client, password

    def account(self, name: str, share_group: str) -> tuple[str, str]:
        """The broker account a gateway logs in with: in a share group each
        member has its own (the broker keys sessions by username)."""
        if not share_group:
            return self.gateway_user, self.gateway_password
        password = layout.add_gateway(self.broker.dir.root, name)
        self.broker.reload()
        time.sleep(0.3)  # SIGHUP is asynchronous (as in add_accounts)
        return name, password

    def credential(self, gateway_id: str) -> str:
        """The gateway's own centre credential (homeguard centre gateway issue)."""
        return subprocess.run(
            [str(BIN / "homeguard"), "centre", "gateway", "issue", gateway_id, "--replace",
             "--db", f"sqlite:///{self.tmp / 'centre.db'}"],
            capture_output=True, text=True, check=True).stdout.strip()

    def gateway(self, name: str, registry: Path, client_id: str | None = None,
                extra: str = "", share_group: str = "", reader: str = "paho") -> Gateway:
        """A gateway subprocess (not started); `extra` is appended to its TOML."""
        gw = Gateway(self, name, registry, client_id or name, extra, share_group, reader)
        self.procs.append(gw.proc)
        return gw

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        self.broker.stop()


def _log_since(path: Path, offset: int) -> str:
    """What a process wrote to its log after `offset` bytes."""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


class Gateway:
    """A `homeguard gateway` subprocess with its /metrics endpoint."""

    def __init__(self, rig: Rig, name: str, registry: Path, client_id: str,
                 extra: str = "", share_group: str = "", reader: str = "paho") -> None:
        self.data_dir = rig.tmp / name
        self.user, self.password = rig.account(name, share_group)
        self.broker_port = rig.broker.port
        self.cfg = rig.tmp / f"{name}.toml"
        self._toml = (
            f'[gateway]\nid = "{name}"\ndata_dir = "{self.data_dir}"\n\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {rig.broker.port}\n'
            f'username = "{self.user}"\npassword = "{self.password}"\n'
            f'client_id = "{client_id}"\nshare_group = "{share_group}"\n'
            f'reader = "{reader}"\n\n'
            f'[registry]\npath = "{registry}"\n\n'
            f'[centre]\nurl = "{rig.centre_url}"\ntoken = "{rig.credential(name)}"\n\n')
        self._extra = extra
        self._new_port()
        self.proc = Proc(name, [str(BIN / "homeguard"), "gateway", "--config", str(self.cfg)],
                         rig.tmp)

    def _new_port(self) -> None:
        self.metrics_port = free_port()
        self.cfg.write_text(self._toml + f"[metrics]\nport = {self.metrics_port}\n" + self._extra)

    def start(self, timeout: float = 60, tries: int = 3) -> Gateway:
        """Start and wait until the broker granted its subscriptions. The
        metrics port is picked again at each start: a port free when it was
        picked can meanwhile be another connection's local port (taken again
        at once if that happened)."""
        for attempt in range(tries):
            self._new_port()
            log = self.proc.log_path
            mark = log.stat().st_size if log.exists() else 0  # this start's lines only
            self.proc.start()
            try:
                self.proc.wait_ready(
                    lambda: "subscribed topics=" in _log_since(log, mark), timeout)  # noqa: B023
                return self
            except RuntimeError:
                if "Address already in use" not in _log_since(log, mark) or attempt == tries - 1:
                    raise
                self.proc.stop()
        return self

    def metrics(self) -> dict[str, float]:
        """name{labels} -> value from /metrics; {} while it does not answer."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return {}
        out: dict[str, float] = {}
        for line in text.splitlines():
            m = re.match(r"^(hg_gateway_\w+(?:\{[^}]*\})?) (\S+)$", line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out

    def handled(self, m: dict[str, float] | None = None) -> int:
        """Messages through the pipeline: committed (events and telemetry points,
        hg_gateway_persisted_total of every kind) + duplicates acked again."""
        m = self.metrics() if m is None else m
        return int(sum(v for k, v in m.items() if k.startswith((
            "hg_gateway_persisted_total", "hg_gateway_duplicates_total"))))

    def shed(self, m: dict[str, float] | None = None) -> int:
        """Telemetry the gateway dropped on purpose (an overloaded lane)."""
        m = self.metrics() if m is None else m
        return int(sum(v for k, v in m.items() if k.startswith("hg_gateway_shed_total")))

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / (1 << 20)

