"""Simulated Homeguard devices for the demo and the tests (CPython, paho-mqtt).

A SimDevice speaks protocol v1 through the firmware's own protocol module
(hg.protocol): it signs with its key, keeps every event in an outbox until
the gateway's `stored` ack for its seq arrives, resends on reconnect with the
same seq, and persists its next seq so a restart never reuses one. It is the
walking skeleton's stand-in for the firmware apps, which run on boards (and
under CPython with a simulated hardware layer) with their own MQTT client.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hg import protocol

log = logging.getLogger("homeguard.sim")

# what the household sees on the button, from the latest ack for an alarm
INDICATOR = {
    None: "sending (blink)",
    "stored": "stored at gateway (slow blink)",
    "delivered": "centre received (steady)",
    "acknowledged": "operator on it (steady)",
    "dispatched": "help dispatched (steady)",
    "resolved": "resolved (off)",
}


@dataclass
class Pending:
    seq: int
    kind: str
    type: str
    data: dict
    ts: int | None
    mono: float  # time.monotonic() at the event, for "age"
    acks: list[str] = field(default_factory=list)


class SeqFile:
    """Next sequence number, persisted before use so it never repeats."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.next = json.loads(path.read_text())["next"] if path.exists() else 1
        self._lock = threading.Lock()  # paho's thread signs wills, the app presses

    def take(self) -> int:
        with self._lock:
            seq = self.next
            self.next += 1
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"next": self.next}))
            os.replace(tmp, self.path)
        return seq


class SimDevice:
    """One simulated device with its own MQTT connection and credentials."""

    def __init__(
        self,
        device_id: str,
        key: bytes,
        host: str,
        port: int,
        password: str,
        state_dir: Path,
        clock_synced: bool = True,
        resend_s: float = 5.0,
        tls_ca: str | None = None,
    ) -> None:
        self.id = device_id
        self.key = key
        self.clock_synced = clock_synced
        self.clock_offset_ms = 0  # corrected from the gateway's time in a NAK
        self.resend_s = resend_s
        state_dir.mkdir(parents=True, exist_ok=True)
        self.seqs = SeqFile(state_dir / f"{device_id}.seq.json")
        self.outbox: dict[int, Pending] = {}
        self.acks: dict[int, list[str]] = {}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._resender = threading.Thread(target=self._resend_loop, daemon=True)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sim-{device_id}", clean_session=True
        )
        self.client.username_pw_set(device_id, password)
        if tls_ca:
            self.client.tls_set(ca_certs=tls_ca)
        self._set_will()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 5)
        self.client.connect_async(host, port, keepalive=30)

    # -- lifecycle -------------------------------------------------------
    def start(self) -> SimDevice:
        self.client.loop_start()
        self._resender.start()
        return self

    def _resend_loop(self) -> None:
        """Resend unacked events every resend_s, as the firmware's outbox does."""
        while not self._stopping.wait(self.resend_s):
            self.resend_pending()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self._connected.wait(timeout)

    def stop(self) -> None:
        self._stopping.set()
        self.client.disconnect()
        self.client.loop_stop()

    # -- events ----------------------------------------------------------
    def _now_ms(self) -> int | None:
        if not self.clock_synced:
            return None
        return int(time.time() * 1000) + self.clock_offset_ms

    def _encode(self, kind: str, typ: str, data: dict) -> bytes:
        """A message sent once, right now, with a fresh seq."""
        return protocol.encode(self.key, self.id, self.seqs.take(), kind, typ, 0, data,
                               self._now_ms())

    def _wire(self, p: Pending) -> bytes:
        """An outbox entry as sent now: same seq, age grown since the event."""
        age = int((time.monotonic() - p.mono) * 1000)
        return protocol.encode(self.key, self.id, p.seq, p.kind, p.type, age, p.data, p.ts)

    def event(self, kind: str, typ: str, data: dict | None = None) -> int:
        """Record an event in the outbox and send it; returns its seq."""
        p = Pending(self.seqs.take(), kind, typ, dict(data or {}), self._now_ms(),
                    time.monotonic())
        with self._lock:
            self.outbox[p.seq] = p
        self._send(p)
        return p.seq

    def press(self, typ: str = "fire") -> int:
        seq = self.event("alarm", typ, {"btn": typ[0]})
        log.info("%s: %s alarm pressed, seq %d: %s", self.id, typ, seq, INDICATOR[None])
        return seq

    def telemetry(self, data: dict) -> None:
        self.client.publish(protocol.topic(self.id, "telemetry"),
                            self._encode("telemetry", "periodic", data), qos=0)

    def heartbeat(self, data: dict) -> None:
        self.client.publish(protocol.topic(self.id, "heartbeat"),
                            self._encode("heartbeat", "periodic", data), qos=1)

    def _send(self, p: Pending) -> None:
        if self._connected.is_set():
            self.client.publish(protocol.topic(self.id, "event"), self._wire(p), qos=1)

    def resend_pending(self) -> None:
        with self._lock:
            pending = sorted(self.outbox.values(), key=lambda p: p.seq)
        for p in pending:
            self._send(p)

    def indicator(self, seq: int) -> str:
        acks = self.acks.get(seq, [])
        return INDICATOR[acks[-1] if acks and acks[-1] in INDICATOR else None]

    def _set_will(self) -> None:
        """The retained `offline` last will, with a fresh seq for every
        connection and no ts: nobody knows when the broker will send it."""
        will = protocol.encode(self.key, self.id, self.seqs.take(), "status", "offline", 0, {})
        self.client.will_set(protocol.topic(self.id, "status"), will, 1, True)

    # -- MQTT callbacks --------------------------------------------------
    def _on_disconnect(self, client, userdata, flags, reason, props) -> None:  # noqa: ANN001
        self._connected.clear()
        self._set_will()

    def _on_connect(self, client, userdata, flags, reason, props) -> None:  # noqa: ANN001
        if reason.is_failure:
            log.warning("%s: connect refused: %s", self.id, reason)
            return
        self._connected.set()
        client.subscribe(protocol.topic(self.id, "ack"), qos=1)
        client.publish(protocol.topic(self.id, "status"),
                       self._encode("status", "online", {}), qos=1, retain=True)
        self.resend_pending()

    def _on_message(self, client, userdata, msg) -> None:  # noqa: ANN001
        try:
            m = protocol.verify(msg.topic, msg.payload, {self.id: self.key}.get)
        except protocol.Reject as exc:
            log.warning("%s: ignored downlink: %s", self.id, exc)
            return
        if m["kind"] != "ack":
            return
        ref = m["data"]["ref"]
        self.acks.setdefault(ref, []).append(m["type"])
        if m["type"] == "stored":
            with self._lock:
                self.outbox.pop(ref, None)
        elif m["type"] == "nak" and m["data"].get("reason") == protocol.R_SKEW:
            # our clock is off: take the gateway's, and resend the same seq
            # with its time from age only
            if "ts" in m:
                self.clock_offset_ms += m["ts"] - self._now_ms() if self.clock_synced else 0
            with self._lock:
                p = self.outbox.get(ref)
                if p is not None:
                    p.ts = None
            log.warning("%s: clock skew NAK for seq %d; resending without ts", self.id, ref)
            self.resend_pending()
        if m["type"] in INDICATOR:
            log.info("%s: seq %d %s", self.id, ref, INDICATOR[m["type"]])
