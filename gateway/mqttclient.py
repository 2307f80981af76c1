"""paho's MQTT client, tuned for a subscriber that takes thousands of
messages a second (the gateway's source).

- ReadAhead: the broker connection read 64 KB at a time.
- Client.loop_read: the packets already read are handled before paho's loop
  goes back to select().
- No per-topic callback table: one on_message takes every message.
- Client._handle_publish: an MQTT 3.1.1 PUBLISH of QoS 0 or 1 becomes a
  small Message (topic, payload, mid, qos, dup, retain) handed straight to
  on_message; paho builds a full MQTTMessage, with a threading.Condition
  for publish tracking that an incoming message never uses, logs it and
  takes two locks around the callback. Anything else (MQTT 5, QoS 2, a
  topic that is not UTF-8, a malformed packet) takes paho's own path.

These hook into paho's internals (its socket factory and its callback
table), so this reader is optional ([mqtt] reader = "tuned"; the default is
stock paho through its public API), refused on any paho but TESTED_PAHO,
and tests/test_gateway_flow.py runs the source's contract on both readers
and checks that the hooks are in effect.
"""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt

TESTED_PAHO = "2.2."  # the paho-mqtt release these hooks were written for
READ_AHEAD = 65536
READ_BURST = 500  # packets handled from the read-ahead buffer per turn of paho's loop


class ReadAhead:
    """The broker connection with reads of up to 64 KB at a time.

    paho reads every packet in three or more recv() calls (the type byte,
    the length bytes one by one, the rest), each a system call that gives up
    the GIL to the lane threads; this serves those small reads from one large
    read instead. pending() tells paho's loop that bytes are waiting here, so
    it does not sleep in select() while they are (paho asks it of TLS sockets
    for the same reason). Everything else goes to the socket itself."""

    def __init__(self, sock: object) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, n: int) -> bytes:
        buf, pos = self._buf, self._pos
        if pos >= len(buf):
            buf = self._sock.recv(READ_AHEAD)  # type: ignore[attr-defined]
            if not buf:
                return buf  # the broker closed the connection
            pos = 0
        self._buf, self._pos = buf, min(pos + n, len(buf))
        return buf[pos:pos + n]

    def pending(self) -> int:
        inner = getattr(self._sock, "pending", None)  # a TLS socket's own buffer
        return len(self._buf) - self._pos + (inner() if inner is not None else 0)

    def held(self) -> int:
        """Bytes read from the socket and not yet handed to paho."""
        return len(self._buf) - self._pos

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)


class Message:
    """An incoming PUBLISH, with the fields of paho's MQTTMessage a handler reads."""

    __slots__ = ("topic", "payload", "mid", "qos", "dup", "retain", "timestamp", "properties")

    def __init__(self, topic: str, payload: bytes, mid: int, qos: int, dup: bool,
                 retain: bool) -> None:
        self.topic = topic
        self.payload = payload
        self.mid = mid
        self.qos = qos
        self.dup = dup
        self.retain = retain
        self.timestamp = time.monotonic()
        self.properties = None


class _NoFilters:
    """In place of paho's per-topic callback table, which the gateway leaves
    empty: paho walks that table's tree for every message it receives."""

    def iter_match(self, topic: str) -> tuple:
        return ()


class Client(mqtt.Client):
    """paho's client with the read-ahead connection and without the per-topic
    callbacks (message_callback_add is not used: one on_message gets all)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._on_message_filtered = _NoFilters()  # type: ignore[assignment]

    def _create_socket(self):  # noqa: ANN202 - paho's (private) socket factory
        return ReadAhead(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """paho's loop reads one packet per select(); this goes on through the
        packets already read ahead (at most READ_BURST), then lets the loop
        write (PUBACKs) and check the keepalive as usual."""
        rc = super().loop_read(max_packets)
        for _ in range(READ_BURST):
            sock = self._sock
            if rc or not isinstance(sock, ReadAhead) or not sock.held():
                break
            rc = super().loop_read(max_packets)
        return rc

    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        header = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        packet = self._in_packet["packet"]
        n = (packet[0] << 8 | packet[1]) if len(packet) >= 2 else 0
        start = 2 + n + (2 if qos else 0)  # the payload's first byte
        on_message = self.on_message
        if (self._protocol == mqtt.MQTTv5 or qos > 1 or n == 0 or len(packet) < start
                or on_message is None):
            return super()._handle_publish()
        try:
            topic = bytes(packet[2:2 + n]).decode()
        except UnicodeDecodeError:
            return super()._handle_publish()
        mid = packet[2 + n] << 8 | packet[3 + n] if qos else 0
        msg = Message(topic, bytes(packet[start:]), mid, qos, bool(header & 0x08),
                      bool(header & 0x01))
        on_message(self, self._userdata, msg)  # type: ignore[arg-type]
        if qos and not self._manual_ack:
            return self._send_puback(mid)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def message_callback_add(self, sub: str, callback: object) -> None:
        raise NotImplementedError("the gateway's source takes every message in on_message")
