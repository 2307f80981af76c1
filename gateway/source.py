"""MQTT source: paho-mqtt with a persistent session and manual PUBACK.

MQTT 3.1.1 with clean_session=False and a fixed client id: Mosquitto keeps
the subscriptions and queues QoS 1 messages while the gateway is away.
manual_ack=True: the PUBACK for a message goes to the broker only after the
pipeline has committed it (or rejected it on purpose), so a gateway killed
in between gets the message again when it reconnects.

The gateway runs two sources, each its own session (its own broker account):
events, heartbeats and status on one, telemetry on the other. Mosquitto
queues each session's messages in order, so with one session an alarm
waited behind every telemetry message queued before it; with two, telemetry
queues apart and no alarm ever waits behind it in the broker.
"""

from __future__ import annotations

import itertools
import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import partial

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import MQTTSection
from gateway.freshness import Away
from gateway.outcome import Outcome

log = logging.getLogger("homeguard.gateway.mqtt")

LEAVES = ("event", "telemetry", "heartbeat", "status")
EVENT_LEAVES = ("event", "heartbeat", "status")  # the events session
TELEMETRY_LEAVES = ("telemetry",)  # the telemetry session
TOPICS = [(f"hg/v1/+/{leaf}", 1) for leaf in LEAVES]


# in a share group every gateway still hears every heartbeat and last will,
# so each one's supervision sees every device (supervision.py)
UNSHARED = ("heartbeat", "status")


def topics(share_group: str = "", leaves: tuple[str, ...] = LEAVES) -> list[tuple[str, int]]:
    """The subscriptions for these leaves; in a shared group ($share/<group>/...)
    the broker hands each event and telemetry message to one of the group's gateways."""
    mine = [(t, qos) for t, qos in TOPICS if t.rsplit("/", 1)[1] in leaves]
    if not share_group:
        return mine
    return [(t if t.rsplit("/", 1)[1] in UNSHARED else f"$share/{share_group}/{t}", qos)
            for t, qos in mine]


def not_mine(share_group: str, leaves: tuple[str, ...]) -> list[str]:
    """Filters of the other leaves, plain and shared: a session from an older
    gateway (one session for everything) still holds them, and unsubscribes."""
    others = tuple(leaf for leaf in LEAVES if leaf not in leaves)
    plain = [t for t, _ in topics("", others)]
    return plain + ([f"$share/{share_group}/{t}" for t in plain] if share_group else [])


def tuned_client() -> type[mqtt.Client]:
    """The tuned reader's client class; refused on a paho it was not built for."""
    from paho.mqtt import __version__ as paho_version

    from gateway.config import ConfigError
    from gateway.mqttclient import TESTED_PAHO, Client

    if not paho_version.startswith(TESTED_PAHO):
        raise ConfigError(f"[mqtt] reader = \"tuned\" hooks paho-mqtt {TESTED_PAHO}x's "
                          f"internals; this is paho-mqtt {paho_version}: use reader = \"paho\"")
    return Client


# the last reason logged for not reaching a broker (host, port), shared by a
# gateway's sessions: one line per reason, not one per session
_UNREACHABLE: dict[tuple[str, int], str] = {}

PUBACK = 0x40  # MQTT packet type; its fixed header is 0x40 0x02, then the mid


# a handler returning HOLD has neither stored nor rejected the message (an
# unexpected error): no PUBACK, so the broker redelivers it on the next connect
HOLD = Outcome.HELD


class Deferred:
    """A handler's outcome when the message is committed later (the lanes):
    the PUBACK goes out once both the source has attached it and the lane
    has called done(), in whichever order those happen, exactly once."""

    __slots__ = ("outcome", "_release", "_gate")

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self._release: Callable[[], object] | None = None
        # attach() and done() each take a number; next() is atomic, so exactly
        # one of them gets 1, and that one (the later) releases
        self._gate = itertools.count()

    def attach(self, release: Callable[[], object]) -> None:
        self._release = release
        self._arrive()

    def done(self) -> None:
        self._arrive()

    def _arrive(self) -> None:
        if next(self._gate) and self._release is not None:
            self._release()

    def __repr__(self) -> str:
        return f"Deferred({self.outcome!r})"


