"""The gateway as a real process between a real Mosquitto and a real HTTP
centre: delivery, duplicates, rejections, and the outages it must survive
(centre down, gateway killed, broker restarted) without losing or doubling
an alarm.

The centre here is a small ThreadingHTTPServer implementing the ingest
contract of docs/centre.md (Bearer token, idempotent on (device, seq)); it
can be stopped and started again on the same port. Devices are plain paho
clients with their own broker accounts that sign with hg.protocol.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import CentreSection, MQTTSection
from gateway.mqttclient import ReadAhead
from gateway.sinks.centre import CentreSink
from gateway.source import HOLD, Deferred, MQTTSource
from gateway.store import Event, Store
from hg import protocol
from tests.harness.proc import LOOPBACK, Proc, free_port, wait_until

BIN = Path(sys.executable).parent
TOKEN = "flow-test-token"
BUTTON = "hg-b-0201"
WAIT = 15.0


# --- the centre --------------------------------------------------------------

class Centre:
    """Ingest contract on a fixed port; state survives stop()/start()."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.accepted: list[dict] = []  # every newly accepted event, in order
        self.posted: list[tuple[str, int]] = []  # every event in every 200 batch
        self.lock = threading.Lock()
        self.answer_garbage = 0  # answer this many requests with 200 and no results
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Centre:
        centre = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                if self.path.startswith("/api/v1/feedback"):
                    return centre._reply(self, 200, {"marked": 0})
                centre.ingest(self)

            def do_GET(self) -> None:  # noqa: N802 - no operator here: no feedback rows
                raw = b"[]" if self.path.startswith("/api/v1/feedback") else b"{}"
                self.send_response(200 if raw == b"[]" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ingest(self, h: BaseHTTPRequestHandler) -> None:
        if h.path != "/api/v1/ingest":
            return self._reply(h, 404, {"detail": "not found"})
        if h.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._reply(h, 401, {"detail": "gateway token not accepted"})
        body = json.loads(h.rfile.read(int(h.headers["Content-Length"])))
        with self.lock:
            if self.answer_garbage:
                self.answer_garbage -= 1
                return self._reply(h, 200, {"ok": True})
            results = []
            seen = {(e["device"], e["seq"]) for e in self.accepted}
            for e in body["events"]:
                key = (e["device"], e["seq"])
                self.posted.append(key)
                status = "duplicate" if key in seen else "accepted"
                if status == "accepted":
                    self.accepted.append({**e, "gateway": body["gateway"]})
                    seen.add(key)
                results.append({"device": e["device"], "seq": e["seq"], "status": status})
        self._reply(h, 200, {"results": results})

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, code: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(raw)))
        h.end_headers()
        h.wfile.write(raw)

    def seqs(self, device: str = BUTTON) -> list[int]:
        with self.lock:
            return [e["seq"] for e in self.accepted if e["device"] == device]

    def posts(self, device: str = BUTTON) -> list[int]:
        with self.lock:
            return [s for d, s in self.posted if d == device]


# --- a device ----------------------------------------------------------------

