"""Device persistence (hg.config, hg.seqres, hg.outbox) under CPython and real
MicroPython with identical output, then the device runtime (hg.device with
hg.simhal) against the real Mosquitto from broker/ config, the test playing
the gateway with signed acks."""

from __future__ import annotations

import json
from pathlib import Path

from tests.firmware import store_check

HERE = Path(__file__).parent
CHECK = HERE / "firmware" / "store_check.py"


def rows(out: str) -> dict[str, dict]:
    got = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {r.pop("check"): r for r in got}


def cpython_out(tmp_path: Path, capsys) -> str:
    store_check.main(str(tmp_path))
    return capsys.readouterr().out


def test_store_check_values(tmp_path: Path, capsys) -> None:
    r = rows(cpython_out(tmp_path, capsys))
    assert r["config good"]["errors"] == []
    assert r["config good"]["residual"] == {"set": 300, "hyst": 30, "min_ms": 1000}
    assert r["config good"]["telemetry_s"] == 10
    assert r["config bad thresholds"]["errors"] == [
        "thresholds.leak: unknown key",
        "thresholds.residual_ma.set: 10 is outside 20..1000",
        "thresholds.under_voltage_v.x: unknown key",
        "thresholds.under_voltage_v.hyst: 150 is outside 0..100"]
    assert r["config bad broker"]["errors"] == [
        "broker.hots: unknown key", "broker.host: missing",
        "broker.port: must be an integer", "broker.tls: must be true or false"]
    assert r["config missing file"]["errors"][0].endswith("c.json: missing or unreadable")
    assert r["remote ok"] == {"errors": [], "residual": {"set": 100, "hyst": 30, "min_ms": 1000},
                              "telemetry_s": 20, "cal": {"r_gain_num": 7}, "old": 10}
    assert r["remote bad"]["errors"] == ["key_hex: not a remote config key"]
    assert (r["stage"], r["rollback"]["now"], r["commit"]["files"]) == (
        {"trial": True, "now": 30, "prev": 10}, 10, ["config.json"])
    assert r["seq first boot"] == {"first": [1, 2, 3], "last": 600, "writes": 3, "file": "768"}
    assert r["seq after reboot"] == {"next": 769, "writes": 1, "file": "1024"}
    assert r["seq floor"]["next"] == 5001
    assert r["seq limit"]["last"] == 2**31 - 1  # the protocol's whole range is the device's
    assert r["seq limit"]["result"].startswith("Exhausted")
    assert r["outbox reopen"]["files"] == ["1.m", "2.m", "3.m"]
    assert r["outbox reopen"]["cleaned"] == 1 and all(r["outbox reopen"]["same"])
    assert r["outbox sheds telemetry"]["pending"] == [3, 5, 6, 7]
    assert r["outbox light shed itself"]["stored"] is False
    assert r["outbox events never shed"]["pending"] == [3, 6, 7, 9]
    assert r["outbox events never shed"]["result"].startswith("Full")


def test_micropython_matches_cpython(micropython, tmp_path: Path, capsys) -> None:
    want = cpython_out(tmp_path, capsys).replace(str(tmp_path), "/fs")
    got = micropython.run(
        "import os, sys\nsys.path.append('/t')\nos.mkdir('/fs')\n"
        "import store_check\nstore_check.main('/fs')\n",
        files={"/t/store_check.py": CHECK.read_text()})
    assert got.splitlines() == want.splitlines()


# --- the device runtime against the real Mosquitto ---------------------------

import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import paho.mqtt.client as paho  # noqa: E402
import pytest  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from hg import config, protocol  # noqa: E402
from hg.device import Device  # noqa: E402
from hg.link import Link  # noqa: E402
from hg.mqtt import MQTTClient  # noqa: E402
from hg.simhal import SimHAL  # noqa: E402
from tests.harness.proc import wait_until  # noqa: E402

DEV = "hg-b-0042"
KEY = bytes(range(32))
TIMEOUT = 10.0


