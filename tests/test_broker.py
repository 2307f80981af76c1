"""The broker's security and durability, checked against a real Mosquitto
running the project's rendered config (tests/harness/mosquitto.py).

Mosquitto drops an unauthorised publish silently, so every "not delivered"
check publishes a permitted control message right after the forbidden one,
waits for the control, and only then asserts the forbidden one never came.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import paho.mqtt.client as mqtt
import pytest
import typer
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from broker import acl, layout, passwd, tls
from broker.cli import register
from broker.config import BrokerSettings
from broker.errors import BadDeviceId, BrokerError
from gateway.config import MQTTSection
from homeguard.devbroker import connect
from homeguard.devbroker.dev import BrokerStartError, start_dev_broker
from tests.harness.mosquitto import MosquittoBroker, connack_code
from tests.harness.proc import LOOPBACK, Proc, free_port, require_binary, wait_until

TIMEOUT = 5.0
UPLINK = ("event", "telemetry", "heartbeat", "status")
GATEWAY_CLIENT_ID = MQTTSection().client_id  # the gateway's default [mqtt] client_id
LISTENERS = ("local", "tls")


class Endpoint(Protocol):
    host: str
    port: int


class Peer:
    """A paho-mqtt 2.x client that records connect results and received messages."""

    def __init__(self, broker: Endpoint, user: str | None, password: str | None,
                 client_id: str = "", clean: bool = True, ca: Path | None = None,
                 host: str | None = None, port: int | None = None,
                 will: tuple[str, bytes] | None = None) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or f"t-{os.urandom(4).hex()}",
            clean_session=clean, protocol=mqtt.MQTTv311,
        )
        self.received: list[tuple[str, bytes]] = []
        self.connack: list[mqtt.ReasonCode] = []
        self.disconnects = 0
        self.granted: list[int] = []
        self._lock = threading.Lock()
        if user is not None:
            self.client.username_pw_set(user, password)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca))
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.granted.extend(
            int(rc.value) for rc in rcs)
        self.client.connect(host or broker.host, port or broker.port, keepalive=30)
        self.client.loop_start()
        wait_until(lambda: bool(self.connack), TIMEOUT, f"CONNACK for {user}")

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    rc: mqtt.ReasonCode, props: object) -> None:
        self.connack.append(rc)
        if rc.is_failure:
            client.disconnect()  # no automatic retries of a refused login

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                       rc: mqtt.ReasonCode, props: object) -> None:
        self.disconnects += 1

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append((msg.topic, msg.payload))

    @property
    def accepted(self) -> bool:
        return not self.connack[0].is_failure

    def subscribe(self, *filters: str) -> None:
        before = len(self.granted)
        self.client.subscribe([(f, 1) for f in filters])
        wait_until(lambda: len(self.granted) >= before + len(filters), TIMEOUT, "SUBACK")

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(TIMEOUT)

    def wait_for(self, topic: str, payload: bytes) -> None:
        wait_until(lambda: self.got(topic, payload), TIMEOUT, f"{payload!r} on {topic}")

    def got(self, topic: str, payload: bytes) -> bool:
        with self._lock:
            return (topic, payload) in self.received

    def payloads(self) -> set[bytes]:
        with self._lock:
            return {p for _, p in self.received}

    def drop(self) -> None:
        """Lose the connection without DISCONNECT, as a device losing power does."""
        self.client.loop_stop()
        sock = self.client.socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def peers():
    made: list[Peer] = []

    def make(*args, **kwargs) -> Peer:
        peer = Peer(*args, **kwargs)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.close()


def gateway(broker: MosquittoBroker, peers, *filters: str, **kwargs) -> Peer:
    gw = peers(broker, broker.gateway_user, broker.gateway_password, **kwargs)
    assert gw.accepted, gw.connack
    gw.subscribe(*(filters or [f"hg/v1/+/{leaf}" for leaf in UPLINK]))
    return gw


def device(broker: MosquittoBroker, peers, device_id: str, **kwargs) -> Peer:
    password = broker.add_device(device_id)
    dev = peers(broker, device_id, password, **kwargs)
    assert dev.accepted, dev.connack
    return dev


def on(broker: MosquittoBroker, listener: str) -> dict:
    """Peer arguments for the local (plain, loopback) or the device (TLS) listener."""
    if listener == "tls":
        return {"ca": broker.ca_path, "host": "localhost", "port": broker.tls_port}
    return {}


def raid(broker: Endpoint, peers, accounts: list[tuple[str, str]], client_ids: list[str],
         **where) -> None:
    """Every account connects with every client id, clean session and persistent,
    and leaves again: what a device needs to knock a client off and wipe its session."""
    for user, password in accounts:
        for client_id in client_ids:
            for clean in (True, False):
                peers(broker, user, password, client_id=client_id, clean=clean, **where).close()


def legacy_account(broker: MosquittoBroker, name: str) -> tuple[str, str]:
    """A device account written straight into passwd, as add-device did before
    it refused ids that are service client ids; active when this returns."""
    passwd.set_password(broker.dir.passwd_file, name, "legacy-secret")
    broker.reload()
    wait_until(lambda: broker.login(name, "legacy-secret") == 0, TIMEOUT, f"account {name}")
    return name, "legacy-secret"


# --- authentication ------------------------------------------------------------


def test_anonymous_connect_is_refused(mosquitto, peers):
    anon = peers(mosquitto, None, None)
    assert not anon.accepted
    assert anon.connack[0] == "Not authorized"


def test_wrong_password_and_unknown_user_are_refused(mosquitto, peers):
    mosquitto.add_device("dev-a")
    assert not peers(mosquitto, "dev-a", "not-the-password").accepted
    assert not peers(mosquitto, "dev-zz", "whatever").accepted
    assert not peers(mosquitto, mosquitto.gateway_user, "wrong").accepted
    assert peers(mosquitto, "dev-a", mosquitto.device_password("dev-a")).accepted


def test_removed_device_is_refused_after_reload(mosquitto, peers):
    password = mosquitto.add_device("dev-gone")
    connected = peers(mosquitto, "dev-gone", password)
    assert connected.accepted
    mosquitto.remove_device("dev-gone")  # writes passwd, SIGHUPs, waits for the refusal
    assert mosquitto.login("dev-gone", password) == 5  # not authorised
    assert not peers(mosquitto, "dev-gone", password).accepted
    assert "dev-gone" not in layout.devices(mosquitto.config_dir)
    wait_until(lambda: not connected.client.is_connected(), TIMEOUT,
               "the reload to disconnect the removed device")


# --- ACL: devices --------------------------------------------------------------


def test_device_event_reaches_gateway(mosquitto, peers):
    gw = gateway(mosquitto, peers)
    dev = device(mosquitto, peers, "dev-a")
    dev.publish("hg/v1/dev-a/event", b"alarm-1")
    gw.wait_for("hg/v1/dev-a/event", b"alarm-1")


def test_device_cannot_publish_as_another_device(mosquitto, peers):
    gw = gateway(mosquitto, peers)
    mosquitto.add_device("dev-b")
    a = device(mosquitto, peers, "dev-a")
    a.publish("hg/v1/dev-b/event", b"forged")
    a.publish("hg/v1/dev-b/status", b"forged-status", retain=True)
    a.publish("hg/v1/dev-a/event", b"control")
    gw.wait_for("hg/v1/dev-a/event", b"control")
    assert not {b"forged", b"forged-status"} & gw.payloads()


def test_device_cannot_read_another_devices_downlink(mosquitto, peers):
    mosquitto.add_device("dev-b")
    a = device(mosquitto, peers, "dev-a")
    a.subscribe("hg/v1/dev-b/ack", "hg/v1/+/ack", "#", "$SYS/#", "hg/v1/dev-a/ack")
    gw = gateway(mosquitto, peers)
    gw.publish("hg/v1/dev-b/ack", b"for-b")
    gw.publish("hg/v1/dev-b/cmd", b"cmd-for-b")
    gw.publish("hg/v1/dev-a/ack", b"control")
    a.wait_for("hg/v1/dev-a/ack", b"control")
    assert a.payloads() == {b"control"}, a.received
    assert all(topic == "hg/v1/dev-a/ack" for topic, _ in a.received)


def test_device_cannot_write_its_own_downlink(mosquitto, peers):
    a = device(mosquitto, peers, "dev-a")
    a.subscribe("hg/v1/dev-a/ack", "hg/v1/dev-a/cmd")
    a.publish("hg/v1/dev-a/ack", b"self-ack")
    a.publish("hg/v1/dev-a/cmd", b"self-cmd")
    gw = gateway(mosquitto, peers)
    gw.publish("hg/v1/dev-a/ack", b"control")
    a.wait_for("hg/v1/dev-a/ack", b"control")
    assert a.payloads() == {b"control"}


def test_device_cannot_read_uplinks(mosquitto, peers):
    spy = device(mosquitto, peers, "dev-spy")
    spy.subscribe("hg/v1/+/event", "hg/v1/dev-a/event", "hg/v1/dev-spy/event")
    a = device(mosquitto, peers, "dev-a")
    gw = gateway(mosquitto, peers)
    a.publish("hg/v1/dev-a/event", b"secret")
    spy.publish("hg/v1/dev-spy/event", b"own")  # even its own uplink is write-only
    gw.wait_for("hg/v1/dev-spy/event", b"own")
    gw.wait_for("hg/v1/dev-a/event", b"secret")
    gw.publish("hg/v1/dev-spy/cmd", b"control")
    spy.subscribe("hg/v1/dev-spy/cmd")
    gw.publish("hg/v1/dev-spy/cmd", b"control-2")
    spy.wait_for("hg/v1/dev-spy/cmd", b"control-2")
    assert b"secret" not in spy.payloads() and b"own" not in spy.payloads()


def test_last_will_on_own_status_reaches_gateway_and_foreign_will_does_not(mosquitto, peers):
    gw = gateway(mosquitto, peers)
    mosquitto.add_device("dev-b")
    password = mosquitto.add_device("dev-a")
    # one connection at a time: a second one of the account would replace the first
    liar = peers(mosquitto, "dev-a", password, will=("hg/v1/dev-b/status", b"offline-b"))
    assert liar.accepted  # Mosquitto 2.0.11 takes the will and drops it when due
    liar.drop()
    honest = peers(mosquitto, "dev-a", password, will=("hg/v1/dev-a/status", b"offline-a"))
    honest.drop()
    gw.wait_for("hg/v1/dev-a/status", b"offline-a")
    assert b"offline-b" not in gw.payloads()
    late = gateway(mosquitto, peers, "hg/v1/+/status")  # retained for who comes later
    late.wait_for("hg/v1/dev-a/status", b"offline-a")


# --- ACL: gateway --------------------------------------------------------------


def test_gateway_reads_every_uplink_and_writes_downlink(mosquitto, peers):
    gw = gateway(mosquitto, peers)
    devs = {d: device(mosquitto, peers, d) for d in ("dev-a", "dev-b")}
    for d, peer in devs.items():
        peer.subscribe(f"hg/v1/{d}/ack", f"hg/v1/{d}/config", f"hg/v1/{d}/cmd")
        for leaf in UPLINK:
            peer.publish(f"hg/v1/{d}/{leaf}", f"{d}-{leaf}".encode())
    for d in devs:
        for leaf in UPLINK:
            gw.wait_for(f"hg/v1/{d}/{leaf}", f"{d}-{leaf}".encode())
    for leaf in ("ack", "config", "cmd"):
        gw.publish(f"hg/v1/dev-b/{leaf}", f"to-b-{leaf}".encode())
        devs["dev-b"].wait_for(f"hg/v1/dev-b/{leaf}", f"to-b-{leaf}".encode())


def test_gateway_shared_subscription(mosquitto, peers):
    gw = gateway(mosquitto, peers, "$share/gateways/hg/v1/+/event")
    a = device(mosquitto, peers, "dev-a")
    a.publish("hg/v1/dev-a/event", b"shared")
    gw.wait_for("hg/v1/dev-a/event", b"shared")


def test_gateway_cannot_forge_uplink_or_touch_other_topics(mosquitto, peers):
    # the listener is a second gateway account, with the same rights as the first
    listener = peers(mosquitto, "gateway-2", mosquitto.add_gateway("gateway-2"))
    listener.subscribe(*[f"hg/v1/+/{leaf}" for leaf in UPLINK])
    listener.subscribe("other/topic", "$SYS/broker/version")
    forger = peers(mosquitto, mosquitto.gateway_user, mosquitto.gateway_password)
    mosquitto.add_device("dev-a")
    forger.publish("hg/v1/dev-a/event", b"forged-event")
    forger.publish("hg/v1/gateway/event", b"forged-own")
    forger.publish("other/topic", b"forged-other")
    listener.publish("hg/v1/gateway-2/event", b"forged-by-second")
    a = device(mosquitto, peers, "dev-a")
    a.publish("hg/v1/dev-a/event", b"control")
    listener.wait_for("hg/v1/dev-a/event", b"control")
    assert listener.payloads() == {b"control"}


def test_telemetry_companion_reads_telemetry_only(mosquitto, peers):
    # the gateway's second session: its account's companion, with its password
    tm_user = acl.telemetry_user(mosquitto.gateway_user)
    tm = peers(mosquitto, tm_user, mosquitto.gateway_password)
    assert tm.accepted, tm.connack
    tm.subscribe(*[f"hg/v1/+/{leaf}" for leaf in UPLINK], "$share/g/hg/v1/+/telemetry",
                 "hg/v1/+/ack", "other/topic")
    listener = gateway(mosquitto, peers)
    listener.subscribe("hg/v1/+/ack")
    a = device(mosquitto, peers, "dev-a")
    a.subscribe("hg/v1/dev-a/ack")
    for leaf in UPLINK:
        a.publish(f"hg/v1/dev-a/{leaf}", f"a-{leaf}".encode())
    tm.publish("hg/v1/dev-a/ack", b"forged-ack")  # it writes nothing
    tm.publish(f"hg/v1/{tm_user}/event", b"forged-own")
    tm.publish("other/topic", b"forged-other")
    listener.publish("hg/v1/dev-a/ack", b"control-ack")
    for leaf in UPLINK:
        listener.wait_for(f"hg/v1/dev-a/{leaf}", f"a-{leaf}".encode())
    a.wait_for("hg/v1/dev-a/ack", b"control-ack")
    tm.wait_for("hg/v1/dev-a/telemetry", b"a-telemetry")
    assert tm.payloads() == {b"a-telemetry"}  # once per filter it matched, nothing else
    assert a.payloads() == {b"control-ack"}
    assert not listener.got("hg/v1/dev-a/ack", b"forged-ack")
    # every gateway account has one, removed with it
    second = mosquitto.add_gateway("gateway-2")
    wait_until(lambda: mosquitto.login("gateway-2.tm", second) == 0, TIMEOUT, "gateway-2.tm")
    layout.remove_gateway(mosquitto.config_dir, "gateway-2")
    mosquitto.reload()
    wait_until(lambda: mosquitto.login("gateway-2.tm", second) == 5, TIMEOUT,
               "gateway-2.tm refused")


def test_companions_follow_their_gateway_accounts_and_no_device_takes_one(tmp_path):
    root = layout.init(tmp_path / "b", run_user="root").dir.root
    pw = layout.add_gateway(root, "gateway-2")
    entries = passwd.read(root / "passwd")
    assert passwd.verify(pw, entries["gateway-2.tm"])
    main = (root / "gateway.password").read_text().strip()
    assert passwd.verify(main, entries["gateway.tm"])
    assert layout.devices(root) == [] and layout.gateways(root) == ["gateway", "gateway-2"]
    for bad in ("gateway.tm", "gateway-2.tm"):  # not a device id, and a gateway account
        with pytest.raises(BadDeviceId):
            layout.add_device(root, bad)
    with pytest.raises(BrokerError):
        layout.add_gateway(root, "gateway.tm")  # the main account's companion
    layout.set_gateway(root, "gw-main", "new-secret")
    entries = passwd.read(root / "passwd")
    assert "gateway" not in entries and "gateway.tm" not in entries
    assert passwd.verify("new-secret", entries["gw-main.tm"])
    layout.add_gateway(root, "gateway-2", "other-secret")  # a new password: both
    assert passwd.verify("other-secret", passwd.read(root / "passwd")["gateway-2.tm"])
    assert layout.remove_gateway(root, "gateway-2")
    assert set(passwd.read(root / "passwd")) == {"gw-main", "gw-main.tm"}
    with pytest.raises(BrokerError, match="1-61"):
        layout.add_gateway(root, "x" * 62)  # its companion would not be a valid name


def test_init_gives_an_older_directory_its_companions(mosquitto):
    # a running broker on a directory of the release before companions
    root = mosquitto.config_dir
    second = mosquitto.add_gateway("gateway-2")
    device_pw = mosquitto.add_device("dev-a")
    old = {u: h for u, h in passwd.read(root / "passwd").items() if not u.endswith(".tm")}
    passwd.write(root / "passwd", old)
    (root / "acl").write_text((root / "acl").read_text().split("\n# gateway's telemetry")[0])
    mosquitto.reload()
    wait_until(lambda: mosquitto.login("gateway.tm", mosquitto.gateway_password) == 5,
               TIMEOUT, "the old directory without companions")
    again = layout.init(root)  # the upgrade: init, then reload
    mosquitto.reload()
    for user, password in (("gateway.tm", mosquitto.gateway_password),
                           ("gateway-2.tm", second)):
        wait_until(lambda u=user, p=password: mosquitto.login(u, p) == 0, TIMEOUT, user)
    entries = passwd.read(root / "passwd")
    assert {u: entries[u] for u in old} == old  # every other line as it was
    assert passwd.verify(device_pw, entries["dev-a"]) and again.gateway_password is None
    assert "user gateway-2.tm\n" in (root / "acl").read_text()
    layout.init(root)  # again: nothing changes
    assert passwd.read(root / "passwd") == entries


# --- client ids: a session belongs to its account --------------------------------


@pytest.mark.parametrize("listener", LISTENERS)
def test_no_device_displaces_the_gateway_or_wipes_its_queue(mosquitto, peers, listener):
    gw = gateway(mosquitto, peers, client_id=GATEWAY_CLIENT_ID, clean=False)
    a = device(mosquitto, peers, "dev-a")
    accounts = [("dev-evil", mosquitto.add_device("dev-evil")),
                legacy_account(mosquitto, GATEWAY_CLIENT_ID)]
    ids = [GATEWAY_CLIENT_ID, mosquitto.gateway_user]
    raid(mosquitto, peers, accounts, ids, **on(mosquitto, listener))
    a.publish("hg/v1/dev-a/event", b"live")
    gw.wait_for("hg/v1/dev-a/event", b"live")
    assert gw.disconnects == 0 and gw.client.is_connected()
    gw.close()  # away: its persistent session queues what devices send
    a.publish("hg/v1/dev-a/event", b"queued")
    raid(mosquitto, peers, accounts, ids, **on(mosquitto, listener))
    back = peers(mosquitto, mosquitto.gateway_user, mosquitto.gateway_password,
                 client_id=GATEWAY_CLIENT_ID, clean=False)
    back.wait_for("hg/v1/dev-a/event", b"queued")
    a.publish("hg/v1/dev-a/event", b"after")  # and its subscriptions are still there
    back.wait_for("hg/v1/dev-a/event", b"after")


@pytest.mark.parametrize("listener", LISTENERS)
def test_no_device_displaces_another_device(mosquitto, peers, listener):
    gw = gateway(mosquitto, peers)
    victim = device(mosquitto, peers, "dev-a", client_id="dev-a", clean=False)
    victim.subscribe("hg/v1/dev-a/ack")
    accounts = [("dev-evil", mosquitto.add_device("dev-evil"))]
    raid(mosquitto, peers, accounts, ["dev-a"], **on(mosquitto, listener))
    gw.publish("hg/v1/dev-a/ack", b"live")
    victim.wait_for("hg/v1/dev-a/ack", b"live")
    assert victim.disconnects == 0 and victim.client.is_connected()
    victim.close()
    gw.publish("hg/v1/dev-a/ack", b"queued")
    raid(mosquitto, peers, accounts, ["dev-a"], **on(mosquitto, listener))
    back = peers(mosquitto, "dev-a", mosquitto.device_password("dev-a"), client_id="dev-a",
                 clean=False, **on(mosquitto, listener))
    back.wait_for("hg/v1/dev-a/ack", b"queued")


def test_share_group_gateways_keep_their_own_sessions(mosquitto, peers):
    # as in docs/gateway.md scale-out: each gateway its own client id, and (because
    # the broker keys sessions by account) its own account
    second = mosquitto.add_gateway("gateway-2")
    members = {"gw-one": (mosquitto.gateway_user, mosquitto.gateway_password),
               "gw-two": ("gateway-2", second)}
    share = "$share/hg/hg/v1/+/event"
    gws = [peers(mosquitto, user, pw, client_id=cid, clean=False)
           for cid, (user, pw) in members.items()]
    for gw in gws:
        gw.subscribe(share)
    a = device(mosquitto, peers, "dev-a")
    accounts = [("dev-evil", mosquitto.add_device("dev-evil"))]
    ids = [*members, mosquitto.gateway_user, "gateway-2"]
    raid(mosquitto, peers, accounts, ids)
    raid(mosquitto, peers, accounts, ids, **on(mosquitto, "tls"))
    assert all(gw.disconnects == 0 and gw.client.is_connected() for gw in gws)
    for gw in gws:
        gw.close()
    sent = {f"queued-{i}".encode() for i in range(8)}
    for payload in sorted(sent):
        a.publish("hg/v1/dev-a/event", payload)
    raid(mosquitto, peers, accounts, ids)
    back = [peers(mosquitto, user, pw, client_id=cid, clean=False)
            for cid, (user, pw) in members.items()]
    wait_until(lambda: back[0].payloads() | back[1].payloads() == sent, TIMEOUT,
               "every queued message at one of the two gateways")


def test_add_device_refuses_gateway_accounts_and_service_client_ids(tmp_path):
    root = layout.init(tmp_path / "b", run_user="root").dir.root
    assert GATEWAY_CLIENT_ID in BrokerSettings().reserved_ids
    with pytest.raises(BadDeviceId, match="reserved as a service's MQTT client id"):
        layout.add_device(root, GATEWAY_CLIENT_ID)
    layout.add_gateway(root, "gateway-2")
    for name, why in (("gateway", "gateway account"), ("gateway-2", "gateway account"),
                      (GATEWAY_CLIENT_ID, "reserved as a service's MQTT client id")):
        with pytest.raises(BadDeviceId, match=why):
            layout.add_device(root, name)
        with pytest.raises(BadDeviceId, match=why):
            layout.check_new_device(root, name)  # what provisioning can ask first
    assert layout.devices(root) == []
    layout.add_device(root, "dev-a")
    with pytest.raises(BrokerError, match="already a device account"):
        layout.add_gateway(root, "dev-a")
    with pytest.raises(BrokerError, match="already a device account"):
        layout.set_gateway(root, "dev-a")
    with pytest.raises(BadDeviceId, match="gateway account"):
        layout.remove_device(root, "gateway-2")
    assert layout.gateways(root) == ["gateway", "gateway-2"]
    app = typer.Typer()
    register(app)
    out = CliRunner().invoke(app, ["broker", "add-device", GATEWAY_CLIENT_ID, "-d", str(root)])
    assert out.exit_code == 2
    assert out.output.strip().splitlines() == [
        f"error: bad device id {GATEWAY_CLIENT_ID!r}: reserved as a service's MQTT client id"
        " (broker.json reserved_ids)"]


def test_init_warns_about_a_device_account_with_a_reserved_name(tmp_path):
    root = layout.init(tmp_path / "b", run_user="root").dir.root
    passwd.set_password(root / "passwd", GATEWAY_CLIENT_ID, "from-before")
    assert layout.init(root).reserved_devices == [GATEWAY_CLIENT_ID]
    assert layout.remove_device(root, GATEWAY_CLIENT_ID)  # and it can be removed
    assert layout.init(root).reserved_devices == []


# --- TLS -----------------------------------------------------------------------


def test_tls_listener_with_generated_ca(mosquitto, peers):
    gw = gateway(mosquitto, peers)
    password = mosquitto.add_device("dev-tls")
    dev = peers(mosquitto, "dev-tls", password, ca=mosquitto.ca_path, host="localhost",
                port=mosquitto.tls_port)
    assert dev.accepted, dev.connack
    dev.publish("hg/v1/dev-tls/event", b"over-tls")
    gw.wait_for("hg/v1/dev-tls/event", b"over-tls")


def _tls_handshake(port: int, ca: Path, server_hostname: str,
                   max_version: ssl.TLSVersion | None = None) -> str:
    ctx = ssl.create_default_context(cafile=str(ca))
    if max_version is not None:
        ctx.maximum_version = max_version
    with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as conn:
            return str(conn.version())


def test_tls_verification_fails_with_other_ca_or_name(mosquitto, tmp_path):
    version = _tls_handshake(mosquitto.tls_port, mosquitto.ca_path, "localhost")
    assert version in ("TLSv1.2", "TLSv1.3")
    assert _tls_handshake(mosquitto.tls_port, mosquitto.ca_path, "127.0.0.1",
                          ssl.TLSVersion.TLSv1_2) == "TLSv1.2"  # small devices speak 1.2
    other = tls.ensure(tmp_path / "other-tls")
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        _tls_handshake(mosquitto.tls_port, other.ca_cert, "localhost")
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _tls_handshake(mosquitto.tls_port, mosquitto.ca_path, "broker.elsewhere.example")


def test_tls_listener_refuses_tls_1_1(mosquitto):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(mosquitto.ca_path))
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let our client offer 1.1 so the server decides
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1_1 itself
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection((LOOPBACK, mosquitto.tls_port), timeout=TIMEOUT) as raw:
        with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
            ctx.wrap_socket(raw, server_hostname="localhost")


# --- limits ----------------------------------------------------------------------


def test_oversized_packet_disconnects_sender_and_is_not_delivered(mosquitto, peers):
    gw = gateway(mosquitto, peers)
    big = device(mosquitto, peers, "dev-big")
    ok = device(mosquitto, peers, "dev-ok")
    big.client.publish("hg/v1/dev-big/event", b"x" * 5000, qos=1)
    wait_until(lambda: not big.client.is_connected(), TIMEOUT, "the broker to drop dev-big")
    ok.publish("hg/v1/dev-ok/event", b"control")
    gw.wait_for("hg/v1/dev-ok/event", b"control")
    assert all(len(p) < 4096 for p in gw.payloads())


# --- password files ------------------------------------------------------------


def test_python_written_passwd_is_accepted_by_mosquitto(mosquitto):
    odd = "pässwörd with spaces:and:colons/€"
    passwd.set_password(mosquitto.dir.passwd_file, "dev-odd", odd)
    assert passwd.read(mosquitto.dir.passwd_file)["dev-odd"].startswith("$7$1000$")
    mosquitto.reload()
    wait_until(lambda: mosquitto.login("dev-odd", odd) == 0, TIMEOUT, "dev-odd accepted")
    assert mosquitto.login("dev-odd", odd[:-1]) == 5


def test_mosquitto_passwd_output_is_parsed_and_verified(tmp_path, mosquitto):
    tool = require_binary("mosquitto_passwd", "apt-get install mosquitto")
    path = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(path), "dev-tool", "tool-secret"], check=True)
    subprocess.run([tool, "-b", str(path), "dev-two", "two-secret"], check=True)
    entries = passwd.read(path)
    assert list(entries) == ["dev-tool", "dev-two"]
    assert passwd.verify("tool-secret", entries["dev-tool"])
    assert not passwd.verify("tool-secreT", entries["dev-tool"])
    _, _, iterations, salt, _ = entries["dev-tool"].split("$")

    same = passwd.hash_password("tool-secret", base64.b64decode(salt), int(iterations))
    assert same == entries["dev-tool"]  # byte-identical to mosquitto_passwd's line
    # and Mosquitto takes the tool's line next to ours after a rewrite by our code
    merged = passwd.read(mosquitto.dir.passwd_file) | {"dev-tool": entries["dev-tool"]}
    passwd.write(mosquitto.dir.passwd_file, merged)
    mosquitto.reload()
    wait_until(lambda: mosquitto.login("dev-tool", "tool-secret") == 0, TIMEOUT, "dev-tool")
    assert mosquitto.login(mosquitto.gateway_user, mosquitto.gateway_password) == 0


# --- persistence ---------------------------------------------------------------


def test_gateway_backlog_survives_broker_restart(mosquitto, peers):
    gw = gateway(mosquitto, peers, client_id="gateway-1", clean=False)
    gw.close()
    a = device(mosquitto, peers, "dev-a")
    for i in range(5):
        a.publish("hg/v1/dev-a/event", f"queued-{i}".encode())
    a.close()
    mosquitto.restart()
    gw = peers(mosquitto, mosquitto.gateway_user, mosquitto.gateway_password,
               client_id="gateway-1", clean=False)
    for i in range(5):
        gw.wait_for("hg/v1/dev-a/event", f"queued-{i}".encode())


# --- broker directory ----------------------------------------------------------


def test_init_is_idempotent_and_keeps_secrets(tmp_path):
    first = layout.init(tmp_path / "b", hostnames=["hg.example"], run_user="root")
    assert first.gateway_password
    ca = first.dir.tls_paths.ca_cert.read_bytes()
    pw = layout.add_device(first.dir.root, "dev-a")
    hashes = passwd.read(first.dir.passwd_file)
    again = layout.init(tmp_path / "b", tls_port=18883)
    assert again.gateway_password is None
    assert again.dir.tls_paths.ca_cert.read_bytes() == ca
    assert passwd.read(again.dir.passwd_file) == hashes
    assert passwd.verify(pw, hashes["dev-a"])
    assert "listener 18883" in again.dir.config_file.read_text()
    assert again.settings.hostnames == ["hg.example"]
    assert (again.dir.tls_paths.server_key.stat().st_mode & 0o777) == 0o600
    assert (again.dir.passwd_file.stat().st_mode & 0o777) == 0o600


def test_bad_device_ids_are_refused(tmp_path):
    root = layout.init(tmp_path / "b", run_user="root").dir.root
    for bad in ("ab", "Dev-A", "-dev", "dev/a", "dev+a", "gateway", "x" * 33):
        with pytest.raises(BadDeviceId):
            layout.add_device(root, bad)


def test_acl_check_matches_the_rules():
    A, G = "dev-a", acl.DEFAULT_GATEWAY_USER
    pub, sub, recv = acl.Access.PUBLISH, acl.Access.SUBSCRIBE, acl.Access.RECEIVE
    assert acl.allowed(A, "hg/v1/dev-a/event", pub)
    assert not acl.allowed(A, "hg/v1/dev-b/event", pub)
    assert not acl.allowed(A, "hg/v1/dev-a/ack", pub)
    assert acl.allowed(A, "hg/v1/dev-a/ack", sub)
    assert not acl.allowed(A, "hg/v1/+/ack", sub)
    assert not acl.allowed(A, "#", sub)
    assert acl.allowed(G, "hg/v1/+/event", sub)
    assert acl.allowed(G, "$share/g1/hg/v1/+/status", sub)
    assert acl.allowed(G, "hg/v1/dev-a/telemetry", recv)
    assert acl.allowed(G, "hg/v1/dev-a/cmd", pub)
    assert not acl.allowed(G, "hg/v1/dev-a/event", pub)
    assert not acl.allowed(G, "hg/v1/gateway/event", recv)
    assert not acl.allowed("", "hg/v1/dev-a/event", pub)
    both = ["gateway", "gateway-2"]  # a second gateway account has the same rights
    assert acl.allowed("gateway-2", "hg/v1/+/event", sub, both)
    assert acl.allowed("gateway-2", "hg/v1/dev-a/cmd", pub, both)
    assert not acl.allowed("gateway-2", "hg/v1/gateway-2/event", pub, both)
    assert not acl.allowed("gateway-2", "hg/v1/+/event", sub)  # unless it is one
    rendered = acl.render(both)
    assert "user gateway-2\ntopic deny hg/v1/gateway-2/#\n" in rendered
    for tm in ("gateway.tm", "gateway-2.tm"):  # the telemetry companions: telemetry only
        assert acl.allowed(tm, "hg/v1/+/telemetry", sub, both)
        assert acl.allowed(tm, "$share/g1/hg/v1/+/telemetry", sub, both)
        assert acl.allowed(tm, "hg/v1/dev-a/telemetry", recv, both)
        for leaf in ("event", "heartbeat", "status", "ack"):
            assert not acl.allowed(tm, f"hg/v1/dev-a/{leaf}", recv, both)
        assert not acl.allowed(tm, "hg/v1/dev-a/cmd", pub, both)
        assert not acl.allowed(tm, f"hg/v1/{tm}/telemetry", pub, both)
        assert f"user {tm}\ntopic deny hg/v1/{tm}/#\n" in rendered


def test_broker_md_limits_are_the_settings():
    doc = (Path(__file__).parents[1] / "docs" / "broker.md").read_text()
    defaults = BrokerSettings()
    for name in ("max_packet_size", "max_inflight_messages", "max_queued_messages"):
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{name}` |"))
        assert row.split("|")[2].split()[0] == str(getattr(defaults, name)), row


# --- CLI and the embedded demo broker --------------------------------------------


def test_cli_init_add_and_remove_device(tmp_path):
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    d = str(tmp_path / "b")
    init = runner.invoke(app, ["broker", "init", "-d", d, "-H", "hg.example", "--run-user", "root"])
    assert init.exit_code == 0, init.output
    assert "gateway password written to" in init.output
    added = runner.invoke(app, ["broker", "add-device", "dev-cli", "-d", d])
    assert added.exit_code == 0, added.output
    secret = added.output.split("password ", 1)[1].split()[0]
    assert passwd.verify(secret, passwd.read(tmp_path / "b" / "passwd")["dev-cli"])
    bad = runner.invoke(app, ["broker", "add-device", "Dev_CLI", "-d", d])
    assert bad.exit_code == 2 and "bad device id" in bad.output
    shown = runner.invoke(app, ["broker", "acl", "-d", d])
    assert "pattern write hg/v1/%u/event" in shown.output
    assert runner.invoke(app, ["broker", "remove-device", "dev-cli", "-d", d]).exit_code == 0
    assert runner.invoke(app, ["broker", "remove-device", "dev-cli", "-d", d]).exit_code == 2
    more = runner.invoke(app, ["broker", "add-gateway", "gateway-2", "-d", d])
    assert more.exit_code == 0, more.output
    secret = more.output.split("password ", 1)[1].split()[0]
    assert passwd.verify(secret, passwd.read(tmp_path / "b" / "passwd")["gateway-2"])
    assert "user gateway-2\n" in runner.invoke(app, ["broker", "acl", "-d", d]).output
    listed = runner.invoke(app, ["broker", "gateways", "-d", d]).output.split()
    assert listed == ["gateway", "gateway-2"]
    assert runner.invoke(app, ["broker", "remove-gateway", "gateway", "-d", d]).exit_code == 2
    assert runner.invoke(app, ["broker", "remove-gateway", "gateway-2", "-d", d]).exit_code == 0
    assert "gateway-2" not in passwd.read(tmp_path / "b" / "passwd")


@dataclass
class _Embedded:
    host: str
    port: int


def test_embedded_demo_broker_enforces_accounts_and_acl(tmp_path, peers):
    root = layout.init(tmp_path / "b", local_port=free_port(), run_user="root").dir.root
    user, gw_password = layout.gateway_credentials(root)
    dev_password = layout.add_device(root, "dev-a")
    port = layout.BrokerDir(root).settings().local_port
    proc = Proc("amqtt", [sys.executable, "-m", "homeguard.devbroker.embedded", "--dir", root],
                tmp_path)
    proc.start()
    try:
        proc.wait_port(port, 20)
        ep = _Embedded(LOOPBACK, port)
        assert not peers(ep, None, None).accepted
        assert not peers(ep, "dev-a", "wrong").accepted
        gw = peers(ep, user, gw_password)
        gw.subscribe("hg/v1/+/event")
        dev = peers(ep, "dev-a", dev_password)
        assert gw.accepted and dev.accepted
        dev.publish("hg/v1/dev-b/event", b"forged")
        dev.publish("hg/v1/dev-a/event", b"control")
        gw.wait_for("hg/v1/dev-a/event", b"control")
        assert gw.payloads() == {b"control"}
        assert "EMBEDDED DEMO BROKER" in proc.logs()
    finally:
        proc.stop()


def test_embedded_demo_broker_keys_sessions_by_account(tmp_path, peers):
    root = layout.init(tmp_path / "b", local_port=free_port(), run_user="root").dir.root
    user, gw_password = layout.gateway_credentials(root)
    accounts = [("dev-evil", layout.add_device(root, "dev-evil")),
                (user, "wrong")]  # amqtt alone drops the session before it checks a login
    dev_password = layout.add_device(root, "dev-a")
    port = layout.BrokerDir(root).settings().local_port
    proc = Proc("amqtt", [sys.executable, "-m", "homeguard.devbroker.embedded", "--dir", root],
                tmp_path)
    proc.start()
    try:
        proc.wait_port(port, 20)
        ep = _Embedded(LOOPBACK, port)
        gw = peers(ep, user, gw_password, client_id=GATEWAY_CLIENT_ID, clean=False)
        gw.subscribe("hg/v1/+/event")
        dev = peers(ep, "dev-a", dev_password)
        raid(ep, peers, accounts, [GATEWAY_CLIENT_ID, user])
        dev.publish("hg/v1/dev-a/event", b"live")
        gw.wait_for("hg/v1/dev-a/event", b"live")
        assert gw.disconnects == 0 and gw.client.is_connected()
        gw.close()
        dev.publish("hg/v1/dev-a/event", b"queued")
        raid(ep, peers, accounts, [GATEWAY_CLIENT_ID, user])
        back = peers(ep, user, gw_password, client_id=GATEWAY_CLIENT_ID, clean=False)
        back.wait_for("hg/v1/dev-a/event", b"queued")
    finally:
        proc.stop()


def test_connect_packet_gets_the_username_as_client_id():
    will = b"\x00\x12hg/v1/dev-a/status" + b"\x00\x07offline"
    body = (b"\x00\x04MQTT\x04\xe6\x00\x1e" + b"\x00\x11homeguard-gateway" + will
            + b"\x00\x05dev-a" + b"\x00\x06s3cr3t")
    packet = connect.parse(body)
    assert (packet.client_id, packet.username, packet.password) == (
        "homeguard-gateway", "dev-a", "s3cr3t")
    want = b"\x00\x04MQTT\x04\xe6\x00\x1e" + b"\x00\x05dev-a" + will + body[-15:]
    assert packet.with_client_id("dev-a") == bytes([0x10, len(want)]) + want
    long = connect.parse(body[:10] + b"\x00\xc8" + b"x" * 200 + body[29:])
    assert long.with_client_id("dev-a") == bytes([0x10, len(want)]) + want
    assert connect.parse(body).with_client_id("x" * 200)[:3] == b"\x10\x80\x02"  # 256 bytes
    for bad in (body[:-1], b"\x00\x04MQTT\x05" + body[7:], b"\x00\x04HTTP" + body[6:]):
        with pytest.raises(connect.BadConnect):
            connect.parse(bad)


@pytest.mark.parametrize("embedded", [False, True], ids=["mosquitto", "embedded"])
def test_start_dev_broker_serves_accounts_on_loopback_and_stops(tmp_path, embedded):
    if not embedded:
        require_binary("mosquitto", "apt-get install mosquitto")
    port, tls_port = free_port(), free_port()
    handle = start_dev_broker(tmp_path / "b", port=port, tls_port=tls_port, embedded=embedded)
    try:
        assert handle.kind == ("embedded" if embedded else "mosquitto")
        user, gw_password = layout.gateway_credentials(handle.dir.root)
        assert connack_code(LOOPBACK, port, user, gw_password) == 0
        assert connack_code(LOOPBACK, port, user, "wrong") != 0
        password = layout.add_device(handle.dir.root, "dev-a")
        handle.reload()
        wait_until(lambda: connack_code(LOOPBACK, port, "dev-a", password) == 0, TIMEOUT,
                   "dev-a accepted")
        if not embedded:
            assert handle.tls_port == tls_port
            assert f"listener {tls_port} 127.0.0.1" in handle.dir.dev_config_file.read_text()
            assert _tls_handshake(tls_port, handle.dir.tls_paths.ca_cert, "localhost")
        with pytest.raises(BrokerStartError, match="already in use"):
            start_dev_broker(tmp_path / "c", port=port, tls_port=free_port())
    finally:
        handle.stop()
    assert not handle.alive()
    wait_until(lambda: connack_code_or_none(port) is None, TIMEOUT, "port closed")


def connack_code_or_none(port: int) -> int | None:
    try:
        return connack_code(LOOPBACK, port, "x", "y", timeout=0.5)
    except OSError:
        return None


def test_cli_run_serves_the_directory_on_loopback_as_the_current_user(tmp_path):
    require_binary("mosquitto", "apt-get install mosquitto")
    port, tls_port = free_port(), free_port()
    root = layout.init(tmp_path / "b", local_port=port, tls_port=tls_port).dir.root  # LAN TLS
    user, gw_password = layout.gateway_credentials(root)
    homeguard = Path(sys.executable).parent / "homeguard"
    proc = Proc("broker-run", [homeguard, "broker", "run", "-d", root], tmp_path).start()
    try:
        proc.wait_port(port, 20).wait_port(tls_port, 20)
        assert connack_code(LOOPBACK, port, user, gw_password) == 0
        dev_conf = layout.BrokerDir(root).dev_config_file.read_text()
        assert f"listener {tls_port} 127.0.0.1\n" in dev_conf
        assert f"listener {tls_port}\n" in layout.BrokerDir(root).config_file.read_text()
    finally:
        proc.stop()
