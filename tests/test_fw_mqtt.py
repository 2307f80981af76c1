"""The device's MQTT client (hg.mqtt, hg.link): exact bytes and behaviour over
a fake socket under CPython and real MicroPython, then the same code against
the real Mosquitto with the project's config (accounts, ACL, TLS)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hg import protocol
from hg.link import Link
from hg.mqtt import MQTTClient, Refused
from hg.net import tcp
from tests.firmware import check_mqtt
from tests.harness.proc import wait_until

HERE = Path(__file__).parent
TIMEOUT = 10.0
DEV = "btn-0001"


def a(text: str) -> str:
    """ASCII text as hex (the length prefix is written out by hand)."""
    return text.encode().hex()


def h(*parts: str) -> str:
    return "".join(parts).replace(" ", "")


# Expected bytes, written from the MQTT 3.1.1 spec (sections 2.2.3, 3.1-3.14).
CONNECT_FULL = h(
    "10 41",  # CONNECT, remaining length 65
    "00 04", a("MQTT"), "04",  # protocol name, level 4
    "ee",  # user, password, will retain, will QoS 1, will flag, clean session
    "00 3c",  # keepalive 60 s
    "00 09", a("hg-b-0001"),  # client id
    "00 16", a("hg/v1/hg-b-0001/status"), "00 03", a("off"),  # will topic, message
    "00 09", a("hg-b-0001"), "00 02", a("pw"),  # user name, password
)
CONNECT_BARE = h("10 0f", "00 04", a("MQTT"), "04", "00", "01 2c", "00 03", a("dev"))
PUB_D_EV_Q1 = h("32 0a", "00 04", a("d/ev"), "00 03", a("q1"))  # pid 3
EXPECTED: dict[str, dict] = {
    "vlen 0": {"hex": "00"}, "vlen 127": {"hex": "7f"}, "vlen 128": {"hex": "8001"},
    "vlen 16383": {"hex": "ff7f"}, "vlen 16384": {"hex": "808001"},
    "vlen 2097151": {"hex": "ffff7f"}, "vlen 2097152": {"hex": "80808001"},
    "vlen 268435455": {"hex": "ffffff7f"},
    "connect will user password": {"hex": CONNECT_FULL, "session": 0},
    "connect bare": {"hex": CONNECT_BARE, "session": 1},
    "publish qos0": {"hex": h("30 07 00 03", a("a/b"), a("hi"))},
    "publish qos1 retain": {"hex": h("33 09 00 03", a("a/b"), "00 01", a("hi")), "pid": 1},
    "publish qos1 then dup": {
        "hex": h("32 09 00 03", a("a/b"), "00 02", a("hi"),
                 "3a 09 00 03", a("a/b"), "00 02", a("hi")),
        "pid": 2, "inflight": [1, 2]},
    "subscribe": {"hex": h("82 1e 00 03", "00 0b", a("hg/v1/x/ack"), "01",
                           "00 0b", a("hg/v1/x/cmd"), "00")},
    "pingreq": {"hex": "c000", "out": True},
    "disconnect": {"hex": "e000", "closed": True},
    "parse split packets": {"handled": 3, "got": [["a/b", 300, "abc"], ["z", 2, "ok"]],
                            "acked": [2], "inflight": [1], "hex": "40020007"},
    "parse suback pingresp": {"handled": 2, "refused": ["t/no"], "ping_out": False},
    "parse partial": {"handled": 0},
    "parse rest": {"handled": 1, "inflight": []},
    "refused 5": {"result": "Refused 5"}, "refused 4": {"result": "Refused 4"},
    "connack garbage": {"result": "OSError"}, "connack closed": {"result": "OSError"},
    "connack timeout": {"result": "ok"},  # nothing yet: connect() never waits...
    "connack timeout 9999": {"result": "ok"},
    "connack timeout 10000": {"result": "OSError"},  # ...the client's timeout_s (10 s) does
    "poll closed": {"result": "OSError"}, "poll bad type": {"result": "OSError"},
    "poll long length": {"result": "OSError"}, "poll too large": {"result": "OSError"},
    "poll truncated publish": {"result": "OSError"}, "poll qos2": {"result": "OSError"},
    "publish on closed": {"result": "OSError", "inflight": [1]},
    # a stream that takes nothing (TCP connect or TLS handshake not through)
    "stalled connect": {"polls": ["ok", "ok", "ok"], "result": "OSError", "tx": ""},
    # MicroPython raises ValueError for a certificate it refuses: a link error
    "tls refused cert": {"result": "OSError ValueError: MBEDTLS_ERR_X509_CERT_VERIFY_FAILED",
                         "closed": True},
    "write stalled": {"polls": ["ok", "ok"], "result": "OSError"},  # 10 s after the write
    # base 1 s, cap 30 s, half fixed + half scaled by the 16-bit jitter values
    # 0, 65535, 32768, 0, 0, 16384, 0, 0, 0
    "backoff schedule": {"tries": [0, 500, 2499, 5499, 9499, 17499, 36249, 51249, 66249],
                         "early": 0, "failures": 9, "next": 81249,
                         "error": "111 refused", "connected": False,
                         "log": ["link: 111 refused (retrying with backoff)"]},  # once
    "link offline publish": {"sent": False, "qos0": False, "dropped": 1, "pending": 1},
    "link connect": {
        "hex": h("10 19 00 04", a("MQTT"), "04 2e 00 0a", "00 01", a("d"),
                 "00 04", a("d/st"), "00 04", a("off0"),
                 "82 0a 00 01 00 05", a("d/ack"), "01",  # re-subscribe, pid 1
                 "33 0a 00 04", a("d/st"), "00 02", a("on"),  # online, retained, pid 2
                 PUB_D_EV_Q1),  # the queued publish, pid 3
        "connected": True, "inflight": [2, 3]},
    "link no ack yet": {"hex": ""},
    "link puback timeout": {"hex": h("3a", PUB_D_EV_Q1[2:]), "resends": 1},
    "link idle 5000": {"hex": "", "connected": True},
    "link idle 11999": {"hex": "", "connected": True},
    "link idle 12000": {"hex": "c000", "connected": True},  # 10 s since the last packet in
    "link idle 13000": {"hex": "", "connected": True},
    "link idle 17000": {"hex": "", "connected": True},
    "link half-open": {"connected": False, "closed": True, "drops": 1, "next": 17501,
                       "error": "OSError half-open: nothing from the broker for 15001 ms"},
    "link reconnect": {
        "hex": h("10 19 00 04", a("MQTT"), "04 2e 00 0a", "00 01", a("d"),
                 "00 04", a("d/st"), "00 04", a("off1"),
                 "3a", PUB_D_EV_Q1[2:],  # unacked pid 3 again with DUP
                 "82 0a 00 04 00 05", a("d/ack"), "01",
                 "33 0a 00 04", a("d/st"), "00 05", a("on"),
                 "32 0a 00 04", a("d/ev"), "00 06", a("q2")),
        "connects": 2, "inflight": [3, 5, 6], "pending": 3,
        "log": ["link: OSError half-open: nothing from the broker for 15001 ms "
                "(retrying with backoff)", "link: connected"]},
    "link acked": {"pending": 0, "refused": []},
    "link message": {"got": ["d/ack ok"], "hex": ""},
    "link close": {"hex": "e000", "connected": False},
}


def parse_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cpython_rows() -> list[dict]:
    return check_mqtt.check()


def test_cpython_bytes_match_the_spec(cpython_rows: list[dict]) -> None:
    assert [r["name"] for r in cpython_rows] == list(EXPECTED)
    for row in cpython_rows:
        want = dict(EXPECTED[row["name"]], name=row["name"])
        assert row == want, f"{row['name']}: got {row}"


def test_micropython_matches_cpython(micropython, cpython_rows: list[dict]) -> None:
    src = (HERE / "firmware" / "check_mqtt.py").read_text()
    out = micropython.run(
        "import sys\nsys.path.append('/t')\nimport check_mqtt\ncheck_mqtt.main()\n",
        files={"/t/check_mqtt.py": src},
    )
    assert parse_lines(out) == cpython_rows


# --- against the real Mosquitto --------------------------------------------


def now_ms() -> int:
    return int(time.monotonic() * 1000)


def run_until(link: Link, cond: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    def step() -> bool:
        link.poll(now_ms())
        return cond()
    wait_until(step, timeout, what, interval=0.01)


class Gateway:
    """A paho subscriber with the gateway account; re-subscribes on every connect."""

    def __init__(self, broker, filters: tuple[str, ...]) -> None:
        self.filters = filters
        self.received: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"gw-{os.urandom(4).hex()}",
                                  protocol=paho.MQTTv311)
        self.client.username_pw_set(broker.gateway_user, broker.gateway_password)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in filters])
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        assert self.subscribed.wait(TIMEOUT), "gateway SUBACK"

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.received.append((msg.topic, msg.payload, bool(msg.retain)))

    def got(self, topic: str, payload: bytes) -> bool:
        with self.lock:
            return any(t == topic and p == payload for t, p, _ in self.received)

    def wait_for(self, topic: str, payload: bytes) -> None:
        wait_until(lambda: self.got(topic, payload), TIMEOUT, f"{payload!r} on {topic}")

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(TIMEOUT)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def gateway(mosquitto):
    gw = Gateway(mosquitto, (f"hg/v1/{DEV}/event", f"hg/v1/{DEV}/status"))
    yield gw
    gw.stop()


def make_link(mosquitto, password: str, port: int | None = None, ca: str | None = None,
              online: bytes = b"online", will: bytes = b"offline") -> Link:
    client = MQTTClient(DEV, tcp(mosquitto.host, port or mosquitto.port, ca=ca),
                        DEV, password, keepalive=30, timeout_s=5)
    status = protocol.topic(DEV, "status")
    return Link(client, subs=[(protocol.topic(DEV, leaf), 1) for leaf in protocol.DOWNLINK],
                will=(status, lambda: will), online=(status, lambda: online),
                backoff_ms=(200, 1000))


def event(seq: int) -> bytes:
    return protocol.encode(b"k" * 32, DEV, seq, "alarm", "fire", 0, {"btn": "a"})


def test_qos1_event_reaches_the_gateway(mosquitto, gateway: Gateway) -> None:
    link = make_link(mosquitto, mosquitto.add_device(DEV))
    run_until(link, lambda: link.connected, "device connected")
    gateway.wait_for(protocol.topic(DEV, "status"), b"online")
    assert link.publish(protocol.topic(DEV, "event"), event(1), qos=1)
    gateway.wait_for(protocol.topic(DEV, "event"), event(1))
    run_until(link, lambda: link.pending() == 0, "PUBACK")
    assert (link.connects, link.failures, link.drops) == (1, 0, 0)
    link.close()


def test_device_receives_its_ack(mosquitto, gateway: Gateway) -> None:
    link = make_link(mosquitto, mosquitto.add_device(DEV))
    got: list[tuple[str, bytes]] = []
    link.client.on_message = lambda t, p: got.append((t, p))
    run_until(link, lambda: link.connected and not link.client.subscribing, "SUBACK")
    assert link.client.refused == []
    gateway.publish(protocol.topic(DEV, "ack"), b"ack-1")
    run_until(link, lambda: bool(got), "the ack")
    assert got == [(protocol.topic(DEV, "ack"), b"ack-1")]
    link.close()


def test_last_will_is_retained_when_the_link_is_cut(mosquitto, gateway: Gateway) -> None:
    link = make_link(mosquitto, mosquitto.add_device(DEV), will=b"offline-7")
    run_until(link, lambda: link.connected, "device connected")
    gateway.wait_for(protocol.topic(DEV, "status"), b"online")
    link.client.sock.close()  # power cut: no DISCONNECT
    gateway.wait_for(protocol.topic(DEV, "status"), b"offline-7")
    late = Gateway(mosquitto, (protocol.topic(DEV, "status"),))
    try:
        wait_until(lambda: (protocol.topic(DEV, "status"), b"offline-7", True) in late.received,
                   TIMEOUT, "the retained will")
    finally:
        late.stop()


def test_wrong_password_is_refused(mosquitto) -> None:
    mosquitto.add_device(DEV)
    client = MQTTClient(DEV, tcp(mosquitto.host, mosquitto.port), DEV, "wrong")
    client.connect(now_ms())
    with pytest.raises(Refused) as exc:
        wait_until(lambda: client.poll(now_ms()) and False, TIMEOUT, "the CONNACK")
    client.close()
    assert isinstance(exc.value, OSError) and exc.value.args[0] in (4, 5)
    link = make_link(mosquitto, "wrong")
    run_until(link, lambda: link.failures >= 2, "two refused attempts")
    assert not link.connected and link.connects == 0
    assert link.last_error is not None and link.last_error.startswith(str(exc.value.args[0]))


def test_reconnects_after_broker_restart_and_delivers_the_queue(
        mosquitto, gateway: Gateway) -> None:
    link = make_link(mosquitto, mosquitto.add_device(DEV))
    run_until(link, lambda: link.connected, "device connected")
    mosquitto.stop()
    run_until(link, lambda: not link.connected, "the device to notice")
    assert not link.publish(protocol.topic(DEV, "event"), event(2), qos=1)
    assert link.pending() >= 1
    mosquitto.start()
    run_until(link, lambda: link.connected and link.pending() == 0, "reconnect and PUBACK")
    gateway.wait_for(protocol.topic(DEV, "event"), event(2))
    assert link.connects == 2 and link.drops == 1
    link.close()


def test_tls_with_the_project_ca(mosquitto, gateway: Gateway) -> None:
    link = make_link(mosquitto, mosquitto.add_device(DEV), port=mosquitto.tls_port,
                     ca=str(mosquitto.ca_path))
    run_until(link, lambda: link.connected, "TLS connect")
    assert type(link.client.sock.sock).__name__ == "SSLSocket"  # hg.net.Stream over TLS
    link.publish(protocol.topic(DEV, "event"), event(3), qos=1)
    gateway.wait_for(protocol.topic(DEV, "event"), event(3))
    run_until(link, lambda: link.pending() == 0, "PUBACK over TLS")
    link.close()
