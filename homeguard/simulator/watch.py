"""What a simulated board's firmware did, seen from outside it through its
public seams (homeguard/simulator/board.py): the device handle the app is given
(`app.attach`) notes every event and telemetry point the app sent; the MQTT
client's publishes in flight (`client.inflight`) and `on_puback` tell which
publishes the broker acknowledged (telemetry and heartbeats are counted) and
which events went out again; `on_message` wrapped around the device's own handler gives every ack
the device accepted.  The record outlives the board's reboots."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from hg import protocol
from hg.device import Device


@dataclass
class BoardReport:
    """What the board sent and what came back, over every boot."""
    type: str
    alarms: list[int] = field(default_factory=list)  # seqs of kind alarm
    events: dict[str, list[int]] = field(default_factory=dict)  # other kinds -> seqs
    stored: list[int] = field(default_factory=list)  # alarms with a `stored` ack
    telemetry: int = 0  # points the broker acknowledged
    telemetry_seqs: list[int] = field(default_factory=list)
    telemetry_made: int = 0
    heartbeats: int = 0  # acknowledged by the broker
    outages: int = 0
    reboots: int = 0
    in_flash_at_reboot: int = 0  # events not yet acked when the power went
    in_flash_at_end: list[int] = field(default_factory=list)  # alarms in flash when the run ended
    resends: int = 0  # events published again (same seq), DUP resends included
    app_errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["telemetry_lost_on_device"] = self.telemetry_made - self.telemetry
        return d


class Recorder:
    """The device as the app sees it: every call goes to hg.device, what the
    app sent is noted on the way."""

    def __init__(self, dev: Device, watch: Watch) -> None:
        self.dev = dev
        self.watch = watch

    def send_event(self, typ: str, data: dict | None = None, kind: str = "alarm") -> int:
        seq: int = self.dev.send_event(typ, data, kind)
        self.watch.sent_event(seq, kind, typ)
        return seq

    def send_telemetry(self, data: dict, kind: str = "telemetry") -> int:
        seq: int = self.dev.send_telemetry(data, kind)
        self.watch.report.telemetry_made += 1
        return seq

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dev, name)


class Watch:
    def __init__(self, typ: str, on_event: Callable[[int, str, str], None]) -> None:
        self.report = BoardReport(typ)
        self.acks: dict[int, list[str]] = {}  # seq -> ack types the device accepted
        self.wires: dict[int, bytes] = {}  # event seq -> the bytes first published
        self.on_event = on_event  # (seq, kind, type) of each event the app sent
        self.on_ack: Callable[[int, str], None] | None = None  # (ref, type) of each ack
        # (topic leaf, seq) of each publish the broker acknowledged
        self.on_puback: Callable[[str, int], None] | None = None
        self._alarms: set[int] = set()
        self._seen: dict[int, list] = {}  # pid -> the client's inflight entry
        self.dev: Device | None = None

    def attach(self, dev: Device, app: Any) -> Recorder:
        """Watch a freshly booted runtime; returns the app's device handle."""
        if self.dev is not None and self.dev.link is not None:
            self.report.resends += self.dev.link.resends  # the last boot's DUPs
        self.dev = dev
        self._seen = {}
        client = dev.link.client
        client.on_puback = self._puback
        handler = client.on_message
        client.on_message = lambda topic, payload: self._downlink(topic, payload, handler)
        recorder = Recorder(dev, self)
        app.attach(recorder)
        return recorder

    def close(self) -> None:
        if self.dev is not None and self.dev.link is not None:
            self.report.resends += self.dev.link.resends
        self.dev = None

    def sent_event(self, seq: int, kind: str, typ: str) -> None:
        if kind == "alarm":
            self.report.alarms.append(seq)
            self._alarms.add(seq)
        else:
            self.report.events.setdefault(kind, []).append(seq)
        self.on_event(seq, kind, typ)

    def scan(self) -> None:
        """Note publishes the client took since the last look (a publish and
        its PUBACK are never handled in one client poll)."""
        assert self.dev is not None
        for pid, entry in self.dev.link.client.inflight.items():
            if self._seen.get(pid) is not entry:
                self._seen[pid] = entry
                if entry[0].endswith("/event"):
                    seq = _seq(entry[1])
                    if seq in self.wires:
                        self.report.resends += 1
                    else:
                        self.wires[seq] = entry[1]

    def _puback(self, pid: int) -> None:
        entry = self._seen.pop(pid, None)
        if entry is None:
            return
        leaf = entry[0].rsplit("/", 1)[1]
        if leaf == "telemetry":
            self.report.telemetry += 1
            self.report.telemetry_seqs.append(_seq(entry[1]))
        elif leaf == "heartbeat":
            self.report.heartbeats += 1
        if self.on_puback is not None:
            self.on_puback(leaf, _seq(entry[1]))

    def _downlink(self, topic: str, payload: bytes, handler: Callable[[str, bytes], None]) -> None:
        assert self.dev is not None
        bad = self.dev.bad_downlink
        handler(topic, payload)
        if self.dev.bad_downlink != bad or not topic.endswith("/ack"):
            return  # refused by the device, or not an ack
        m = protocol.parse(payload)[0]
        ref = m["data"].get("ref")
        acks = self.acks.setdefault(ref, [])
        if m["type"] == "stored" and "stored" not in acks and ref in self._alarms:
            self.report.stored.append(ref)
        acks.append(m["type"])
        if self.on_ack is not None:
            self.on_ack(ref, m["type"])


def _seq(wire: bytes) -> int:
    return int(protocol.parse(wire)[0]["seq"])