class App:
    def __init__(self) -> None:
        self.feedback: list[tuple[str, int]] = []
        self.configs: list[dict] = []
        self.refuse = False

    def on_feedback(self, kind: str, ref: int) -> None:
        self.feedback.append((kind, ref))

    def on_config(self, cfg: dict) -> None:
        self.configs.append(cfg)
        if self.refuse:
            raise ValueError("app refuses")


class Gateway:
    """Plays the gateway: verifies what the device sends, answers with signed
    downlink messages (gateway account, so the broker's ACL allows it)."""

    def __init__(self, broker) -> None:
        self.got: list[tuple[str, dict, bytes]] = []
        self.lock = threading.Lock()
        self.seq = 2**30
        self.ready = threading.Event()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"gw-{os.urandom(4).hex()}",
                        protocol=paho.MQTTv311)
        c.username_pw_set(broker.gateway_user, broker.gateway_password)
        c.on_connect = lambda c, u, f, rc, p: c.subscribe(f"hg/v1/{DEV}/+", 1)
        c.on_subscribe = lambda c, u, mid, rcs, p: self.ready.set()
        c.on_message = self._on_message
        c.reconnect_delay_set(0.1, 0.5)
        c.connect(broker.host, broker.port, keepalive=30)
        c.loop_start()
        self.client = c
        assert self.ready.wait(TIMEOUT), "gateway SUBACK"

    def _on_message(self, client, userdata, msg) -> None:
        leaf = msg.topic.rsplit("/", 1)[-1]
        if leaf in protocol.DOWNLINK:
            return
        m = protocol.verify(msg.topic, msg.payload, {DEV: KEY}.get)
        with self.lock:
            self.got.append((leaf, m, msg.payload))

    def msgs(self, kind: str, typ: str | None = None) -> list[dict]:
        with self.lock:
            return [m for _, m, _ in self.got
                    if m["kind"] == kind and typ in (None, m["type"])]

    def payloads(self, seq: int) -> list[bytes]:
        with self.lock:
            return [p for _, m, p in self.got if m["seq"] == seq]

    def send(self, kind: str, typ: str, data: dict, retain: bool = False) -> None:
        self.seq += 1
        wire = protocol.encode(KEY, DEV, self.seq, kind, typ, 0, data, int(time.time() * 1000))
        leaf = protocol.TOPIC_OF[kind]
        self.client.publish(protocol.topic(DEV, leaf), wire, qos=1,
                            retain=retain).wait_for_publish(TIMEOUT)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def gateway(mosquitto):
    gw = Gateway(mosquitto)
    yield gw
    gw.stop()


def write_config(root: Path, broker, **extra) -> None:
    cfg = {"v": 1, "device_id": DEV, "type": "button", "board": "button-c3",
           "broker": {"host": broker.host, "port": broker.port, "tls": False,
                      "username": DEV, "password": broker.add_device(DEV)},
           "key_hex": KEY.hex(), "heartbeat_s": 300}
    cfg.update(extra)
    (root / "config.json").write_text(json.dumps(cfg))


def boot(root: Path, app: App | None = None, **kw) -> tuple[Device, SimHAL, App]:
    hal, app = SimHAL(reset_cause="watchdog"), app or App()
    kw.setdefault("resend_ms", 2000)
    return Device.boot(hal, app, str(root), **kw), hal, app


def run(dev: Device, hal: SimHAL, cond, what: str, timeout: float = TIMEOUT) -> None:
    def step() -> bool:
        dev.poll(hal.ticks_ms())
        return bool(cond())
    wait_until(step, timeout, what, interval=0.01)


