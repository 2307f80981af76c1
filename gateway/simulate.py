"""`homeguard simulate`: a fleet of virtual devices, each with its own MQTT
connection and credentials, speaking protocol v1 through hg.protocol.

Each device sends heartbeats and telemetry at the configured rates, presses
alarms on a random schedule, keeps every alarm in its outbox until the
gateway's `stored` ack arrives, resends unacked alarms with the same seq,
and now and then loses its connection or reboots, replaying its outbox when
it is back. Its "flash" is a JSON file per device in the state directory
(written temp + rename): the outbox and a sequence-number reservation taken
SEQ_BLOCK at a time, so a reboot (all memory lost) keeps every pending alarm
and never reuses a seq. Telemetry goes at QoS 1 and counts as sent once the
broker has acknowledged it (`telemetry_seqs`); one the link loses first is
counted as shed on the device (`telemetry_lost_on_device`).

At the end it writes a JSON report of what every device sent and what was
acknowledged, so a run can be reconciled with what the centre stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import aiomqtt
import typer

from hg import protocol

log = logging.getLogger("homeguard.simulate")
ALARM_TYPES = ("fire", "medical", "security")
SEQ_BLOCK = 50


class Reboot(Exception):  # noqa: N818 - an event, not an error
    """The simulated device restarts: everything not in its flash is gone."""


@dataclass
class FleetConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    duration_s: float = 30.0
    telemetry_s: float = 10.0
    heartbeat_s: float = 60.0
    alarm_every_s: float = 20.0  # mean time between presses, per device
    outage_every_s: float = 0.0  # mean time between connection losses (0 = never)
    outage_s: float = 2.0
    reboot_every_s: float = 0.0  # mean time between reboots (0 = never)
    resend_s: float = 3.0
    drain_s: float = 15.0  # after duration: wait this long for outstanding acks
    seed: int | None = None


@dataclass
class DeviceReport:
    alarms: list[int] = field(default_factory=list)
    stored: list[int] = field(default_factory=list)
    telemetry: int = 0
    heartbeats: int = 0
    outages: int = 0
    reboots: int = 0
    resends: int = 0
    telemetry_seqs: list[int] = field(default_factory=list)
    telemetry_lost_on_device: int = 0


class VirtualDevice:
    def __init__(self, dev: str, key: bytes, password: str, next_seq: int,
                 cfg: FleetConfig, rng: random.Random, flash: Path) -> None:
        self.id = dev
        self.key = key
        self.password = password
        self.cfg = cfg
        self.rng = rng
        self.flash = flash
        # seq -> (type, data, ts, wall-clock ms of the press)
        self.outbox: dict[int, tuple[str, dict, int | None, int]] = {}
        self.next_seq = next_seq
        self.reserved = 0  # seqs below this are reserved in flash
        self.report = DeviceReport()
        self.boot()

    def boot(self) -> None:
        """Start from what the flash holds, as after a power cycle."""
        saved = json.loads(self.flash.read_text()) if self.flash.exists() else {}
        self.outbox = {int(k): (v[0], v[1], v[2], v[3])
                       for k, v in saved.get("outbox", {}).items()}
        # the seqs reserved before the reboot may have been used: skip them all
        self.next_seq = max(self.next_seq, saved.get("reserved", 1))
        self.reserved = self.next_seq

    def _save(self) -> None:
        tmp = self.flash.with_suffix(".tmp")
        tmp.write_text(json.dumps({"reserved": self.reserved, "outbox": self.outbox}))
        tmp.replace(self.flash)

    def _seq(self) -> int:
        if self.next_seq >= self.reserved:
            self.reserved = self.next_seq + SEQ_BLOCK
            self._save()
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def _encode(self, kind: str, typ: str, data: dict, ts: int | None = None) -> bytes:
        return protocol.encode(self.key, self.id, self._seq(), kind, typ, 0, data, ts)

    def _alarm_wire(self, seq: int) -> bytes:
        typ, data, ts, pressed_ms = self.outbox[seq]
        age = max(0, int(time.time() * 1000) - pressed_ms)
        return protocol.encode(self.key, self.id, seq, "alarm", typ, age, data, ts)

    async def run(self, until: float) -> None:
        """Connect, stream, survive outages until `until` (monotonic), then drain."""
        while time.monotonic() < until + self.cfg.drain_s:
            if time.monotonic() >= until and not self.outbox:
                return
            try:
                await self._session(until)
            except aiomqtt.MqttError as exc:
                log.debug("%s: link lost: %s", self.id, exc)
            except Reboot:
                self.report.reboots += 1
                self.boot()
            if time.monotonic() < until:
                self.report.outages += 1
                await asyncio.sleep(self.cfg.outage_s)
            else:
                await asyncio.sleep(0.5)

    async def _session(self, until: float) -> None:
        will = aiomqtt.Will(protocol.topic(self.id, "status"),
                            self._encode("status", "offline", {}), qos=1, retain=True)
        async with aiomqtt.Client(self.cfg.host, self.cfg.port, username=self.id,
                                  password=self.password, identifier=f"sim-{self.id}",
                                  will=will, keepalive=30, timeout=10) as client:
            await client.subscribe(protocol.topic(self.id, "ack"), qos=1)
            now = int(time.time() * 1000)
            await client.publish(protocol.topic(self.id, "status"),
                                 self._encode("status", "online", {}, now), qos=1, retain=True)
            tasks = [asyncio.create_task(t) for t in (
                self._acks(client), self._resend(client), self._streams(client, until))]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    t.result()
            finally:
                for t in tasks:
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                        await t

    async def _acks(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                continue
            try:
                m = protocol.verify(str(message.topic), bytes(payload), {self.id: self.key}.get)
            except protocol.Reject as exc:
                log.warning("%s: bad downlink: %s", self.id, exc)
                continue
            ref = m["data"].get("ref")
            if m["type"] == "stored" and self.outbox.pop(ref, None) is not None:
                self.report.stored.append(ref)
                self._save()
            elif m["type"] == "nak":
                entry = self.outbox.get(ref)
                if entry is not None:  # our clock is off: resend with age only
                    self.outbox[ref] = (entry[0], entry[1], None, entry[3])

    async def _resend(self, client: aiomqtt.Client) -> None:
        for seq in sorted(self.outbox):  # replay after (re)connect, in order
            await client.publish(protocol.topic(self.id, "event"), self._alarm_wire(seq), qos=1)
        while True:
            await asyncio.sleep(self.cfg.resend_s)
            for seq in sorted(self.outbox):
                self.report.resends += 1
                await client.publish(protocol.topic(self.id, "event"), self._alarm_wire(seq),
                                     qos=1)

    async def _streams(self, client: aiomqtt.Client, until: float) -> None:
        cfg, rng = self.cfg, self.rng
        due = {"tele": rng.uniform(0, cfg.telemetry_s), "hb": rng.uniform(0, cfg.heartbeat_s),
               "alarm": rng.expovariate(1 / cfg.alarm_every_s) if cfg.alarm_every_s else 1e18,
               "outage": rng.expovariate(1 / cfg.outage_every_s) if cfg.outage_every_s else 1e18,
               "reboot": rng.expovariate(1 / cfg.reboot_every_s) if cfg.reboot_every_s else 1e18}
        start = time.monotonic()
        while time.monotonic() < until:
            t = time.monotonic() - start
            if t >= due["tele"]:
                due["tele"] += cfg.telemetry_s
                data = {"i_avg": rng.randint(0, 16000), "v_avg": rng.randint(215000, 240000),
                        "leak_ma": rng.randint(0, 60), "t_dc": rng.randint(150, 450)}
                await self._telemetry(client, data)
            if t >= due["hb"]:
                due["hb"] += cfg.heartbeat_s
                await client.publish(protocol.topic(self.id, "heartbeat"), self._encode(
                    "heartbeat", "periodic", {"obx": len(self.outbox), "fw": "sim"}), qos=1)
                self.report.heartbeats += 1
            if t >= due["alarm"]:
                due["alarm"] += rng.expovariate(1 / cfg.alarm_every_s)
                await self.press(client, rng.choice(ALARM_TYPES))
            if t >= due["outage"]:
                due["outage"] += rng.expovariate(1 / cfg.outage_every_s)
                raise aiomqtt.MqttError("simulated outage")
            if t >= due["reboot"]:
                raise Reboot
            await asyncio.sleep(min(0.2, max(0.0, min(due.values()) - t)))
        # drain: acks and resends keep running until the outbox is empty
        while self.outbox and time.monotonic() < until + cfg.drain_s:
            await asyncio.sleep(0.2)

    async def _telemetry(self, client: aiomqtt.Client, data: dict) -> None:
        seq = self.next_seq
        wire = self._encode("telemetry", "periodic", data, int(time.time() * 1000))
        try:
            await client.publish(protocol.topic(self.id, "telemetry"), wire, qos=1)
        except aiomqtt.MqttError:
            self.report.telemetry_lost_on_device += 1  # a device sheds it, not resent
            raise
        self.report.telemetry += 1
        self.report.telemetry_seqs.append(seq)

    async def press(self, client: aiomqtt.Client, typ: str) -> int:
        seq = self._seq()
        now = int(time.time() * 1000)
        self.outbox[seq] = (typ, {"btn": typ[0]}, now, now)
        self._save()  # in flash before it is sent
        self.report.alarms.append(seq)
        await client.publish(protocol.topic(self.id, "event"), self._alarm_wire(seq), qos=1)
        return seq


def provision(count: int, prefix: str, registry: Path, broker_dir: Path | None,
              passwords: Path) -> list[dict]:
    """Devices `<prefix>-0001…`: registry entries (keys) and broker accounts."""
    reg = json.loads(registry.read_text()) if registry.exists() else {"devices": []}
    known = {d["id"]: d for d in reg["devices"]}
    pw = json.loads(passwords.read_text()) if passwords.exists() else {}
    added = False
    for i in range(1, count + 1):
        dev = f"{prefix}-{i:04d}"
        if dev not in known:
            known[dev] = {"id": dev, "key": secrets.token_hex(32), "type": "button",
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


async def run_fleet(devices: list[dict], cfg: FleetConfig, state: Path) -> dict:
    seqs = json.loads(state.read_text()) if state.exists() else {}
    rng = random.Random(cfg.seed)
    flash = state.parent / "flash"
    flash.mkdir(parents=True, exist_ok=True)
    fleet = [VirtualDevice(d["id"], bytes.fromhex(d["key"]), d["password"],
                           seqs.get(d["id"], 1), cfg, random.Random(rng.random()),
                           flash / f"{d['id']}.json")
             for d in devices]
    until = time.monotonic() + cfg.duration_s
    started = time.time()
    try:
        await asyncio.gather(*(d.run(until) for d in fleet))
    finally:
        # every seq handed out is burnt, sent or not: never reuse one
        state.write_text(json.dumps({d.id: d.next_seq for d in fleet}))
    reports = {d.id: vars(d.report) for d in fleet}
    return {
        "started": started, "duration_s": cfg.duration_s, "devices": reports,
        "totals": {
            "alarms": sum(len(r["alarms"]) for r in reports.values()),
            "stored": sum(len(r["stored"]) for r in reports.values()),
            "unacked": sum(len(d.outbox) for d in fleet),
            "telemetry": sum(r["telemetry"] for r in reports.values()),
            "heartbeats": sum(r["heartbeats"] for r in reports.values()),
            "outages": sum(r["outages"] for r in reports.values()),
            "reboots": sum(r["reboots"] for r in reports.values()),
            "telemetry_lost_on_device": sum(r["telemetry_lost_on_device"]
                                            for r in reports.values()),
            "resends": sum(r["resends"] for r in reports.values()),
        },
    }


def simulate(
    count: Annotated[int, typer.Option(help="How many virtual devices.")] = 10,
    registry: Annotated[Path, typer.Option(help="Device registry JSON (the gateway's).")] = Path(
        "devices.json"),
    broker_dir: Annotated[Path | None, typer.Option(
        help="Broker directory: accounts are added there for new devices.")] = None,
    host: Annotated[str, typer.Option(help="Broker host.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Broker port.")] = 1883,
    duration: Annotated[float, typer.Option(help="Seconds of streaming.")] = 30.0,
    telemetry_s: Annotated[float, typer.Option(help="Telemetry period per device.")] = 10.0,
    heartbeat_s: Annotated[float, typer.Option(help="Heartbeat period per device.")] = 60.0,
    alarm_every_s: Annotated[float, typer.Option(
        help="Mean seconds between alarm presses per device (0 = none).")] = 20.0,
    outage_every_s: Annotated[float, typer.Option(
        help="Mean seconds between connection losses per device (0 = none).")] = 0.0,
    reboot_every_s: Annotated[float, typer.Option(
        help="Mean seconds between reboots per device, outbox kept in flash (0 = none).")] = 0.0,
    prefix: Annotated[str, typer.Option(help="Device id prefix.")] = "sim",
    state_dir: Annotated[Path, typer.Option(help="Where seqs and passwords persist.")] = Path(
        "sim-state"),
    report: Annotated[Path | None, typer.Option(help="Write the JSON report here.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed for a repeatable run.")] = None,
) -> None:
    """Run a fleet of virtual devices against the broker and report what they sent."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    state_dir.mkdir(parents=True, exist_ok=True)
    devices = provision(count, prefix, registry, broker_dir, state_dir / "passwords.json")
    cfg = FleetConfig(host=host, port=port, duration_s=duration, telemetry_s=telemetry_s,
                      heartbeat_s=heartbeat_s, alarm_every_s=alarm_every_s,
                      outage_every_s=outage_every_s, reboot_every_s=reboot_every_s, seed=seed)
    result = asyncio.run(run_fleet(devices, cfg, state_dir / "seqs.json"))
    text = json.dumps(result, indent=1)
    if report:
        report.write_text(text)
    typer.echo(json.dumps(result["totals"]))


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