class Device:
    """A paho client with its own broker account; records verified acks."""

    def __init__(self, broker, device_id: str, key: bytes) -> None:  # noqa: ANN001
        self.id = device_id
        self.key = key
        self.acks: list[tuple[int, str]] = []
        self.born: dict[tuple[str, int, str], int] = {}  # (device, seq, type) -> its ts
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{device_id}",
                                  clean_session=True)
        self.client.username_pw_set(device_id, broker.add_device(device_id))
        self.client.on_connect = lambda c, *_: c.subscribe(protocol.topic(device_id, "ack"), 1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *_: self.subscribed.clear()
        self.client.reconnect_delay_set(1, 2)
        self.client.connect_async(broker.host, broker.port, 30)
        self.client.loop_start()
        assert self.subscribed.wait(WAIT), f"{device_id} did not connect"

    def _on_message(self, client, userdata, msg) -> None:  # noqa: ANN001
        m = protocol.verify(msg.topic, msg.payload, {self.id: self.key}.get)
        self.acks.append((m["data"]["ref"], m["type"]))

    def wire(self, seq: int, typ: str = "fire", key: bytes | None = None,
             dev: str | None = None, ts: int | None = -1) -> bytes:
        if ts == -1:  # the event's time, kept for its resends as a device does
            ts = self.born.setdefault((dev or self.id, seq, typ), int(time.time() * 1000))
        return protocol.encode(key or self.key, dev or self.id, seq, "alarm", typ, 0,
                               {"btn": typ[0]}, ts)

    def publish(self, wire: bytes, leaf: str = "event") -> None:
        info = self.client.publish(protocol.topic(self.id, leaf), wire, qos=1)
        info.wait_for_publish(WAIT)

    def acked(self, seq: int) -> list[str]:
        return [t for ref, t in list(self.acks) if ref == seq]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- the gateway -------------------------------------------------------------

class Gateway:
    def __init__(self, broker, tmp: Path, centre: Centre, devices: dict[str, bytes]) -> None:  # noqa: ANN001
        self.tmp = tmp
        self.metrics_port = free_port()
        (tmp / "devices.json").write_text(json.dumps({"devices": [
            {"id": d, "key": k.hex(), "type": "button"} for d, k in devices.items()]}))
        self.config = tmp / "gateway.toml"
        self.config.write_text(
            f'[gateway]\nid = "gw-flow"\ndata_dir = "{tmp / "gw"}"\n\n'
            f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
            f'username = "{broker.gateway_user}"\npassword = "{broker.gateway_password}"\n'
            f'client_id = "gw-flow"\nkeepalive = 5\n\n'
            f'[registry]\npath = "{tmp / "devices.json"}"\n\n'
            f'[centre]\nurl = "{centre.url}"\ntoken = "{TOKEN}"\n'
            f"timeout_s = 2.0\nbackoff_min_s = 0.1\nbackoff_max_s = 0.5\n\n"
            f"[metrics]\nport = {self.metrics_port}\n")
        self.proc: Proc | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.proc = Proc(f"gateway-{self.starts}", [BIN / "homeguard", "gateway", "--config",
                                                    self.config], self.tmp).start()
        # the whole log: a gateway that comes back to a backlog logs hundreds of lines at once
        self.proc.wait_ready(lambda: "subscribed topics=" in self.proc.logs(1 << 24), WAIT)  # type: ignore[union-attr]

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def logs(self) -> str:
        return "".join(Proc(f"gateway-{i}", [], self.tmp).logs(20000)
                       for i in range(1, self.starts + 1))

    def deliveries(self) -> list[tuple]:
        """(outcome, attempts, last_error, delivered_at) of every centre delivery."""
        with sqlite3.connect(self.tmp / "gw" / "gateway.db") as db:
            return db.execute("SELECT outcome, attempts, last_error, delivered_at FROM "
                              "deliveries WHERE sink = 'centre' ORDER BY event_id").fetchall()

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(f"http://{LOOPBACK}:{self.metrics_port}/metrics", timeout=5).text
        want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
                       if labels else "")
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0


class Flow:
    def __init__(self, broker, tmp: Path) -> None:  # noqa: ANN001
        self.broker = broker
        self.key = secrets.token_bytes(32)
        self.centre = Centre().start()
        self.gateway = Gateway(broker, tmp, self.centre, {BUTTON: self.key})
        self.gateway.start()
        self.device = Device(broker, BUTTON, self.key)

    def close(self) -> None:
        self.device.stop()
        self.gateway.stop()
        self.centre.stop()

    def wait(self, check, what: str) -> None:  # noqa: ANN001
        wait_until(check, WAIT, f"{what}\n--- gateway log ---\n{self.gateway.logs()[-4000:]}")


@pytest.fixture
def flow(mosquitto, tmp_path: Path) -> Iterator[Flow]:  # noqa: ANN001
    f = Flow(mosquitto, tmp_path)
    yield f
    f.close()


# --- cases -------------------------------------------------------------------

