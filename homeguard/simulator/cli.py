"""`homeguard simulate`: a fleet of simulated boards running the real firmware
(hg.device with apps.button or apps.sensor on hg.simhal, homeguard/simulator/fleet.py),
each with its own MQTT connection, broker account and flash directory.

The firmware does what it does on a board: heartbeats, the sensor's
telemetry, every event kept in its flash outbox until the gateway's `stored`
ack, resent with the same seq, replayed after a reboot.  The simulator only
acts on the hardware, at random (Poisson) times per board (`Schedule`):
presses (a button held until the app sends its alarm, or its cancel when
that button is still latched; a leakage on a sensor's residual-current
channel until its alarm, then its restore), link losses (`outage_s` without
network), reboots (RAM gone, flash kept), and the sensor's load current.

At the end it writes a JSON report of what every board's app sent and what
was acknowledged (telemetry counts once the broker acknowledged it), so a run
can be reconciled with what the gateway and the centre stored.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from homeguard.simulator.actions import CANCEL_MS, LEAK_MA, Leak, Press
from homeguard.simulator.board import BoardSpec, SimBoard
from homeguard.simulator.fleet import Fleet

log = logging.getLogger("homeguard.simulate")
ALARM_TYPES = ("fire", "medical", "security")
NEVER = 1 << 62


@dataclass
class FleetConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    duration_s: float = 30.0
    telemetry_s: int = 10  # the sensors' config (1..3600)
    heartbeat_s: int = 60  # every board's config (10..86400)
    alarm_every_s: float = 20.0  # mean time between presses, per board
    outage_every_s: float = 0.0  # mean time between link losses (0 = never)
    outage_s: float = 2.0
    reboot_every_s: float = 0.0  # mean time between reboots (0 = never)
    resend_s: float = 3.0  # hg.device's resend of an unacked event (30 s on boards)
    hold_ms: int = 1000  # the buttons' config
    drain_s: float = 15.0  # after duration: wait this long for outstanding acks
    tick_ms: int = 100  # a quiet board's loop period
    per_thread: int = 250
    seed: int | None = None


class Schedule:
    """One board's life during the run, called at each of its loop turns."""

    def __init__(self, cfg: FleetConfig, rng: random.Random) -> None:
        self.cfg = cfg
        self.rng = rng
        self.active = True
        self.due: dict[str, int] = {}

    def _after(self, mean_s: float) -> int:
        return int(self.rng.expovariate(1 / mean_s) * 1000) if mean_s else NEVER

    def __call__(self, board: SimBoard, now: int) -> None:
        if not self.active:
            return
        cfg, due = self.cfg, self.due
        if not due:
            due.update(alarm=now + self._after(cfg.alarm_every_s),
                       outage=now + self._after(cfg.outage_every_s),
                       reboot=now + self._after(cfg.reboot_every_s), load=now)
        if now >= due["alarm"]:
            due["alarm"] = now + self._after(cfg.alarm_every_s)
            if board.action is None:  # one hand on the board at a time
                board.start(self._press(board))
        if now >= due["outage"]:
            due["outage"] = now + int(cfg.outage_s * 1000) + self._after(cfg.outage_every_s)
            board.cut(int(cfg.outage_s * 1000))
        if now >= due["reboot"]:
            due["reboot"] = now + self._after(cfg.reboot_every_s)
            board.power_cycle()
        if now >= due["load"] and "current" in board.values:
            due["load"] = now + cfg.telemetry_s * 1000
            board.values["current"] = self.rng.randrange(0, 16001, 500)

    def _press(self, board: SimBoard) -> Press | Leak:
        if board.spec.type == "sensor":
            return Leak(LEAK_MA, 30000)
        return Press(self.rng.choice(ALARM_TYPES), CANCEL_MS + 1000)


def provision(count: int, prefix: str, registry: Path, broker_dir: Path | None,
              passwords: Path, sensor_every: int = 0) -> list[dict]:
    """Devices `<prefix>-0001…`: registry entries (keys; every sensor_every-th
    one a sensor) and broker accounts."""
    reg = json.loads(registry.read_text()) if registry.exists() else {"devices": []}
    known = {d["id"]: d for d in reg["devices"]}
    pw = json.loads(passwords.read_text()) if passwords.exists() else {}
    added = False
    for i in range(1, count + 1):
        dev = f"{prefix}-{i:04d}"
        if dev not in known:
            typ = "sensor" if sensor_every and i % sensor_every == 0 else "button"
            known[dev] = {"id": dev, "key": secrets.token_hex(32), "type": typ,
                          "household": f"H-{i:04d}", "grid": f"G-{i % 10:02d}"}
            reg["devices"].append(known[dev])
        if dev not in pw:
            if broker_dir is None:
                raise typer.BadParameter(f"{dev} has no broker password: give --broker-dir")
            from broker import layout

            pw[dev] = layout.add_device(broker_dir, dev)
            added = True
    registry.write_text(json.dumps(reg, indent=1))
    passwords.write_text(json.dumps(pw))
    if added and broker_dir is not None:
        from broker import layout

        layout.reload(broker_dir)
    return [{**known[f"{prefix}-{i:04d}"], "password": pw[f"{prefix}-{i:04d}"]}
            for i in range(1, count + 1)]


def spec(d: dict, cfg: FleetConfig, state: Path, floors: dict[str, int]) -> BoardSpec:
    return BoardSpec(d["id"], d["key"], d["password"], cfg.host, cfg.port,
                     state / "flash" / d["id"], type=d.get("type", "button"),
                     household=d.get("household", ""), grid=d.get("grid", ""),
                     heartbeat_s=cfg.heartbeat_s, telemetry_s=cfg.telemetry_s,
                     hold_ms=cfg.hold_ms, resend_ms=int(cfg.resend_s * 1000),
                     seq_floor=floors.get(d["id"], 1) - 1)