def test_alarm_is_stored_acked_and_feedback_reaches_the_app(
        tmp_path: Path, mosquitto, gateway: Gateway) -> None:
    write_config(tmp_path, mosquitto)
    dev, hal, app = boot(tmp_path)
    assert dev.fault is None
    run(dev, hal, lambda: gateway.msgs("heartbeat"), "online and the first heartbeat")
    assert gateway.msgs("status", "online")[0]["data"] == {"fw": "hg-0.1", "rst": "watchdog"}
    hb = gateway.msgs("heartbeat")[0]["data"]
    assert (hb["rst"], hb["rssi"], hb["bat_mv"], hb["fw"]) == ("watchdog", -61, 3012, "hg-0.1")
    seq = dev.send_event("fire", {"btn": "a"})
    assert dev.obx.pending() == [seq]
    run(dev, hal, lambda: gateway.msgs("alarm"), "the alarm")
    alarm = gateway.msgs("alarm")[0]
    assert (alarm["seq"], alarm["data"], "ts" in alarm) == (seq, {"btn": "a"}, True)
    gateway.send("ack", "stored", {"ref": seq})
    run(dev, hal, lambda: app.feedback, "the stored ack")
    assert dev.obx.pending() == [] and not os.listdir(tmp_path / "obx")
    for typ in ("delivered", "acknowledged", "resolved"):
        gateway.send("ack", typ, {"ref": seq})
    run(dev, hal, lambda: len(app.feedback) == 4, "centre feedback")
    assert app.feedback == [("stored", seq), ("delivered", seq), ("acknowledged", seq),
                            ("resolved", seq)]
    assert hal.feeds > 0 and dev.loop_errors == 0
    dev.close()


KILLED = """
import sys, time
from hg.device import Device
from hg.simhal import SimHAL
hal = SimHAL()
dev = Device.boot(hal, object(), sys.argv[1], resend_ms=60000)
while not dev.link.connected:
    dev.poll(hal.ticks_ms())
    time.sleep(0.01)
seq = dev.send_event("medical", {"btn": "b"})
while dev.link.pending():
    dev.poll(hal.ticks_ms())
    time.sleep(0.01)
print(seq, flush=True)
time.sleep(60)
"""


def test_killed_before_the_ack_resends_the_same_seq_after_restart(
        tmp_path: Path, mosquitto, gateway: Gateway) -> None:
    write_config(tmp_path, mosquitto)
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        seq = int(line)
        wait_until(lambda: gateway.msgs("alarm"), TIMEOUT, "the alarm at the gateway")
    finally:
        proc.send_signal(signal.SIGKILL)  # power cut: no ack came
        proc.wait(TIMEOUT)
        if proc.stdout:
            proc.stdout.close()
    stored = (tmp_path / "obx" / f"{seq}.m").read_bytes().split(b"\n", 1)[1]
    dev, hal, _ = boot(tmp_path)
    assert dev.obx.pending() == [seq]
    run(dev, hal, lambda: len(gateway.payloads(seq)) >= 2, "the resend after restart")
    # the same message (seq, stamp, content), its age now what the clock says
    # it waited: not an age of 0 that would read as a clock behind
    first, again = (protocol.parse(p)[0] for p in (stored, gateway.payloads(seq)[1]))
    assert {k: v for k, v in again.items() if k != "age"} == \
        {k: v for k, v in first.items() if k != "age"}
    assert first["age"] == 0 and again["age"] > 0
    assert again["ts"] + again["age"] <= hal.time_ms() + 1000
    gateway.send("ack", "stored", {"ref": seq})
    run(dev, hal, lambda: not dev.obx.pending(), "the ack")
    assert dev.send_event("fire") > seq + 1  # above the block reserved before the kill
    dev.close()


def test_broker_down_alarm_delivered_after_it_returns(
        tmp_path: Path, mosquitto, gateway: Gateway) -> None:
    write_config(tmp_path, mosquitto)
    dev, hal, app = boot(tmp_path)
    run(dev, hal, lambda: dev.link.connected, "connected")
    mosquitto.stop()
    run(dev, hal, lambda: not dev.link.connected, "the device to notice")
    seq = dev.send_event("security")
    mosquitto.start()
    run(dev, hal, lambda: any(m["seq"] == seq for m in gateway.msgs("alarm")),
        "the alarm after the broker returned", timeout=20)
    gateway.send("ack", "stored", {"ref": seq})
    run(dev, hal, lambda: not dev.obx.pending(), "the ack")
    dev.close()