def test_alarm_arrives_once_with_times_and_device_sees_stored_then_delivered(flow: Flow) -> None:
    dev = flow.device
    before = int(time.time() * 1000)
    dev.publish(dev.wire(1, "medical"))
    flow.wait(lambda: dev.acked(1) == ["stored", "delivered"], "stored then delivered")
    [alarm] = flow.centre.accepted
    assert (alarm["device"], alarm["seq"], alarm["kind"], alarm["type"]) == (
        BUTTON, 1, "alarm", "medical")
    assert alarm["gateway"] == "gw-flow"
    assert before <= alarm["device_time_ms"] == alarm["event_time_ms"]
    assert before <= alarm["gateway_time_ms"] <= int(time.time() * 1000)
    assert abs(alarm["skew_ms"]) < 5000
    assert flow.gateway.metric("hg_gateway_delivered_total", sink="centre") == 1.0


def test_resent_message_is_acked_again_and_forwarded_once(flow: Flow) -> None:
    dev = flow.device
    wire = dev.wire(7)
    dev.publish(wire)
    flow.wait(lambda: dev.acked(7) == ["stored", "delivered"], "first delivery")
    dev.publish(wire)  # the device missed the acks and resends the same bytes
    flow.wait(lambda: dev.acked(7) == ["stored", "delivered"] * 2, "acks again")
    assert flow.centre.posts() == [7]
    assert flow.gateway.metric("hg_gateway_duplicates_total") == 1.0


def test_bad_messages_are_rejected_and_the_next_good_one_flows(flow: Flow) -> None:
    dev = flow.device
    stranger_id = "hg-x-0999"  # has a broker account, but no key in the registry
    stranger = Device(flow.broker, stranger_id, secrets.token_bytes(32))
    try:
        dev.publish(dev.wire(1, key=secrets.token_bytes(32)))  # bad signature
        stranger.publish(stranger.wire(1))  # unknown device
        dev.publish(dev.wire(2, dev="hg-b-0202"))  # body names another device
        dev.publish(dev.wire(3))
        flow.wait(lambda: flow.centre.seqs() == [3], "the good alarm after the bad ones")
    finally:
        stranger.stop()
    logs = flow.gateway.logs()
    for reason in ("bad_signature", "unknown_device", "topic_mismatch"):
        assert f"rejected reason={reason}" in logs
        assert flow.gateway.metric("hg_gateway_rejected_total", reason=reason) == 1.0
    assert dev.acked(1) == [] and dev.acked(2) == []
    assert flow.centre.seqs(stranger_id) == []


def test_alarms_wait_for_a_centre_that_is_down(flow: Flow) -> None:
    dev = flow.device
    flow.centre.stop()
    for seq in range(1, 6):
        dev.publish(dev.wire(seq))
    flow.wait(lambda: all(dev.acked(s) == ["stored"] for s in range(1, 6)), "5 stored acks")
    flow.wait(lambda: flow.gateway.metric("hg_gateway_outbox_depth", sink="centre") == 5.0,
              "outbox depth 5 on /metrics")
    assert "centre unreachable" in flow.gateway.logs()
    assert flow.gateway.metric("hg_gateway_outbox_oldest_age_seconds", sink="centre") > 0
    assert flow.centre.accepted == []
    # a failed attempt is written on the rows after the gauge shows them: wait for it
    flow.wait(lambda: all(a >= 2 for _, a, _, _ in flow.gateway.deliveries()),
              "two failed attempts on every delivery row")
    flow.centre.start()
    flow.wait(lambda: flow.centre.seqs() == [1, 2, 3, 4, 5], "all 5 in order")
    flow.wait(lambda: all("delivered" in dev.acked(s) for s in range(1, 6)), "delivered acks")
    assert flow.centre.posts() == [1, 2, 3, 4, 5]
    # each delivery row tells what happened to it
    for outcome, attempts, error, delivered_at in flow.gateway.deliveries():
        assert outcome == "accepted" and delivered_at is not None
        assert attempts >= 2 and "ConnectError" in error


