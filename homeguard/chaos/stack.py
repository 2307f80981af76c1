"""The stack a chaos run breaks: the benchmarks' rig (homeguard/bench/rig.py:
Mosquitto with the project's broker config, the centre and the gateway as
real `homeguard` subprocesses) with what the faults need, a TCP proxy
between the devices and the broker (proxy.py), and the fleet, `homeguard
simulate` in its own process running the real firmware.

Every fault method returns once the part is back (or gone): the gateway
subscribed again, the centre answering /healthz, the broker listening.
"""

from __future__ import annotations

import json
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from homeguard.bench.rig import BIN, Gateway, Rig
from homeguard.bench.servers import Proc, free_port, http_ok
from homeguard.chaos.proxy import TcpProxy
from homeguard.devbroker.dev import start_dev_broker
from homeguard.simulator.cli import provision

GATEWAY = "gw-chaos"
SUBSCRIBED = "subscribed topics="  # the gateway's line once the broker granted its topics
START_TIMEOUT = 120.0  # a part's start on a busy 2-core machine


@dataclass
class FleetConfig:
    """The simulated fleet: its size and what the boards do (homeguard simulate)."""
    devices: int = 100
    prefix: str = "chaos"
    alarm_every_s: float = 30.0
    telemetry_s: int = 10
    heartbeat_s: int = 60
    reboot_every_s: float = 120.0
    outage_every_s: float = 0.0  # each board's own link losses (besides the proxy's cuts)
    sensor_every: int = 4
    drain_s: float = 120.0  # after the faults: the boards empty their flash outboxes
    tick_ms: int = 100
    seed: int = 1


class ChaosRig(Rig):
    """Broker, centre (on `db_url`, SQLite in the scratch dir by default),
    one gateway, the proxy and the fleet."""

    def __init__(self, tmp: Path, fleet: FleetConfig, db_url: str | None = None) -> None:
        super().__init__(tmp)
        self.fleet_cfg = fleet
        self.db_url = db_url or f"sqlite:///{self.tmp / 'centre.db'}"
        self.registry = self.tmp / "devices.json"
        self.state = self.tmp / "sim"
        self.proxy = TcpProxy((self.broker.host, self.broker.port))
        self.centre: Proc | None = None
        self.gw: Gateway | None = None
        self.fleet: Proc | None = None

    # --- start and stop -------------------------------------------------------

    def start(self) -> None:
        """Accounts and registry for the fleet, then the centre and the gateway
        (subscribed before any device publishes: the broker keeps messages only
        for a session that exists), the proxy, and the fleet."""
        self.state.mkdir(parents=True, exist_ok=True)
        cfg = self.fleet_cfg
        provision(cfg.devices, cfg.prefix, self.registry, self.broker.dir.root,
                  self.state / "passwords.json", cfg.sensor_every)
        self.centre = self._centre()
        self.gw = self.gateway(GATEWAY, self.registry)  # issues its centre credential
        self.start_centre()
        self.start_gateway()
        self.proxy.start()
        fleet = self.fleet = Proc("fleet", [
            str(BIN / "homeguard"), "simulate", "--count", str(cfg.devices),
            "--prefix", cfg.prefix, "--registry", str(self.registry),
            "--broker-dir", str(self.broker.dir.root), "--port", str(self.proxy.port),
            "--duration", str(10 * 365 * 86400),  # until SIGINT (finish_fleet)
            "--telemetry-s", str(cfg.telemetry_s), "--heartbeat-s", str(cfg.heartbeat_s),
            "--alarm-every-s", str(cfg.alarm_every_s),
            "--outage-every-s", str(cfg.outage_every_s),
            "--reboot-every-s", str(cfg.reboot_every_s),
            "--sensor-every", str(cfg.sensor_every), "--tick-ms", str(cfg.tick_ms),
            "--drain-s", str(cfg.drain_s),
            "--state-dir", str(self.state), "--report", str(self.report_path),
            "--seed", str(cfg.seed)], self.tmp)
        self.procs.append(fleet.start())
        fleet.wait_ready(lambda: "boards running" in fleet.logs(100_000), START_TIMEOUT)

    @property
    def report_path(self) -> Path:
        return self.tmp / "fleet-report.json"

    def finish_fleet(self, timeout: float = 600) -> dict:
        """End the fleet's run (SIGINT: it drains, disconnects and writes its
        report); the report."""
        assert self.fleet is not None
        self.fleet.signal(signal.SIGINT)
        assert self.fleet.popen is not None
        try:
            code = self.fleet.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the fleet did not end within {timeout:.0f}s:\n"
                               f"{self.fleet.logs()}") from None
        if code != 0 or not self.report_path.exists():
            raise RuntimeError(f"the fleet exited with {code}:\n{self.fleet.logs()}")
        report: dict = json.loads(self.report_path.read_text())
        return report

    def stop(self) -> None:
        self.proxy.stop()
        super().stop()

    # --- the centre -------------------------------------------------------------

    def _centre(self) -> Proc:
        """The centre's process (not started), on one port for every start."""
        port = free_port()
        self.centre_url = f"http://127.0.0.1:{port}"
        proc = Proc("centre", [str(BIN / "homeguard"), "centre", "--host", "127.0.0.1",
                               "--port", str(port), "--db", self.db_url], self.tmp)
        self.procs.append(proc)
        return proc

    def start_centre(self) -> str:
        """Start the centre and wait until it answers."""
        assert self.centre is not None
        self.centre.start().wait_ready(lambda: http_ok(f"{self.centre_url}/healthz"),
                                       START_TIMEOUT)
        return self.centre_url

    def kill_centre(self) -> None:
        assert self.centre is not None
        self.centre.kill()

    def credential(self, gateway_id: str) -> str:
        """The gateway's centre credential, issued in the centre's store."""
        return subprocess.run(
            [str(BIN / "homeguard"), "centre", "gateway", "issue", gateway_id, "--replace",
             "--db", self.db_url], capture_output=True, text=True, check=True).stdout.strip()

    # --- the gateway and the broker -----------------------------------------

    def start_gateway(self) -> None:
        """Start the gateway and wait for its subscription in this run's log
        lines (the log file keeps every earlier run's)."""
        assert self.gw is not None
        log = self.gw.proc.log_path
        offset = log.stat().st_size if log.exists() else 0

        def subscribed() -> bool:
            with open(log, "rb") as f:
                f.seek(offset)
                return SUBSCRIBED.encode() in f.read()
        self.gw.proc.start().wait_ready(subscribed, START_TIMEOUT)

    def kill_gateway(self) -> None:
        """kill -9: no chance to flush or disconnect."""
        assert self.gw is not None
        self.gw.proc.kill()

    def restart_broker(self) -> None:
        """Mosquitto stops (SIGTERM: it saves its persistence) and starts again
        on the same ports and directory."""
        old = self.broker
        old.stop()
        self.broker = start_dev_broker(old.dir.root, old.port, old.tls_port or free_port())

    def cut_links(self, seconds: float) -> None:
        """Every device link reset; new ones refused for `seconds`."""
        self.proxy.down(seconds)

    @property
    def gateway_db(self) -> Path:
        assert self.gw is not None
        return self.gw.data_dir / "gateway.db"