def test_outbox_full_keeps_alarms_and_sheds_telemetry(
        tmp_path: Path, mosquitto, gateway: Gateway) -> None:
    write_config(tmp_path, mosquitto)
    mosquitto.stop()
    dev, hal, app = boot(tmp_path, max_count=5)
    dev.poll(hal.ticks_ms())  # offline: the first heartbeat goes to flash
    alarms = [dev.send_event("fire"), dev.send_event("medical")]
    tele = [dev.send_telemetry({"i_avg": n}) for n in range(6)]
    kinds = [dev.obx.kind(s) for s in dev.obx.pending()]
    assert kinds == ["alarm", "alarm", "telemetry", "telemetry", "telemetry"]
    assert dev.obx.shed == 4  # the heartbeat and the three oldest telemetry points
    for _ in range(3):
        dev.send_event("panic")  # events push out the remaining telemetry, then...
    assert [dev.obx.kind(s) for s in dev.obx.pending()] == ["alarm"] * 5
    with pytest.raises(OSError, match="outbox full of events"):
        dev.send_event("fire")  # ...are refused, never shedding an alarm
    mosquitto.start()
    run(dev, hal, lambda: len(gateway.msgs("alarm")) == 5, "all kept alarms", timeout=20)
    assert sorted(m["seq"] for m in gateway.msgs("alarm"))[:2] == alarms
    assert gateway.msgs("telemetry") == [] and tele
    dev.close()


def test_remote_config_applied_rejected_and_rolled_back(
        tmp_path: Path, mosquitto, gateway: Gateway) -> None:
    write_config(tmp_path, mosquitto)
    dev, hal, app = boot(tmp_path, healthy_ms=300)
    run(dev, hal, lambda: dev.link.connected and not dev.link.client.subscribing, "SUBACK")
    gateway.send("config", "full", {"telemetry_s": 30, "t_res_set": 100}, retain=True)
    run(dev, hal, lambda: not config.in_trial(str(tmp_path)) and app.configs, "commit")
    saved = config.load(str(tmp_path / "config.json"))[0]
    assert (saved["telemetry_s"], saved["thresholds"]["residual_ma"]["set"]) == (30, 100)
    gateway.send("config", "full", {"t_res_set": 5}, retain=True)
    run(dev, hal, lambda: gateway.msgs("fault", "config"), "the rejection")
    reason = gateway.msgs("fault", "config")[0]["data"]["reason"]
    assert reason.startswith("rejected thresholds.residual_ma.set: 5 is outside 20..1000")
    app.refuse = True
    gateway.send("config", "full", {"telemetry_s": 60}, retain=True)
    run(dev, hal, lambda: len(gateway.msgs("fault", "config")) == 2, "the rollback")
    assert gateway.msgs("fault", "config")[1]["data"]["reason"].startswith(
        "rolled back: apply failed")
    assert dev.cfg["telemetry_s"] == 30 and not config.in_trial(str(tmp_path))
    assert config.load(str(tmp_path / "config.json"))[0]["telemetry_s"] == 30
    dev.close()