def test_gateway_killed_with_stored_alarms_delivers_each_once(flow: Flow) -> None:
    dev = flow.device
    flow.centre.stop()
    for seq in range(1, 4):
        dev.publish(dev.wire(seq))
    flow.wait(lambda: all(dev.acked(s) == ["stored"] for s in range(1, 4)), "stored acks")
    flow.gateway.kill()
    flow.centre.start()
    flow.gateway.start()
    flow.wait(lambda: flow.centre.seqs() == [1, 2, 3], "delivery after the restart")
    flow.wait(lambda: all("delivered" in dev.acked(s) for s in range(1, 4)), "delivered acks")
    dev.publish(dev.wire(4))  # and the restarted gateway carries on
    flow.wait(lambda: flow.centre.seqs() == [1, 2, 3, 4], "a new alarm")
    assert flow.centre.posts() == [1, 2, 3, 4]


def test_alarms_sent_while_the_gateway_is_down_wait_at_the_broker(flow: Flow) -> None:
    dev = flow.device
    dev.publish(dev.wire(1))
    flow.wait(lambda: flow.centre.seqs() == [1], "first alarm")
    flow.gateway.kill()
    for seq in range(2, 5):
        dev.publish(dev.wire(seq))  # PUBACKed by the broker, queued for the gateway
    assert all(dev.acked(s) == [] for s in range(2, 5))
    flow.gateway.start()
    flow.wait(lambda: flow.centre.seqs() == [1, 2, 3, 4], "queued alarms after the restart")
    flow.wait(lambda: all(dev.acked(s) == ["stored", "delivered"] for s in range(2, 5)),
              "acks for the queued alarms")
    assert flow.centre.posts() == [1, 2, 3, 4]


def test_broker_restart_while_the_gateway_runs(flow: Flow) -> None:
    dev = flow.device
    dev.publish(dev.wire(1))
    flow.wait(lambda: flow.centre.seqs() == [1], "alarm before the restart")
    flow.broker.restart()
    flow.wait(lambda: flow.gateway.logs().count("subscribed topics=") >= 2,
              "the gateway to reconnect")
    assert dev.subscribed.wait(WAIT), "device did not reconnect"
    dev.publish(dev.wire(2))
    flow.wait(lambda: flow.centre.seqs() == [1, 2], "alarm after the restart")
    flow.wait(lambda: dev.acked(2) == ["stored", "delivered"], "acks after the restart")
    assert "session_present=True" in flow.gateway.logs()


def test_sigterm_with_a_backlog_stops_promptly_and_keeps_it(flow: Flow) -> None:
    dev = flow.device
    flow.centre.stop()
    for seq in (1, 2):
        dev.publish(dev.wire(seq))
    flow.wait(lambda: all(dev.acked(s) == ["stored"] for s in (1, 2)), "stored acks")
    assert flow.gateway.proc is not None
    started = time.monotonic()
    assert flow.gateway.proc.stop(timeout=10) == 0
    assert time.monotonic() - started < 8, "shutdown waited out the backoff"
    logs = flow.gateway.logs()
    assert "gateway stopped" in logs and "Traceback" not in logs
    flow.centre.start()
    flow.gateway.start()
    flow.wait(lambda: flow.centre.seqs() == [1, 2], "backlog delivered after the restart")
    assert flow.centre.posts() == [1, 2]


def test_sigterm_after_delivery_sends_nothing_again(flow: Flow) -> None:
    dev = flow.device
    dev.publish(dev.wire(1))
    flow.wait(lambda: dev.acked(1) == ["stored", "delivered"], "delivery")
    assert flow.gateway.proc is not None and flow.gateway.proc.stop() == 0
    flow.gateway.start()
    dev.publish(dev.wire(2))
    flow.wait(lambda: flow.centre.seqs() == [1, 2], "the next alarm")
    assert flow.centre.posts() == [1, 2]


def run_gateway(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BIN / "homeguard", "gateway", "--config", config],
                          capture_output=True, text=True, timeout=60, cwd=config.parent)


