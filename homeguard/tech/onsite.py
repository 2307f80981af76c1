"""`homeguard device test`: an on-site test event, followed hop by hop.

The device sends a `test` event (kind test, type manual).  We watch it:
  broker   - the event on hg/v1/<id>/event (read with the gateway account)
  gateway  - the gateway's `stored` ack on hg/v1/<id>/ack (read with the
             device's own account: only it may read its downlink)
  centre   - the event listed by GET /api/v1/events?device=<id>
and report each hop with the milliseconds since the trigger.  A device we
run ourselves (--sim) reports the first two itself (mark()): the broker's
PUBACK and the gateway's ack as it receives them, with no MQTT session of
ours (the broker keys a session by its account: a second session with the
gateway's or the device's account would take theirs).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hg import protocol
from homeguard.tech.errors import TechError

HOPS = ("broker", "gateway", "centre")


@dataclass
class Hop:
    name: str
    ms: int | None  # since the trigger; None = not seen in time

    def __str__(self) -> str:
        return f"{self.name:8} {'not seen' if self.ms is None else f'{self.ms} ms'}"


@dataclass
class Access:
    host: str
    port: int
    gateway_user: str
    gateway_password: str
    device_password: str
    centre_url: str
    centre_token: str
    tls_ca: str | None = None


class HopWatch:
    def __init__(self, device_id: str, access: Access) -> None:
        self.id = device_id
        self.a = access
        self.t0 = 0.0
        self.seq: int | None = None
        self.seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._early: list[tuple[str, int, float]] = []  # (hop, seq, when) before seq was known
        self._clients: list[mqtt.Client] = []

    def _client(self, user: str, password: str, topics: list[str]) -> mqtt.Client:
        """Watch `topics`: a device's event leaf is the broker hop, its ack leaf
        the gateway hop."""
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user)
        c.username_pw_set(user, password)
        if self.a.tls_ca:
            c.tls_set(ca_certs=self.a.tls_ca)
        subscribed = threading.Event()
        c.on_connect = lambda cl, u, f, rc, p: (
            cl.subscribe([(t, 1) for t in topics]) if not rc.is_failure else None)
        c.on_subscribe = lambda *_: subscribed.set()
        c.on_message = lambda _c, _u, msg: self._message(
            "gateway" if msg.topic.endswith("/ack") else "broker", bytes(msg.payload))
        # a just-made account may need a moment (paho takes a float; typed int)
        c.reconnect_delay_set(0.2, 1)  # type: ignore[arg-type]
        c.connect_async(self.a.host, self.a.port, keepalive=30)
        c.loop_start()
        self._clients.append(c)
        if not subscribed.wait(15):
            raise TechError(f"could not watch {', '.join(topics)} on "
                            f"{self.a.host}:{self.a.port} as {user}")
        return c

    def _message(self, hop: str, payload: bytes) -> None:
        try:
            m = json.loads(payload)
            seq = m["data"]["ref"] if hop == "gateway" else m["seq"]
            if hop == "gateway" and m.get("type") != "stored":
                return
        except (ValueError, KeyError, TypeError):
            return
        self.mark(hop, seq)

    def mark(self, hop: str, seq: int) -> None:
        """`hop` has seen the event `seq` (now)."""
        now = time.monotonic()
        with self._lock:
            if self.seq is None:
                self._early.append((hop, seq, now))
            elif seq == self.seq:
                self.seen.setdefault(hop, now)

    def start(self, mqtt_watch: bool = True) -> HopWatch:
        """Watch the broker and gateway hops over MQTT, unless the device is
        ours and reports them (mark())."""
        if mqtt_watch:
            # one connection, on a service account of its own (the broker keys
            # sessions by account: the gateway's or the device's own would be
            # taken over), watching the device's events and its acks
            self._client(self.a.gateway_user, self.a.gateway_password,
                         [protocol.topic(self.id, "event"), protocol.topic(self.id, "ack")])
        return self

    def stop(self) -> None:
        for c in self._clients:
            c.disconnect()
            c.loop_stop()

    def _centre_has(self, seq: int) -> bool:
        try:
            r = httpx.get(f"{self.a.centre_url.rstrip('/')}/api/v1/events",
                          params={"device": self.id, "limit": 50}, timeout=5,
                          headers={"Authorization": f"Bearer {self.a.centre_token}"})
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and any(e.get("seq") == seq for e in r.json())

    def run(self, trigger: Callable[[], int], timeout: float = 30) -> list[Hop]:
        """trigger() makes the device send its test event and returns its seq."""
        self.t0 = time.monotonic()
        seq = trigger()
        with self._lock:
            self.seq = seq
            for hop, s, when in self._early:
                if s == seq:
                    self.seen.setdefault(hop, when)
        deadline = self.t0 + timeout
        while time.monotonic() < deadline and "centre" not in self.seen:
            if self._centre_has(seq):
                self.seen["centre"] = time.monotonic()
            else:
                time.sleep(0.2)
        time.sleep(0.1 if len(self.seen) < len(HOPS) else 0)  # an ack racing the poll
        return [Hop(h, int((self.seen[h] - self.t0) * 1000) if h in self.seen else None)
                for h in HOPS]