def test_commands_and_invalid_config_fault(tmp_path: Path, mosquitto, gateway: Gateway) -> None:
    write_config(tmp_path, mosquitto, thresholds={"residual_ma": {"set": 5000}})
    dev, hal, app = boot(tmp_path)
    assert dev.fault == "thresholds.residual_ma.set: 5000 is outside 20..1000"
    assert hal.leds == ["fault"]
    run(dev, hal, lambda: gateway.msgs("fault", "config"), "the fault report")
    assert gateway.msgs("fault", "config")[0]["data"]["reason"] == dev.fault
    run(dev, hal, lambda: not dev.link.client.subscribing, "SUBACK")
    gateway.send("cmd", "locate", {})
    gateway.send("cmd", "selftest", {})
    run(dev, hal, lambda: gateway.msgs("test", "auto"), "the self-test event")
    assert gateway.msgs("test", "auto")[0]["data"]["cfg_ok"] is False
    assert hal.leds[-1] == "locate" and hal.buzzes == ["locate"]
    gateway.send("cmd", "reboot", {})
    run(dev, hal, lambda: hal.reboots == 1, "the reboot")


def test_device_module_imports_under_micropython(micropython) -> None:
    out = micropython.run("from hg import device\nprint(device.FW, device.clean('a\"b\\\\c'))\n")
    assert out == "hg-0.1 abc\n"


def test_a_publish_sent_again_after_a_dead_link_carries_the_age_it_waited(
        tmp_path: Path, mosquitto, gateway: Gateway) -> None:
    """Telemetry is in RAM once handed to the link: if the link dies before
    its PUBACK, the link sends it again on the next connection.  Sent with
    the bytes of its first send (age 0) after waiting a minute, it read as a
    clock a minute behind: the gateway refused it (clock_skew) and the point
    was lost (the 100,000-alarm chaos run).  It goes again with its age now."""
    write_config(tmp_path, mosquitto)
    dev, hal, _ = boot(tmp_path)
    run(dev, hal, lambda: dev.link.connected and gateway.msgs("heartbeat"), "online")
    seq = dev.send_telemetry({"rms_ma": 1200})
    # written at once; not polling the device leaves the broker's PUBACK unread
    wait_until(lambda: gateway.payloads(seq), TIMEOUT, "the first send")
    assert dev.link.client.inflight
    dev.link.client.sock.close()  # the link dies before its PUBACK is read
    hal.clock_offset_ms += 50_000  # and the point waits 50 s for a new one
    run(dev, hal, lambda: len(gateway.payloads(seq)) >= 2, "the send on the next connection")
    first, again = (protocol.parse(p)[0] for p in gateway.payloads(seq)[:2])
    assert {k: v for k, v in again.items() if k != "age"} == \
        {k: v for k, v in first.items() if k != "age"}
    assert first["age"] == 0 and 50_000 <= again["age"] <= 50_000 + 30_000
    protocol.verify(protocol.topic(DEV, "telemetry"), gateway.payloads(seq)[1],
                    {DEV: KEY}.get)  # signed anew
    dev.close()


def test_a_resend_without_a_clock_carries_the_age_from_the_ticks(tmp_path: Path, mosquitto) -> None:
    """A board without a synced clock sends no `ts`; the gateway then reads
    the event's time as receive - age. A copy the link sends again with the
    age of its first send would read as a later event under the same seq
    (a seq_conflict, shown twice): it goes with the age from the ticks."""
    class Fake:
        ms = 1_000

        def __call__(self) -> int:
            return self.ms

    clock = Fake()
    write_config(tmp_path, mosquitto)
    hal, app = SimHAL(synced=False, clock=clock), App()
    dev = Device.boot(hal, app, str(tmp_path), resend_ms=2000)
    seq = dev.send_event("fire")
    first = dev.obx.get(seq)
    clock.ms += 50_000  # the link held it 50 s
    again = dev._refresh(protocol.topic(DEV, "event"), first)
    a, b = protocol.parse(first)[0], protocol.parse(again)[0]
    assert a.get("ts") is None and b.get("ts") is None and a["age"] == 0
    assert 50_000 <= b["age"] <= 51_000
    assert {k: v for k, v in a.items() if k != "age"} == {k: v for k, v in b.items() if k != "age"}
    protocol.verify(protocol.topic(DEV, "event"), again, {DEV: KEY}.get)  # signed anew
    dev.close()