class MQTTSource:
    """One persistent session: subscribes to `leaves`, hands each message to
    `handle` and PUBACKs it after the outcome (a Deferred: after the commit)."""

    def __init__(self, cfg: MQTTSection,
                 handle: Callable[[str, bytes, int, bool], str | Deferred],
                 away: Away | None = None, leaves: tuple[str, ...] = LEAVES,
                 name: str = "events") -> None:
        self.cfg = cfg
        self.handle = handle
        self.away = away  # told when the session stops and starts being consumed
        self.leaves = leaves
        self.name = name
        self.on_subscribed: Callable[[], object] = lambda: None
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker granted every subscription
        self.stopping = threading.Event()
        make = tuned_client() if cfg.reader == "tuned" else mqtt.Client
        self.client = make(CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                           clean_session=False, manual_ack=True)
        self.client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls_ca:
            self.client.tls_set(ca_certs=str(cfg.tls_ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(1, 10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        # PUBACKs released by the lanes wait here until flush_acks() sends them
        self._acks: deque[int] = deque()
        # held while a message is handled: stop() lets the one in hand finish
        # (its PUBACK released) before it sends the last PUBACKs and DISCONNECT
        self._handling = threading.Lock()
        # stock paho sends each client.ack() as its own write; the tuned reader
        # queues a run of PUBACKs as one write through paho 2.2's packet queue
        self._queue_packet = (getattr(self.client, "_packet_queue", None)
                              if cfg.reader == "tuned" else None)

    def start(self) -> None:
        self.client.connect_async(self.cfg.host, self.cfg.port, self.cfg.keepalive)
        self.client.loop_start()

    def stop(self, flush_s: float = 5.0) -> None:
        """Disconnect once what is queued (the last PUBACKs, then DISCONNECT)
        is written: paho's loop thread would otherwise stop before writing
        them, and the broker would hand those messages over again. A message
        being handled when stop() is called finishes first, so its PUBACK
        (when its outcome is already known) is not left behind the DISCONNECT;
        one that arrives after is left unacknowledged for the next start."""
        self.stopping.set()  # first: a handler retrying a failed store gives up
        with self._handling:
            self.flush_acks()
            self.client.disconnect()
        deadline = time.monotonic() + flush_s
        while self.client.want_write() and time.monotonic() < deadline:
            time.sleep(0.005)
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def _on_connect(self, client, userdata, flags, reason, props) -> None:  # noqa: ANN001
        if reason.is_failure:
            log.error("broker refused connection reason=%s", reason)
            return
        _UNREACHABLE.pop((self.cfg.host, self.cfg.port), None)
        log.info("connected session=%s user=%s broker=%s:%d session_present=%s", self.name,
                 self.cfg.username, self.cfg.host, self.cfg.port, flags.session_present)
        client.subscribe(topics(self.cfg.share_group, self.leaves))
        stale = not_mine(self.cfg.share_group, self.leaves)
        if flags.session_present and stale:
            client.unsubscribe(stale)
        self.connected.set()

    def _on_connect_fail(self, client, userdata) -> None:  # noqa: ANN001
        """The broker cannot be reached (paho does not say why): one line
        with the reason a plain TCP connect gives, once per new reason, and
        paho keeps retrying (1 s rising to 10 s)."""
        try:
            socket.create_connection((self.cfg.host, self.cfg.port), timeout=3).close()
            why = "TCP connects; the MQTT connection failed (TLS settings?)"
        except OSError as exc:
            why = exc.strerror or str(exc) or type(exc).__name__
        if _UNREACHABLE.get((self.cfg.host, self.cfg.port)) != why:
            _UNREACHABLE[(self.cfg.host, self.cfg.port)] = why
            log.error("cannot reach the broker at %s:%d: %s; retrying (is Mosquitto running "
                      "there? [mqtt] host/port in the config)", self.cfg.host, self.cfg.port, why)

    def _on_subscribe(self, client, userdata, mid, reasons, props) -> None:  # noqa: ANN001
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            log.error("broker refused subscriptions session=%s reasons=%s", self.name,
                      ",".join(failed))
        else:
            if self.away is not None:
                self.away.back(int(time.time() * 1000), self.name)
            self.subscribed.set()
            log.info("subscribed session=%s topics=%s", self.name,
                     ",".join(t for t, _ in topics(self.cfg.share_group, self.leaves)))
            self.on_subscribed()

    def _on_disconnect(self, client, userdata, flags, reason, props) -> None:  # noqa: ANN001
        if self.away is not None:
            self.away.left(int(time.time() * 1000), self.name)
        self.connected.clear()
        self.subscribed.clear()
        log.warning("disconnected from broker session=%s reason=%s (reconnecting)", self.name,
                    reason)

    def _on_message(self, client, userdata, msg) -> None:  # noqa: ANN001
        with self._handling:
            if not self.stopping.is_set():  # else: redelivered on the next start
                self._handle(client, msg)

    def _handle(self, client, msg) -> None:  # noqa: ANN001
        received_ms = int(time.time() * 1000)
        delay = 0.1
        while True:
            try:
                outcome = self.handle(msg.topic, msg.payload, received_ms, bool(msg.retain))
                break
            except Exception:
                # not committed: hold this message (and the ones behind it) and
                # try again; without our PUBACK the broker keeps it for us
                log.exception("store failed topic=%s; retrying in %.1fs", msg.topic, delay)
                if self.stopping.wait(delay):
                    return  # shutting down: no PUBACK, redelivered on next start
                delay = min(delay * 2, 10.0)
        if isinstance(outcome, Deferred):
            if msg.qos:
                outcome.attach(partial(self._acks.append, msg.mid))
            if self._acks:  # already committed (or shed) before it was attached
                self.flush_acks()
        elif outcome != HOLD:
            client.ack(msg.mid, msg.qos)

    def flush_acks(self) -> None:
        """Send the released PUBACKs (the lanes call this once per batch)."""
        mids: list[int] = []
        pop = self._acks.popleft
        try:
            while True:
                mids.append(pop())
        except IndexError:
            pass
        if not mids:
            return
        if self._queue_packet is None:
            for mid in mids:
                self.client.ack(mid, 1)
            return
        self._queue_packet(PUBACK, b"".join(b"\x40\x02" + m.to_bytes(2, "big") for m in mids),
                           0, 0)