@pytest.mark.parametrize(("case", "expect"), [
    ("unknown key", "mqtt.hots: Extra inputs are not permitted"),
    ("no config file", "no such config file"),
    ("no registry file", "device registry file not found"),
    ("registry not JSON", "not a device registry"),
    ("registry key not hex", "device hg-b-0001 has no hex key"),
])
def test_start_up_errors_exit_2_with_a_message(tmp_path: Path, case: str, expect: str) -> None:
    registry = tmp_path / "devices.json"
    key = "00" * 32 if case != "registry key not hex" else "zz"
    if case != "no registry file":
        registry.write_text("{devices" if case == "registry not JSON" else json.dumps(
            {"devices": [{"id": "hg-b-0001", "key": key}]}))
    config = tmp_path / "gateway.toml"
    if case != "no config file":
        config.write_text(
            f'[gateway]\ndata_dir = "{tmp_path / "gw"}"\n[registry]\npath = "{registry}"\n'
            f'[mqtt]\nport = {free_port()}\n{"hots = 1" if case == "unknown key" else ""}\n'
            '[centre]\nurl = "http://127.0.0.1:9"\ntoken = "t"\n')
    done = run_gateway(config)
    assert done.returncode == 2, done.stderr
    assert expect in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_gateway_started_before_its_broker_says_so_in_one_line(tmp_path: Path) -> None:
    """Nothing listens on the broker's port: the gateway keeps running (the
    broker may come later) and says why it cannot reach it, once."""
    registry = tmp_path / "devices.json"
    registry.write_text(json.dumps({"devices": [{"id": "hg-b-0001", "key": "00" * 32}]}))
    port = free_port()  # free: nothing listens there
    config = tmp_path / "gateway.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "gw"}"\n'
                      f'[registry]\npath = "{registry}"\n[mqtt]\nport = {port}\n'
                      '[centre]\nurl = "http://127.0.0.1:9"\ntoken = "t"\n')
    gw = Proc("gateway", [str(BIN / "homeguard"), "gateway", "--config", str(config)], tmp_path)
    gw.start()
    try:
        line = f"cannot reach the broker at 127.0.0.1:{port}: Connection refused"
        wait_until(lambda: line in gw.logs(), 4 * WAIT, "the broker's refusal in the log")
        assert gw.alive()
    finally:
        gw.stop()
    assert gw.logs().count(line) == 1, gw.logs()  # once, not at every retry
    assert "Traceback" not in gw.logs()


def test_store_it_cannot_use_exits_1_with_a_message(tmp_path: Path) -> None:
    registry = tmp_path / "devices.json"
    registry.write_text(json.dumps({"devices": [{"id": "hg-b-0001", "key": "00" * 32}]}))
    (tmp_path / "gw").mkdir()
    with sqlite3.connect(tmp_path / "gw" / "gateway.db") as db:
        db.execute("PRAGMA user_version = 99")
    config = tmp_path / "gateway.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "gw"}"\n'
                      f'[registry]\npath = "{registry}"\n'
                      '[centre]\nurl = "http://127.0.0.1:9"\ntoken = "t"\n')
    done = run_gateway(config)
    assert done.returncode == 1, done.stderr
    assert "store version 99 is newer than this gateway" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_centre_sink_survives_an_answer_without_results(tmp_path: Path) -> None:
    """A centre (or a proxy in front of it) answering 200 with something else
    must not mark the batch delivered, nor stop the sink."""
    centre = Centre().start()
    centre.answer_garbage = 2
    store = Store(tmp_path / "gw.db", sinks=("centre",))
    now = int(time.time() * 1000)
    store.insert(Event(BUTTON, 1, "alarm", "fire", now, now, now, 0, 0, {}))
    acks: list[tuple[str, int, str]] = []
    cfg = CentreSection(url=centre.url, token=TOKEN, backoff_min_s=0.05, backoff_max_s=0.1)
    sink = CentreSink(cfg, "gw-flow", store, lambda d, s, t: acks.append((d, s, t)))
    sink.start()
    try:
        wait_until(lambda: centre.seqs() == [1], WAIT, "delivery after two bad answers")
        wait_until(lambda: acks == [(BUTTON, 1, "delivered")], WAIT, "one delivered ack")
        assert centre.answer_garbage == 0
        assert store.backlog("centre")[0] == 0
    finally:
        sink.stop()
        centre.stop()


