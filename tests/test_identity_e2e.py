"""Identity and honest acks through real Mosquitto, the gateway and the
centre (issue 12), with a device client written from docs/protocol.md (a
plain paho client: it does what a careless or third-party device may do).

- a retained uplink alarm is handled once, live; the broker's retained copy,
  handed over again at every gateway (re)connect, is ignored and counted
  without a NAK (it used to be refused and NAKed at every reconnect);
- the same seq with other content is refused with a signed `seq_conflict`
  NAK carrying the highest seq, never acked `stored`, and the centre gets a
  `seq_conflict` device fault (it used to be acked and silently dropped);
- other content the centre refuses under an identity the gateway already
  acked `stored` reaches the desk as an open `seq_conflict` alarm carrying it.
"""

from __future__ import annotations

import queue
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import CentreSection
from gateway.sinks.centre import CentreSink
from gateway.store import Event, Store
from hg import protocol
from tests.harness.proc import wait_until
from tests.harness.stack import BUTTON, TOKEN, Stack


class Client:
    """The device's own MQTT account; collects its verified downlink acks."""

    def __init__(self, stack: Stack) -> None:
        self.key = stack.key
        self.acks: queue.Queue[dict] = queue.Queue()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=BUTTON)
        self.c.username_pw_set(BUTTON, stack.password)
        self.c.on_message = lambda c, u, m: self.acks.put(
            protocol.verify(m.topic, m.payload, {BUTTON: self.key}.get))
        self.c.connect(stack.broker.host, stack.broker.port)
        self.c.subscribe(protocol.topic(BUTTON, "ack"), 1)
        self.c.loop_start()

    def send(self, seq: int, typ: str, retain: bool = False, ts_ago_ms: int = 100,
             kind: str = "alarm", data: dict | None = None) -> int:
        """Publish one signed message (QoS 1, broker-acked); returns its ts."""
        ts = int(time.time() * 1000) - ts_ago_ms
        wire = protocol.encode(self.key, BUTTON, seq, kind, typ, 0, data or {}, ts)
        self.c.publish(protocol.topic(BUTTON, protocol.TOPIC_OF[kind]), wire, qos=1,
                       retain=retain).wait_for_publish(10)
        return ts

    def ack_for(self, seq: int, typ: str, timeout: float = 30) -> list[dict]:
        """Every ack received until the one of `typ` for `seq` (inclusive)."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            a = self.acks.get(timeout=max(0.1, deadline - time.monotonic()))
            seen.append(a)
            if a["data"]["ref"] == seq and a["type"] == typ:
                return seen

    def close(self) -> None:
        # clear the retained copy this test left on the broker
        self.c.publish(protocol.topic(BUTTON, "event"), b"", qos=1, retain=True
                       ).wait_for_publish(10)
        self.c.loop_stop()
        self.c.disconnect()


def alarms_of(stack: Stack, typ: str) -> list[dict]:
    return [a for a in stack.alarms(1000) if a["device"] == BUTTON and a["type"] == typ]


def test_retained_uplink_is_handled_once_and_its_copy_ignored_without_nak(
        mosquitto, tmp_path) -> None:  # noqa: ANN001
    stack = Stack(mosquitto, tmp_path)
    stack.start()
    dev = Client(stack)
    try:
        dev.send(10, "fire", retain=True)
        assert "nak" not in [a["type"] for a in dev.ack_for(10, "delivered")]
        wait_until(lambda: len(alarms_of(stack, "fire")) == 1, 30, "the fire alarm at the centre")
        # a gateway restart resubscribes: the broker hands over its retained copy
        stack.gateway.stop()
        stack.gateway.start().wait_ready(
            lambda: "subscribed topics=" in stack.gateway.logs())
        wait_until(lambda: "rejected reason=retained device=" + BUTTON
                   in stack.gateway.logs(), 30, "the retained copy counted")
        dev.send(11, "medical")
        acks = dev.ack_for(11, "stored")  # acks come in order: a NAK would be here
        assert [a for a in acks if a["type"] == "nak"] == []
        wait_until(lambda: len(alarms_of(stack, "medical")) == 1, 30, "the medical alarm")
        assert len(alarms_of(stack, "fire")) == 1
    finally:
        dev.close()
        stack.stop()


def test_same_seq_other_content_is_refused_loudly_not_dropped(
        mosquitto, tmp_path) -> None:  # noqa: ANN001
    stack = Stack(mosquitto, tmp_path)
    stack.start()
    dev = Client(stack)
    try:
        dev.send(20, "fire")
        dev.ack_for(20, "delivered")
        dev.send(21, "fire")
        dev.ack_for(21, "stored")
        # a board whose counter went back: another alarm under seq 20
        dev.send(20, "medical", ts_ago_ms=50)
        acks = dev.ack_for(20, "nak")
        assert acks[-1]["data"] == {"ref": 20, "reason": "seq_conflict", "hi": 21}
        assert not [a for a in acks if a["data"]["ref"] == 20 and a["type"] != "nak"]
        # the device moves past hi and sends it again under a fresh seq: it is shown
        dev.send(22, "medical", ts_ago_ms=50)
        dev.ack_for(22, "delivered")
        wait_until(lambda: len(alarms_of(stack, "medical")) == 1, 30, "the medical alarm")
        assert len(alarms_of(stack, "fire")) == 2
        # and the centre has a device fault for the reused seq
        wait_until(lambda: len(alarms_of(stack, "seq_conflict")) == 1, 30, "the device fault")
        assert "rejected reason=seq_conflict device=" + BUTTON in stack.gateway.logs()
    finally:
        dev.close()
        stack.stop()


def test_a_conflict_the_centre_finds_reaches_the_desk_as_an_open_alarm(
        mosquitto, tmp_path) -> None:  # noqa: ANN001
    """A gateway whose state lost the first event (its store gone) stores other
    content under the same identity and acks it `stored` (it cannot know);
    the centre answers `conflict` and keeps the first event. The refused
    alarm is not dropped: the gateway reports it as a `seq_conflict` device
    fault carrying its content, an open desk alarm with the refused alarm's
    priority (it used to be set aside as a dead letter, seen only in a log)."""
    import shutil

    stack = Stack(mosquitto, tmp_path)
    stack.start()
    dev = Client(stack)
    try:
        dev.send(70, "fire")
        dev.ack_for(70, "delivered")
        stack.gateway.stop()
        shutil.rmtree(tmp_path / "gw")  # the gateway's state is gone
        stack.gateway.start().wait_ready(lambda: "subscribed topics=" in stack.gateway.logs())
        dev.send(70, "medical", ts_ago_ms=40)
        dev.ack_for(70, "stored")
        wait_until(lambda: len(alarms_of(stack, "seq_conflict")) == 1, 60,
                   "the refused alarm on the desk")
        fault = alarms_of(stack, "seq_conflict")[0]
        assert fault["state"] == "received" and fault["seq"] < 0  # the gateway's own event
        assert fault["priority"] == 2  # a medical alarm's, not a fault's 4
        assert {k: fault["data"][k] for k in ("seq", "kind", "type", "at")} == {
            "seq": 70, "kind": "alarm", "type": "medical", "at": "centre"}
        assert "centre refused device=" + BUTTON + " seq=70" in stack.gateway.logs(100_000)
        # the first event stays what it was; the refused content is not a second row
        assert [a["type"] for a in alarms_of(stack, "fire")] == ["fire"]
        assert alarms_of(stack, "medical") == []
    finally:
        dev.close()
        stack.stop()


def test_a_conflict_is_set_aside_only_once_it_is_reported(
        mosquitto, tmp_path) -> None:  # noqa: ANN001
    """The centre sink against the real centre: while the fault for a
    conflict cannot be stored (on_conflict False), the event stays pending
    and is tried again; once reported it is set aside as refused."""
    stack = Stack(mosquitto, tmp_path)
    stack.start()
    cfg = CentreSection(url=stack.centre_url, token=TOKEN, backoff_min_s=0.05,
                        backoff_max_s=0.2)
    now = int(time.time() * 1000)
    first = Store(tmp_path / "first.db", sinks=("centre",))
    first.insert(Event(BUTTON, 80, "alarm", "fire", now, None, now, 0, None, {"btn": "f"}))
    other = Store(tmp_path / "other.db", sinks=("centre",))
    other.insert(Event(BUTTON, 80, "alarm", "medical", now, None, now, 0, None, {"btn": "m"}))
    reported: list[int] = []

    def report(e: Event) -> bool:
        reported.append(e.seq)
        return len(reported) > 2  # the first two reports are not stored

    sinks = [CentreSink(cfg, "gw-test", first, lambda d, s, t: None),
             CentreSink(cfg, "gw-test", other, lambda d, s, t: None)]
    sinks[1].on_conflict = report
    try:
        sinks[0].start()
        wait_until(lambda: first.backlog("centre")[0] == 0, 60, "the fire at the centre")
        sinks[1].start()
        wait_until(lambda: other.backlog("centre")[0] == 0, 60, "the conflict set aside")
        assert reported == [80, 80, 80]
        delivery = other.delivery("centre", BUTTON, 80)
        assert delivery is not None and delivery["outcome"] == "refused"
        assert "could not be reported yet" in delivery["last_error"]
    finally:
        for sink in sinks:
            sink.stop()
        first.close()
        other.close()
        stack.stop()


def test_the_gateways_own_events_never_take_a_device_seq(
        mosquitto, tmp_path) -> None:  # noqa: ANN001
    """Defect 1 of issue 12: supervision events used to be numbered from 2**30
    under the device's id, so a device alarm at such a seq was acked and never
    shown, and one high seq made every normal seq a silent replay."""
    stack = Stack(mosquitto, tmp_path)
    # every last will is its device's own (by default one within 10 s of the
    # gateway's own connect is taken as part of a link loss)
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(cfg.read_text() + "\n[supervision]\nlink_grace_s = 0\n")
    stack.start()
    dev = Client(stack)
    try:
        # the device's last will (signed status/offline): the gateway raises
        # `offline` under its own, negative, seq
        dev.send(5, "offline", kind="status")
        wait_until(lambda: len(alarms_of(stack, "offline")) == 1, 90, "the offline alarm")
        assert alarms_of(stack, "offline")[0]["seq"] < 0
        base = 2**30
        dev.send(base, "fire")
        dev.ack_for(base, "delivered", timeout=60)
        dev.send(base + 1, "medical")
        dev.ack_for(base + 1, "delivered", timeout=60)
        wait_until(lambda: [a["seq"] for a in alarms_of(stack, "medical")] == [base + 1], 30,
                   "the medical alarm at the centre")
        assert [a["seq"] for a in alarms_of(stack, "fire")] == [base]
        # its message restored the offline with the gateway's own `online`
        wait_until(lambda: alarms_of(stack, "offline") == [], 30, "the offline restored")
        # a seq far ahead (beyond the de-dup window), then a normal one: the
        # normal one is refused as a replay, and the device is told where to go on
        ahead = base + 1 + 5000
        dev.send(ahead, "security")
        dev.ack_for(ahead, "stored", timeout=60)
        dev.send(base + 2, "panic")
        acks = dev.ack_for(base + 2, "nak", timeout=60)
        assert acks[-1]["data"] == {"ref": base + 2, "reason": "replay", "hi": ahead}
        assert not [a for a in acks if a["data"]["ref"] == base + 2 and a["type"] != "nak"]
        assert alarms_of(stack, "panic") == []
    finally:
        dev.close()
        stack.stop()


def test_a_wiped_board_without_a_clock_loses_no_alarm(mosquitto, tmp_path) -> None:  # noqa: ANN001
    """The real button firmware on a board without a clock (no `ts`), wiped
    after its first alarm and booted again: the same boot messages and the
    same fire under the same seqs, told apart from resends only by the
    derived event time (receive time - age). Its fire reaches the centre,
    whether it went out under the old highest seq before the NAK for its
    `online` came back, or after it under a fresh seq."""
    import shutil

    from tests.test_wiped_device_e2e import button, mine

    behind_ms = 3000  # the tolerance, small so the test need not wait 40 s
    stack = Stack(mosquitto, tmp_path)
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(cfg.read_text() + f"\n[verify]\nbehind_ms = {behind_ms}\n")
    stack.start()
    root = tmp_path / "board"
    try:
        b = button(root, stack, synced=False)
        try:
            first = b.dev.send_event("fire", {"btn": "f"})
            b.run(lambda: not b.dev.obx.pending(), "the fire acked", timeout=60)
            wait_until(lambda: [a["seq"] for a in mine(stack)] == [first], 60, "at the centre")
        finally:
            b.dev.close()
        # the board is wiped and back later than the tolerance (a configured
        # duration, not a race: any longer wait is as good)
        time.sleep(behind_ms / 1000 + 2)
        for f in root.iterdir():
            if f.name != "config.json":
                shutil.rmtree(f) if f.is_dir() else f.unlink()
        b = button(root, stack, synced=False)
        try:
            b.dev.send_event("fire", {"btn": "f"})
            b.run(lambda: len(mine(stack)) == 2, "the wiped board's fire at the centre",
                  timeout=60)
            b.run(lambda: not b.dev.obx.pending(), "its outbox empty", timeout=60)
            seqs = [a["seq"] for a in mine(stack)]
            assert first in seqs and max(seqs) > first, seqs
            assert all(a["device_time_ms"] is None for a in mine(stack))
            assert "rejected reason=seq_conflict device=" + BUTTON in stack.gateway.logs(100_000)
        finally:
            b.dev.close()
    finally:
        stack.stop()
