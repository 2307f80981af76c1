"""A broker for development and the demo, started from Python.

    handle = start_dev_broker("var/demo/broker", port=1883, tls_port=8883)
    ...   # gateway: 127.0.0.1:handle.port as layout.gateway_credentials(dir)
    handle.stop()

Uses Mosquitto with the production template when it is installed, else the
embedded amqtt demo broker (plain listener only, see homeguard/devbroker/embedded.py).
Either way every listener is bound to 127.0.0.1 and Mosquitto runs as the
current user (from mosquitto.dev.conf, like `homeguard broker run`), so a
development broker never needs root or opens a LAN port.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from broker import layout
from broker.binary import mosquitto_binary
from broker.errors import BrokerError

LOOPBACK = "127.0.0.1"


class BrokerStartError(BrokerError):
    def __init__(self, kind: str, why: str, log_tail: str) -> None:
        super().__init__(kind, why, log_tail)
        self.kind = kind
        self.why = why
        self.log_tail = log_tail

    def __str__(self) -> str:
        return f"{self.kind} broker did not start: {self.why}\n{self.log_tail}"


@dataclass
class DevBroker:
    """A running development broker; stop() ends it."""

    kind: str  # "mosquitto" or "embedded"
    dir: layout.BrokerDir
    host: str
    port: int  # plain listener on loopback (gateway, simulated devices)
    tls_port: int | None  # None for the embedded broker, which has no TLS
    log_path: Path
    process: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.process.poll() is None

    def reload(self) -> None:
        """Mosquitto: SIGHUP re-reads passwd and ACL (the embedded one reads them per login)."""
        if self.kind == "mosquitto" and self.alive():
            self.process.send_signal(signal.SIGHUP)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (Mosquitto saves its persistence), SIGKILL after timeout."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode

    def logs(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""


def start_dev_broker(root: Path | str, port: int = 1883, tls_port: int = 8883,
                     embedded: bool = False, timeout: float = 20.0) -> DevBroker:
    """Init (idempotently) the broker directory for loopback use and start a broker.

    Mosquitto when installed (unless embedded=True), else the embedded demo broker.
    Returns once every listener accepts connections.
    """
    busy = [p for p in (port, tls_port) if _port_open(p)]
    if busy:
        raise BrokerStartError("dev", f"ports {busy} on {LOOPBACK} are already in use", "")
    bdir = layout.init(Path(root), local_port=port, tls_port=tls_port).dir
    binary = None if embedded else mosquitto_binary()
    if binary:
        conf = layout.render_dev_config(bdir.root)
        kind, argv, ports = "mosquitto", [binary, "-c", str(conf)], [port, tls_port]
    else:
        kind = "embedded"
        argv = [sys.executable, "-m", "homeguard.devbroker.embedded", "--dir", str(bdir.root)]
        ports = [port]
    log_path = bdir.log_file.parent / f"{kind}.out"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    handle = DevBroker(kind, bdir, LOOPBACK, port, tls_port if binary else None, log_path,
                       process)
    try:
        _wait_listening(handle, ports, timeout)
    except BrokerStartError:
        handle.stop()
        raise
    return handle


def _wait_listening(handle: DevBroker, ports: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(_port_open(p) for p in ports):
        if not handle.alive():
            raise BrokerStartError(handle.kind, f"exited with {handle.process.returncode}",
                                   handle.logs())
        if time.monotonic() > deadline:
            raise BrokerStartError(handle.kind, f"ports {ports} not open after {timeout:.0f}s",
                                   handle.logs())
        time.sleep(0.05)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.2):
            return True
    except OSError:
        return False