def test_centre_sink_names_a_refused_token(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """A wrong token is a configuration problem, not an outage: say so, keep the events."""
    centre = Centre().start()
    store = Store(tmp_path / "gw.db", sinks=("centre",))
    now = int(time.time() * 1000)
    store.insert(Event(BUTTON, 1, "alarm", "fire", now, now, now, 0, 0, {}))
    cfg = CentreSection(url=centre.url, token="wrong-token", backoff_min_s=0.05,
                        backoff_max_s=0.1)
    sink = CentreSink(cfg, "gw-flow", store, lambda d, s, t: None)
    try:
        with caplog.at_level(logging.ERROR, logger="homeguard.gateway.centre"):
            sink.start()
            wait_until(lambda: "centre refused the gateway token status=401" in caplog.text,
                       WAIT, "the token refusal to be logged")
    finally:
        sink.stop()
        centre.stop()
    assert "centre unreachable" not in caplog.text
    assert centre.accepted == []
    delivery = store.delivery("centre", BUTTON, 1)
    assert delivery is not None and delivery["delivered_at"] is None
    assert "401" in delivery["last_error"]


class Recorder:
    """A source handler that holds (does not PUBACK) the first `hold` messages."""

    def __init__(self, hold: int) -> None:
        self.hold = hold
        self.seen: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, topic: str, payload: bytes, received_ms: int,
                 retained: bool = False) -> str:
        with self.lock:
            self.seen.append(protocol.parse(payload)[0]["seq"])
            if self.hold:
                self.hold -= 1
                return HOLD
        return "stored"

    def seqs(self) -> list[int]:
        with self.lock:
            return list(self.seen)


# the source's contract holds for both readers: stock paho (the default) and
# the tuned read-ahead reader ([mqtt] reader = "tuned")
READERS = pytest.mark.parametrize("reader", ["paho", "tuned"])


@READERS
def test_held_message_is_not_pubacked_and_comes_back_on_the_next_connect(
        mosquitto, reader: str) -> None:  # noqa: ANN001
    cfg = MQTTSection(host=mosquitto.host, port=mosquitto.port, username=mosquitto.gateway_user,
                      password=mosquitto.gateway_password, client_id=f"gw-hold-{reader}",
                      keepalive=5, reader=reader)

    def connect(handler: Recorder) -> MQTTSource:
        source = MQTTSource(cfg, handler)
        source.start()
        assert source.subscribed.wait(WAIT), "gateway source did not subscribe"
        return source

    first = Recorder(hold=1)
    source = connect(first)
    device = Device(mosquitto, BUTTON, secrets.token_bytes(32))
    try:
        device.publish(device.wire(1))
        wait_until(lambda: first.seqs() == [1], WAIT, "first delivery (held)")
        source.stop()
        second = Recorder(hold=0)
        source = connect(second)  # the same client id: the broker's session
        wait_until(lambda: second.seqs() == [1], WAIT, "the held message again")
        source.stop()
        third = Recorder(hold=0)
        source = connect(third)
        device.publish(device.wire(2))
        wait_until(lambda: 2 in third.seqs(), WAIT, "the next message")
        assert third.seqs() == [2], "the PUBACKed message was delivered again"
    finally:
        source.stop()
        device.stop()