def run_fleet(devices: list[dict], cfg: FleetConfig, state: Path) -> dict:
    # next seq per device kept by the simulator before the boards had a flash
    floors = json.loads((state / "seqs.json").read_text()) if (state / "seqs.json").exists() \
        else {}
    rng = random.Random(cfg.seed)
    fleet = Fleet(tick_ms=cfg.tick_ms, per_thread=cfg.per_thread)
    schedules = []
    for d in devices:
        board = fleet.add(spec(d, cfg, state, floors))
        board.on_step = Schedule(cfg, random.Random(rng.random()))
        schedules.append(board.on_step)
    started = time.time()
    fleet.start()
    log.info("%d boards running the firmware; Ctrl-C ends the run early", len(devices))
    try:
        try:
            time.sleep(cfg.duration_s)
        except KeyboardInterrupt:
            log.info("interrupted after %.0f s: draining", time.time() - started)
        streamed = time.time() - started
        for s in schedules:
            s.active = False
        deadline = time.monotonic() + cfg.drain_s
        while time.monotonic() < deadline and not all(b.settled() for b in fleet.boards):
            time.sleep(0.2)
    finally:
        fleet.stop()
    for b in fleet.boards:  # not lost: the board sends them when it next runs
        obx = b.dev.obx
        b.report.in_flash_at_end = [s for s in obx.pending() if obx.kind(s) == "alarm"]
    reports = {b.id: b.report.as_dict() for b in fleet.boards}
    return {"started": started, "duration_s": streamed, "devices": reports,
            "totals": totals(reports, sum(b.unacked for b in fleet.boards))}


def totals(reports: dict[str, dict[str, Any]], unacked: int) -> dict[str, int]:
    def total(key: str) -> int:
        return sum(len(r[key]) if isinstance(r[key], list) else r[key] for r in reports.values())
    out = {k: total(k) for k in ("alarms", "stored", "telemetry", "heartbeats", "outages",
                                 "reboots", "in_flash_at_reboot", "in_flash_at_end",
                                 "telemetry_lost_on_device", "resends", "app_errors")}
    for kind in ("cancel", "restore"):
        out[kind + "s"] = sum(len(r["events"].get(kind, ())) for r in reports.values())
    out["unacked"] = unacked
    return out


def simulate(
    count: Annotated[int, typer.Option(help="How many simulated boards.")] = 10,
    registry: Annotated[Path, typer.Option(help="Device registry JSON (the gateway's).")] = Path(
        "devices.json"),
    broker_dir: Annotated[Path | None, typer.Option(
        help="Broker directory: accounts are added there for new devices.")] = None,
    host: Annotated[str, typer.Option(help="Broker host.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Broker port.")] = 1883,
    duration: Annotated[float, typer.Option(help="Seconds of streaming.")] = 30.0,
    telemetry_s: Annotated[int, typer.Option(
        min=1, max=3600, help="Telemetry period of the sensors (their config).")] = 10,
    heartbeat_s: Annotated[int, typer.Option(
        min=10, max=86400, help="Heartbeat period of every board (its config).")] = 60,
    alarm_every_s: Annotated[float, typer.Option(
        help="Mean seconds between presses (a leakage on a sensor) per board (0 = none).")]
        = 20.0,
    outage_every_s: Annotated[float, typer.Option(
        help="Mean seconds between link losses per board (0 = none).")] = 0.0,
    reboot_every_s: Annotated[float, typer.Option(
        help="Mean seconds between reboots per board, flash kept (0 = none).")] = 0.0,
    sensor_every: Annotated[int, typer.Option(
        min=0, help="New devices: every n-th is an electrical-safety sensor (0 = none).")] = 4,
    tick_ms: Annotated[int, typer.Option(
        min=1, help="Loop period of a quiet board, ms (socket data turns it at once).")] = 100,
    per_thread: Annotated[int, typer.Option(min=1, help="Boards per fleet thread.")] = 250,
    drain_s: Annotated[float, typer.Option(
        min=0, help="After the run: how long the boards may take to empty their flash "
                    "outbox (no new presses, reboots or outages meanwhile).")] = 15.0,
    prefix: Annotated[str, typer.Option(help="Device id prefix.")] = "sim",
    state_dir: Annotated[Path, typer.Option(
        help="Where the boards' flash and the passwords persist.")] = Path("sim-state"),
    report: Annotated[Path | None, typer.Option(help="Write the JSON report here.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed for the schedules.")] = None,
) -> None:
    """Run a fleet of simulated boards (the real firmware) and report what they sent."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    state_dir.mkdir(parents=True, exist_ok=True)
    devices = provision(count, prefix, registry, broker_dir, state_dir / "passwords.json",
                        sensor_every)
    cfg = FleetConfig(host=host, port=port, duration_s=duration, telemetry_s=telemetry_s,
                      heartbeat_s=heartbeat_s, alarm_every_s=alarm_every_s,
                      outage_every_s=outage_every_s, reboot_every_s=reboot_every_s,
                      tick_ms=tick_ms, per_thread=per_thread, drain_s=drain_s, seed=seed)
    result = run_fleet(devices, cfg, state_dir)
    text = json.dumps(result, indent=1)
    if report:
        report.write_text(text)
    typer.echo(json.dumps(result["totals"]))


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