def test_an_alarm_waiting_caps_the_link_backoff() -> None:
    """A link that keeps failing backs off to 60-120 s; while an alarm
    waits in flash the wait is at most urgent_cap_ms (8 s), jitter kept."""
    def refused() -> None:
        raise OSError(111, "ECONNREFUSED")

    waiting = [False]
    link = Link(MQTTClient("d", refused), urgent=lambda: waiting[0], rand=lambda: 65535)
    now = 0
    gaps = []
    for _ in range(12):
        link.poll(now)
        gaps.append(link.next_try - now)
        now = link.next_try
    assert gaps[-1] >= 60_000  # idle: the long backoff
    waiting[0] = True
    for _ in range(5):
        link.poll(now)
        assert 4_000 <= link.next_try - now <= 8_000
        now = link.next_try


def test_an_alarm_cuts_a_long_backoff_begun_while_idle() -> None:
    """An idle board's link waits 60-120 s between attempts; an alarm
    pressed during that wait must not sit it out (a chaos run saw a press
    wait 76 s on its board): the wait is cut to the urgent cap from its
    start, once."""
    def refused() -> None:
        raise OSError(111, "ECONNREFUSED")

    waiting = [False]
    link = Link(MQTTClient("d", refused), urgent=lambda: waiting[0], rand=lambda: 65535)
    now = 0
    for _ in range(12):
        link.poll(now)
        now = link.next_try
    link.poll(now)  # fails again: the next wait is the long one
    began, long_wait = now, link.next_try
    assert long_wait - began >= 60_000
    waiting[0] = True
    link.hurry()
    assert 4_000 <= link.next_try - began <= 8_000
    cut = link.next_try
    link.hurry()  # a second alarm: the wait is already cut
    assert link.next_try == cut


def test_an_alarm_pressed_during_a_long_backoff_goes_when_the_broker_is_back(
        tmp_path: Path, mosquitto, gateway: Gateway) -> None:
    write_config(tmp_path, mosquitto)
    dev, hal, app = boot(tmp_path)
    run(dev, hal, lambda: dev.link.connected, "connected")
    mosquitto.stop()
    run(dev, hal, lambda: not dev.link.connected, "the device to notice")
    # as after many failed attempts while idle: the next one in 100 s
    link, now = dev.link, hal.ticks_ms()
    link._since, link._capped, link.next_try = now, False, now + 100_000
    mosquitto.start()
    seq = dev.send_event("fire")
    assert link.next_try - now <= 8_000
    run(dev, hal, lambda: any(m["seq"] == seq for m in gateway.msgs("alarm")),
        "the alarm well before the 100 s wait", timeout=30)
    dev.close()


def test_a_dead_link_is_left_when_a_puback_is_overdue_and_nothing_came() -> None:
    """A connection that takes a publish and answers nothing more is dead,
    not slow: after puback_ms the link reconnects (4-8 s with an alarm
    waiting) and sends it again there, instead of resending into it until
    1.5 x keepalive (90 s) of silence.  A broker that answered something
    meanwhile only gets the resend (tests/firmware/check_mqtt.py)."""
    from tests.firmware.check_mqtt import CONNACK, Broker

    b = Broker([[CONNACK], [CONNACK]])
    c = MQTTClient("d", b, keepalive=60)
    link = Link(c, rand=lambda: 0, puback_ms=15_000, urgent=lambda: True)
    link.poll(0)
    assert link.connected
    link.publish("d/ev", b"alarm", 1, False, 100)
    link.poll(14_000)
    assert link.connected and link.drops == 0  # not overdue yet
    link.poll(15_200)
    assert not link.connected and link.drops == 1 and b.socks[0].closed
    assert "half-open" in (link.last_error or "")
    assert link.next_try - 15_200 <= 8_000  # the urgent cap
    link.poll(link.next_try)
    link.poll(link.next_try + 1)
    assert link.connected and link.connects == 2
    assert b"alarm".hex() in b.socks[1].take()  # sent again on the new connection
