"""ThingsBoard IoT Gateway as a peer of the gateway: its MQTT connector
(QoS 1, a persistent session on the bench's broker, a JSON converter
mapping the message's `data` to four integer time series, the device name
from `dev`) and its in-memory storage, sending upstream as ThingsBoard's
gateway API (`v1/gateway/telemetry`, QoS 1, the access token as username).

The platform it sends to is not ThingsBoard but a plain Mosquitto started
for the run (`PlatformBroker`); a client there (`Platform`) answers the
one RPC the TB gateway waits for and counts the values that arrive. It has
drained the stream when values have arrived for every message, or when
nothing more has for IDLE_S: the TB gateway stamps a value with the time it
converted the message (ms) and sends a device's values keyed by that time,
so two messages of one device in the same millisecond leave one value a
key; the table shows how many messages' worth arrived. Rate limits are off
("0:0": they protect a ThingsBoard server), and so are remote
configuration, remote shell and statistics. Nothing checks the signature,
de-duplicates, or stores a message durably before it is acked."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from broker.binary import mosquitto_binary
from homeguard.bench.peers_install import TBGateway
from homeguard.bench.peers_nodered import tree_cpu
from homeguard.bench.rig import BenchError, Proc, Rig, wait_until
from homeguard.bench.servers import Server, port_open
from homeguard.bench.throughput import Drained

KEYS = ("rms_ma", "v_dv", "leak_ma", "temp_dc")
# its update check (an HTTPS post at start) and pip installs go to a dead
# loopback proxy: the bench sends nothing off this machine
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "NO_PROXY": "127.0.0.1,localhost", "PIP_NO_INDEX": "1"}
NO_LIMIT = "0:0"
RPC_REQUEST, RPC_RESPONSE = "v1/devices/me/rpc/request/", "v1/devices/me/rpc/response/"


class PlatformBroker(Server):
    """A plain Mosquitto listener on loopback, anonymous, no persistence."""

    name = "platform-mosquitto"

    def __init__(self, root: Path) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise BenchError("mosquitto is not installed (Debian: mosquitto)")
        super().__init__(binary, root)

    def argv(self) -> list[str]:
        conf = self.root / "mosquitto.conf"
        conf.write_text(f"listener {self.port} {self.host}\nallow_anonymous true\n"
                        "persistence false\nmax_queued_messages 0\n")
        return [self.binary, "-c", str(conf)]

    def ready(self) -> bool:
        return port_open(self.port, self.host)


class Platform:
    """What the TB gateway sees of ThingsBoard, on the platform broker: the
    answer to its session-limits RPC (no rate limits, 100 messages in flight,
    64 KiB payloads; it sends nothing until it has one), and a counter of
    time-series values that arrive (v1/gateway/telemetry:
    {"<device>": [{"ts": .., "values": {"<key>": .., ..}}, ..], ..}; the TB
    gateway groups a device's values by timestamp, not by message)."""

    LIMITS = {"rateLimits": {}, "gatewayRateLimits": {}, "maxInflightMessages": 100,
              "maxPayloadSize": 65536}

    def __init__(self, broker: PlatformBroker) -> None:
        self.lock = threading.Lock()
        self.values = 0  # data points (one a key): TB merges a device's keys by timestamp
        self.first = self.last = 0.0  # when the first and the last arrived
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-platform")
        ready = threading.Event()
        self.client.on_connect = lambda c, *a: c.subscribe(
            [("v1/gateway/telemetry", 1), (RPC_REQUEST + "+", 1)])
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not ready.wait(10):
            raise BenchError("the platform broker did not grant the subscriptions")

    def _message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        if msg.topic.startswith(RPC_REQUEST):
            if body.get("method") == "getSessionLimits":
                client.publish(RPC_RESPONSE + msg.topic[len(RPC_REQUEST):],
                               json.dumps(self.LIMITS), qos=1)
            return
        now = time.time()
        with self.lock:
            self.values += sum(len(e["values"]) for entries in body.values() for e in entries)
            self.first, self.last = self.first or now, now

    def reset(self) -> None:
        with self.lock:
            self.values = 0
            self.first = self.last = 0.0

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connector(rig: Rig, client_id: str) -> dict:
    return {
        "broker": {"host": rig.broker.host, "port": rig.broker.port, "clientId": client_id,
                   "version": 4, "cleanSession": False,
                   "security": {"type": "basic", "username": rig.gateway_user,
                                "password": rig.gateway_password}},
        "mapping": [{"topicFilter": "hg/v1/+/telemetry", "subscriptionQos": 1, "converter": {
            "type": "json",
            "deviceInfo": {"deviceNameExpressionSource": "message",
                           "deviceNameExpression": "${dev}",
                           "deviceProfileExpressionSource": "constant",
                           "deviceProfileExpression": "hg-telemetry"},
            "sendDataOnlyOnChange": False, "attributes": [],
            "timeseries": [{"type": "integer", "key": k, "value": f"${{data.{k}}}"}
                           for k in KEYS]}}],
        "requestsMapping": {}}


def service(platform: PlatformBroker) -> dict:
    limits = ("rateLimits", "dpRateLimits", "messagesRateLimits", "deviceMessagesRateLimits",
              "deviceRateLimits", "deviceDpRateLimits")
    return {
        "thingsboard": {"host": platform.host, "port": platform.port, "remoteShell": False,
                        "remoteConfiguration": False, "statistics": {"enable": False},
                        "security": {"type": "accessToken", "accessToken": "bench-token"},
                        "qos": 1, "reportStrategy": {"type": "ON_RECEIVED"}}
        | dict.fromkeys(limits, NO_LIMIT),
        "storage": {"type": "memory", "read_records_count": 100,
                    "max_records_count": 1_000_000},
        "grpc": {"enabled": False},
        "connectors": [{"type": "mqtt", "name": "hg", "configuration": "mqtt.json"}]}


# INFO: the connector's subscription is logged (SUBSCRIBED); nothing per message
LOGS = {"version": 1, "disable_existing_loggers": False,
        "handlers": {"console": {"class": "logging.StreamHandler", "level": "INFO"}},
        "root": {"level": "INFO", "handlers": ["console"]}}
SUBSCRIBED = '"hg" subscription success to topic'



class TBGatewayConsumer:
    """thingsboard-gateway from its own venv, its config dir in the scratch dir.

    Unlike the other consumers it is started (and subscribed) before the
    stream is queued: its connector drops what a persistent session delivers
    before the connector has subscribed again (a message is matched against
    its own subscriptions, and one that matches none is dropped), which lost
    most of a queued stream when it drained one like the others."""

    IDLE_S = 10.0  # nothing more arrives upstream: what arrived is what it delivered

    def __init__(self, rig: Rig, found: TBGateway, platform: PlatformBroker,
                 counter: Platform) -> None:
        self.rig, self.counter = rig, counter
        self.delivered: list[int] = []  # messages' worth of values upstream, per drain
        conf = rig.tmp / "tb_gateway"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "tb_gateway.json").write_text(json.dumps(service(platform), indent=1))
        (conf / "mqtt.json").write_text(json.dumps(connector(rig, "bench-tb-gateway"), indent=1))
        (conf / "logs.json").write_text(json.dumps(LOGS))
        self.proc = Proc("tb-gateway", [str(found.python), "-m", "thingsboard_gateway.tb_gateway"],
                         rig.tmp, env={"TB_GW_CONFIG_DIR": str(conf)} | OFFLINE, cwd=conf)
        rig.procs.append(self.proc)
        self.cpu0 = 0.0

    def prime(self) -> None:
        """Start it and wait until its connector has subscribed."""
        self.counter.reset()
        before = self._subscriptions()  # its log file grows across rounds
        self.proc.start()
        try:
            self.proc.wait_ready(lambda: self._subscriptions() > before, 60)
        except (TimeoutError, RuntimeError) as e:
            self.proc.stop()
            raise BenchError(str(e)) from e
        self.cpu0 = tree_cpu(self.proc)

    def _subscriptions(self) -> int:
        return self.proc.logs(10_000_000).count(SUBSCRIBED)

    def drain(self, count: int, timeout: float) -> Drained:
        """From the first values to arrive upstream to the last; CPU from the
        end of prime() to the poll that saw the last (every 50 ms)."""
        c = self.counter

        def finished() -> bool:
            return c.values >= count * len(KEYS) or (
                bool(c.last) and time.time() - c.last > self.IDLE_S)

        try:
            wait_until(finished, timeout, f"tb-gateway to deliver {count}")
            cpu1 = tree_cpu(self.proc)
        except TimeoutError as e:
            raise BenchError(f"{e}: {c.values // len(KEYS)} delivered\n{self.proc.logs()}") from e
        finally:
            self.proc.stop()
        self.delivered.append(c.values // len(KEYS))
        return c.first, c.last, cpu1 - self.cpu0

    def stored(self) -> int:
        return sum(self.delivered)
