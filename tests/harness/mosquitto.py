"""Fixtures: a real Mosquitto with the project's broker/ config on free loopback ports.

Each broker gets its own directory rendered by broker.layout (the production
template; only ports, bind address, paths and the run-as user differ), with the
gateway account and a TLS listener whose CA is `ca_path`.

    def test_x(mosquitto):
        pw = mosquitto.add_device("dev-1")          # active when this returns
        client.username_pw_set("dev-1", pw)
        client.connect(mosquitto.host, mosquitto.port)
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from broker import layout
from broker import tls as broker_tls
from tests.harness.proc import LOOPBACK, free_port, port_open, require_binary, wait_until
from tests.harness.servers import Server

RELOAD_TIMEOUT = 5.0


class MosquittoBroker(Server):
    """One Mosquitto process and its broker directory."""

    name = "mosquitto"

    def __init__(self, root: Path, binary: str) -> None:
        super().__init__(binary, root)
        self.tls_port = free_port()
        while self.tls_port == self.port:
            self.tls_port = free_port()
        result = layout.init(
            root, tls_port=self.tls_port, local_port=self.port, tls_bind=LOOPBACK,
            run_user=pwd.getpwuid(os.geteuid()).pw_name,
        )
        self.dir = result.dir
        self.config_dir = result.dir.root
        self.ca_path = result.dir.tls_paths.ca_cert
        self.gateway_user, self.gateway_password = layout.gateway_credentials(self.config_dir)
        self._passwords: dict[str, str] = {}

    # --- accounts -----------------------------------------------------------

    def add_device(self, device_id: str, password: str | None = None) -> str:
        """Create (or re-password) the account, reload, return once it can log in."""
        password = layout.add_device(self.config_dir, device_id, password)
        self._passwords[device_id] = password
        if self.running():
            self.reload()
            wait_until(lambda: self.login(device_id, password) == 0, RELOAD_TIMEOUT,
                       f"account {device_id} to become active")
        return password

    def add_gateway(self, user: str, password: str | None = None) -> str:
        """One more gateway account (e.g. the second gateway of a share group: the
        broker uses the username as client id, so two gateways need two accounts);
        reload, return its password once it can log in."""
        password = layout.add_gateway(self.config_dir, user, password)
        if self.running():
            self.reload()
            wait_until(lambda: self.login(user, password) == 0, RELOAD_TIMEOUT,
                       f"gateway account {user} to become active")
        return password

    def remove_device(self, device_id: str) -> None:
        """Delete the account, reload, return once it can no longer log in."""
        password = self._passwords.pop(device_id, None)
        layout.remove_device(self.config_dir, device_id)
        if self.running():
            self.reload()
            if password is not None:
                wait_until(lambda: self.login(device_id, password) != 0, RELOAD_TIMEOUT,
                           f"account {device_id} to be refused")

    def device_password(self, device_id: str) -> str:
        try:
            return self._passwords[device_id]
        except KeyError:
            raise KeyError(f"no device {device_id!r} was added to this broker") from None

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads the password file and the ACL."""
        assert self.proc is not None
        self.proc.signal(signal.SIGHUP)

    def login(self, username: str, password: str, port: int | None = None) -> int:
        """CONNACK return code of a plain MQTT 3.1.1 login (0 = accepted).  The
        broker keys the probe's session by the username: it replaces a client of
        that account that is connected now (its session and queue are kept)."""
        return connack_code(self.host, port or self.port, username, password)

    # --- process (start/stop/kill/restart come from Server) ----------------

    def argv(self) -> list[str]:
        return [self.binary, "-c", str(self.dir.config_file)]

    def ready(self) -> bool:
        return port_open(self.port) and port_open(self.tls_port)

    def logs(self, tail: int = 8000) -> str:
        """Mosquitto's log file (its stdout is block-buffered when not a terminal)."""
        try:
            return self.dir.log_file.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return self.proc.logs() if self.proc is not None else ""


def connack_code(host: str, port: int, username: str, password: str,
                 timeout: float = 2.0) -> int:
    """Send one MQTT 3.1.1 CONNECT (random client id, which the broker replaces by
    the username; no clean session, so a session of that account is kept, queue
    and all); return the CONNACK code, or -1 when the broker closed the
    connection without one."""
    def field(raw: bytes) -> bytes:
        return struct.pack("!H", len(raw)) + raw

    client_id = b"hg-probe-" + os.urandom(6).hex().encode()
    body = field(b"MQTT") + bytes([4, 0xC0]) + struct.pack("!H", 10)
    body += field(client_id) + field(username.encode()) + field(password.encode())
    packet = bytes([0x10, len(body)]) + body if len(body) < 128 else b""
    if not packet:
        raise ValueError("credentials too long for the probe")
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(packet)
        reply = _read(sock, 4)
        if len(reply) < 4 or reply[0] != 0x20:
            return -1
        if reply[3] == 0:
            sock.sendall(b"\xe0\x00")
        return reply[3]


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture(scope="session")
def mosquitto_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[], MosquittoBroker]]:
    """Call it for a fresh, started broker; every one is stopped at session end."""
    binary = require_binary("mosquitto", "apt-get install mosquitto")
    tls_cache = tmp_path_factory.mktemp("broker-tls")  # RSA keys once per session
    broker_tls.ensure(tls_cache)
    brokers: list[MosquittoBroker] = []

    def make() -> MosquittoBroker:
        root = tmp_path_factory.mktemp("mosquitto")
        shutil.copytree(tls_cache, root / "tls")
        broker = MosquittoBroker(root, binary)
        brokers.append(broker)
        broker.start()
        return broker

    yield make
    for broker in brokers:
        broker.stop()


@pytest.fixture
def mosquitto(mosquitto_factory: Callable[[], MosquittoBroker]) -> Iterator[MosquittoBroker]:
    """A fresh broker for one test."""
    broker = mosquitto_factory()
    yield broker
    broker.stop()