@READERS
def test_a_message_in_hand_when_the_gateway_stops_is_pubacked_first(
        mosquitto, reader: str) -> None:  # noqa: ANN001
    """stop() while a message is being handled: the handler finishes and its
    PUBACK goes before the DISCONNECT, so the next start is not handed the
    message again (it used to be queued behind the DISCONNECT and lost)."""
    cfg = MQTTSection(host=mosquitto.host, port=mosquitto.port, username=mosquitto.gateway_user,
                      password=mosquitto.gateway_password, client_id=f"gw-stop-{reader}",
                      keepalive=5, reader=reader)
    inside, release = threading.Event(), threading.Event()

    def slow(topic: str, payload: bytes, received_ms: int, retained: bool = False) -> str:
        inside.set()
        assert release.wait(WAIT)
        return "stored"

    source = MQTTSource(cfg, slow)
    source.start()
    assert source.subscribed.wait(WAIT), "gateway source did not subscribe"
    device = Device(mosquitto, BUTTON, secrets.token_bytes(32))
    try:
        device.publish(device.wire(1))
        assert inside.wait(WAIT), "the message at the handler"
        stopper = threading.Thread(target=source.stop)
        stopper.start()
        wait_until(lambda: source.stopping.is_set(), WAIT, "stop() under way")
        release.set()  # the handler finishes while stop() waits for it
        stopper.join(WAIT)
        assert not stopper.is_alive()
        again = Recorder(hold=0)
        source = MQTTSource(cfg, again)  # the same client id: the broker's session
        source.start()
        assert source.subscribed.wait(WAIT), "gateway source did not subscribe again"
        device.publish(device.wire(2))
        wait_until(lambda: 2 in again.seqs(), WAIT, "the next message")
        assert again.seqs() == [2], "the message handled during stop() was delivered again"
        source.stop()
    finally:
        device.stop()


class Committer:
    """A source handler like the lanes': each message's Deferred is done later,
    by another thread, a batch at a time, which then flushes the PUBACKs."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.waiting: list[Deferred] = []
        self.lock = threading.Lock()
        self.source: MQTTSource | None = None

    def __call__(self, topic: str, payload: bytes, received_ms: int,
                 retained: bool = False) -> Deferred:
        d = Deferred("stored")
        with self.lock:
            self.seen.append(protocol.parse(payload)[0]["seq"])
            self.waiting.append(d)
        return d

    def commit(self) -> int:
        with self.lock:
            batch, self.waiting = self.waiting, []
        for d in batch:
            d.done()
        assert self.source is not None
        self.source.flush_acks()
        return len(batch)


@READERS
@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_a_burst_arrives_whole_and_in_order_and_batched_pubacks_release_it(
        mosquitto, tls: bool, reader: str) -> None:  # noqa: ANN001
    # a burst larger than one read (64 KB) and than one TLS record reaches the
    # handler whole and in order; PUBACKs sent a batch at a time by another
    # thread leave nothing for the broker to deliver again
    port = mosquitto.tls_port if tls else mosquitto.port
    cfg = MQTTSection(host="localhost" if tls else mosquitto.host, port=port,
                      username=mosquitto.gateway_user, password=mosquitto.gateway_password,
                      client_id=f"gw-burst-{tls}-{reader}", keepalive=5,
                      tls_ca=mosquitto.ca_path if tls else None, reader=reader)
    device = Device(mosquitto, BUTTON, secrets.token_bytes(32))
    committer = Committer()
    source = MQTTSource(cfg, committer)
    committer.source = source
    source.start()  # the session, subscribed; then the burst queues at the broker
    assert source.subscribed.wait(WAIT), "gateway source did not subscribe"
    source.stop()
    wires = [device.wire(seq) for seq in range(1, 1201)]
    for w in wires:
        device.publish(w)
    assert sum(len(w) for w in wires) > 2 * 65536
    source = MQTTSource(cfg, committer)
    committer.source = source
    source.start()  # the whole burst at once, then silence
    try:
        assert source.subscribed.wait(WAIT), "gateway source did not subscribe"
        # the hooks into paho's internals are in effect with the tuned reader only
        assert isinstance(source.client.socket(), ReadAhead) == (reader == "tuned")
        wait_until(lambda: committer.commit() >= 0 and len(committer.seen) >= 1200, WAIT,
                   "the burst at the handler")
        committer.commit()
        assert committer.seen == list(range(1, 1201))
    finally:
        source.stop()
    # everything was PUBACKed: a new connection of the same session gets nothing again
    again = Committer()
    source = MQTTSource(cfg, again)
    again.source = source
    source.start()
    try:
        assert source.subscribed.wait(WAIT), "gateway source did not subscribe again"
        device.publish(device.wire(1201))
        wait_until(lambda: 1201 in again.seen, WAIT, "the next message")
        assert again.seen == [1201], "a PUBACKed message was delivered again"
    finally:
        source.stop()
        device.stop()


def test_read_ahead_serves_small_reads_from_one_large_one_and_reports_what_it_holds() -> None:
    # paho's loop asks pending() before it sleeps in select(): bytes held here
    # must be reported, or the messages in them would wait for the next packet
    import socket

    a, b = socket.socketpair()
    a.setblocking(False)
    r = ReadAhead(a)
    try:
        b.sendall(bytes(range(100)))  # a local socket pair: readable at once
        got = bytearray(r.recv(1))
        assert got == b"\x00" and r.pending() == 99  # one read took all 100 bytes
        while len(got) < 100:
            got += r.recv(7)
            assert r.pending() == 100 - len(got)
        assert bytes(got) == bytes(range(100))
        with pytest.raises(BlockingIOError):
            r.recv(1)  # nothing held, nothing on the socket
        assert r.fileno() == a.fileno()  # the rest is the socket's
        b.close()
        wait_until(lambda: r.recv(1) == b"", WAIT, "end of stream")
    finally:
        a.close()
        b.close()


def test_the_lean_publish_path_gives_what_paho_gives(mosquitto) -> None:  # noqa: ANN001
    # gateway.mqttclient.Client hands on_message its own small Message; a plain
    # paho client on the same broker must see the very same fields
    from gateway.mqttclient import Client, Message

    device = Device(mosquitto, BUTTON, secrets.token_bytes(32))
    retained = (protocol.topic(BUTTON, "status"), b'{"x":1}')
    device.client.publish(*retained, qos=1, retain=True).wait_for_publish(WAIT)
    seen: dict[str, list[tuple]] = {"lean": [], "paho": []}
    clients = []
    for name, cls in (("lean", Client), ("paho", mqtt.Client)):
        c = cls(CallbackAPIVersion.VERSION2, client_id=f"lean-{name}", clean_session=True)
        # one connection per account (the broker keys sessions by username)
        c.username_pw_set(f"gw-lean-{name}", mosquitto.add_gateway(f"gw-lean-{name}"))
        got = threading.Event()
        c.on_subscribe = lambda *a, ev=got: ev.set()
        c.on_connect = lambda cl, *a: cl.subscribe("hg/v1/#", 1)
        c.on_message = lambda cl, u, m, k=name: seen[k].append(
            (type(m).__name__, m.topic, bytes(m.payload), m.qos, m.retain))
        c.connect(mosquitto.host, mosquitto.port)
        c.loop_start()
        assert got.wait(WAIT)
        clients.append(c)
    try:
        sent = [retained,  # delivered on subscribing, with the retain flag
                (protocol.topic(BUTTON, "event"), device.wire(1)),
                (protocol.topic(BUTTON, "telemetry"), b"\x00\xff" * 300),
                (protocol.topic(BUTTON, "status"), b"")]
        for (topic, payload), qos in zip(sent[1:], (1, 0, 1), strict=True):
            device.client.publish(topic, payload, qos=qos).wait_for_publish(WAIT)
        wait_until(lambda: len(seen["lean"]) == len(seen["paho"]) == len(sent), WAIT,
                   "every message at both clients")
        assert [m[1:] for m in seen["lean"]] == [m[1:] for m in seen["paho"]]
        assert {m[0] for m in seen["lean"]} == {Message.__name__}
        assert [m[1:3] for m in seen["lean"]] == sent
        assert [m[3:] for m in seen["lean"]] == [(1, True), (1, False), (0, False), (1, False)]
    finally:
        device.client.publish(retained[0], b"", qos=1, retain=True)  # clear it
        device.stop()
        for c in clients:
            c.disconnect()
            c.loop_stop()
