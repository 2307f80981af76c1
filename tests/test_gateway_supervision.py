"""Device supervision: silent devices, last wills, a lost broker, the last
wills of a broker restart as one link_lost, and the gateway's own seqs.
The Supervisor runs over a real store and registry file on a clock the test
moves (no sleeps, no race with the wall clock), driven through tick(); two
flow tests run the gateway process between a real Mosquitto and a real HTTP
centre, wait on what reaches the centre (with windows of seconds and long
deadlines, checking prefixes of what arrived, so a loaded machine cannot
miss a state), and check /health.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from gateway.config import ConfigError, SupervisionSection
from gateway.dedup import NEW, check, rebuild
from gateway.registry import Registry
from gateway.store import SUPERVISION, Event, Store
from gateway.supervision import EPOCH_S, Supervisor, next_seq
from hg import protocol
from tests.harness.proc import LOOPBACK, wait_until
from tests.test_gateway_flow import Centre, Device, Gateway

BUTTON, SENSOR, GW = "hg-b-0401", "hg-s-0402", "gw-sup"


class Rig:
    def __init__(self, tmp: Path, link_grace_s: float = 10.0) -> None:
        reg = tmp / "devices.json"
        reg.write_text(json.dumps({"devices": [
            {"id": BUTTON, "key": "00" * 32, "type": "button"},
            {"id": SENSOR, "key": "11" * 32, "type": "sensor"}]}))
        self.registry = Registry(reg)
        self.store = Store(tmp / "gw.db", sinks=("centre",))
        self.up = True
        self.now = 1000.0
        self.cfg = SupervisionSection(windows={"button": 60.0, "sensor": 600.0},
                                      gateway_grace_s=30.0, link_grace_s=link_grace_s)
        self.sup = self.new()

    def new(self) -> Supervisor:
        return Supervisor(self.cfg, GW, self.store, self.registry, lambda: self.up,
                          clock=lambda: self.now)

    def at(self, seconds: float) -> None:
        """Move the clock on and run one check."""
        self.now += seconds
        self.sup.tick()

    def events(self) -> list[tuple[str, str, dict]]:
        return [(e.device, e.type, e.data) for e in self.store.pending("centre", 100)
                if e.kind == SUPERVISION]

    def types(self) -> list[tuple[str, str]]:
        return [(d, t) for d, t, _ in self.events()]

    def heard(self, device: str, kind: str = "heartbeat", typ: str = "periodic") -> None:
        self.sup.seen(Event(device, 1, kind, typ, 0, None, 0, 0, None, {}))

    def will(self, device: str) -> None:
        self.heard(device, "status", "offline")


def test_gateway_seqs_are_negative_grow_with_time_and_never_repeat() -> None:
    assert next_seq(0, EPOCH_S + 100) == -100
    assert next_seq(-100, EPOCH_S + 100) == -101  # same second: one more
    assert next_seq(-101, EPOCH_S + 50) == -102  # the clock went back: still one more
    assert next_seq(-5, EPOCH_S + 7200) == -7200  # time moved on: the clock's
    assert next_seq(0, EPOCH_S) == -1  # never 0
    assert next_seq((1 << 30) + 9, EPOCH_S + 60) == -60  # an old store's positive seq


def test_silent_device_goes_offline_once_and_online_when_heard(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.at(0)
    rig.at(59)
    assert rig.events() == []
    rig.at(2)
    [(dev, typ, data)] = rig.events()
    assert (dev, typ, data["reason"], data["window_s"]) == (BUTTON, "offline", "silent", 60)
    rig.at(120)  # past the window again: not raised a second time
    assert len(rig.events()) == 1
    rig.heard(BUTTON)
    assert rig.types() == [(BUTTON, "offline"), (BUTTON, "online")]
    seqs = [e.seq for e in rig.store.pending("centre", 100)]
    assert seqs[1] < seqs[0] < 0  # the gateway's own, never a device's 1 ... 2^31-1


def test_without_a_link_grace_a_last_will_is_offline_at_once(tmp_path: Path) -> None:
    rig = Rig(tmp_path, link_grace_s=0)
    rig.at(0)
    rig.will(SENSOR)
    assert rig.events() == [(SENSOR, "offline", {"reason": "last_will"})]
    rig.at(700)  # silence does not repeat it
    assert [t for t in rig.types() if t[0] == SENSOR] == [(SENSOR, "offline")]
    rig.heard(SENSOR, "status", "online")
    assert rig.types()[-1] == (SENSOR, "online")


def test_a_devices_own_last_will_is_offline_after_the_grace(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.at(0)
    rig.at(30)  # the link has been up for longer than the grace
    rig.heard(BUTTON)
    rig.will(SENSOR)
    rig.at(9)
    assert rig.events() == []
    rig.at(2)
    assert rig.events() == [(SENSOR, "offline", {"reason": "last_will"})]
    rig.will(BUTTON)  # and one that is back within the grace: nothing
    rig.at(5)
    rig.heard(BUTTON, "status", "online")
    rig.at(20)
    assert rig.types() == [(SENSOR, "offline")]


def test_wills_after_a_reconnect_are_one_link_lost_not_a_flood(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.at(0)
    rig.up = False
    rig.at(3)  # a broker restart, shorter than gateway_grace_s
    rig.up = True
    rig.at(1)
    rig.will(BUTTON)  # queued in the gateway's session while it was away
    rig.will(SENSOR)
    rig.at(9)
    assert rig.events() == []
    rig.at(2)  # the grace after the reconnect has passed: every will of it is in
    assert rig.events() == [(GW, "link_lost", {"reason": "last_wills", "devices": 2,
                                               "waiting": 2})]
    rig.heard(SENSOR, "status", "online")  # back within its window: nothing of its own
    rig.at(40)
    assert rig.types() == [(GW, "link_lost")]
    rig.at(10)  # the button stays away: its own offline, then the link_lost is over
    assert rig.types() == [(GW, "link_lost"), (BUTTON, "offline"), (GW, "online")]
    assert rig.events()[1][2]["reason"] == "last_will"
    assert rig.events()[2][2] == {"reason": "devices_settled"}


def test_wills_just_before_the_gateway_loses_the_broker_count_with_it(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.at(0)
    rig.at(30)
    rig.will(BUTTON)  # the broker sends wills as it shuts down, then drops the gateway
    rig.up = False
    rig.now += 0.5
    assert rig.sup.poll_link() is False
    rig.at(20)  # away longer than the grace: still nothing of the button's own
    rig.up = True
    rig.at(0)
    rig.will(SENSOR)
    rig.heard(BUTTON, "status", "online")
    rig.heard(SENSOR, "status", "online")
    rig.at(11)  # both came back: one link_lost and its restore at once
    assert rig.types() == [(GW, "link_lost"), (GW, "online")]
    assert rig.events()[0][2] == {"reason": "last_wills", "devices": 2, "waiting": 0}


def test_a_message_right_after_the_reconnect_counts_before_the_thread_notices(
        tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.at(0)
    rig.up = False
    assert rig.sup.poll_link() is False
    rig.now += 60
    rig.up = True
    rig.will(BUTTON)  # the broker is back and its queued will comes before any check
    rig.at(11)
    assert rig.types() == [(GW, "link_lost")]


def test_lost_broker_raises_one_gateway_event_and_no_device_flood(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.at(0)
    rig.up = False
    rig.at(0)
    rig.at(29)
    assert rig.events() == []
    rig.at(2)
    rig.at(700)  # every device's window passes while the broker is away
    assert rig.types() == [(GW, "gateway_offline")]
    rig.up = True
    rig.at(0)  # back: a fresh window for each device, no offline yet
    assert rig.types() == [(GW, "gateway_offline"), (GW, "online")]
    rig.at(61)
    assert rig.types()[2:] == [(BUTTON, "offline")]
    rig.at(600)
    assert rig.types()[3:] == [(SENSOR, "offline")]


def test_offline_state_and_seqs_survive_a_restart(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.at(0)
    rig.at(61)
    first = rig.store.pending("centre", 10)[0].seq
    rig.sup = rig.new()  # a gateway restart on the same store
    rig.heard(BUTTON)
    assert rig.types()[-1] == (BUTTON, "online")
    assert rig.store.pending("centre", 10)[-1].seq < first < 0


def test_an_open_link_lost_is_restored_after_a_restart(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.at(0)
    rig.will(SENSOR)
    rig.at(11)
    assert rig.types() == [(GW, "link_lost")]
    rig.sup = rig.new()  # the wills it waited on are gone; the devices get fresh windows
    rig.at(0)
    assert rig.types() == [(GW, "link_lost"), (GW, "online")]
    rig.at(601)
    assert (SENSOR, "offline") in rig.types()[2:]


def test_report_stores_a_fault_and_leaves_the_state_alone(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.at(0)
    rig.at(61)
    assert rig.types() == [(BUTTON, "offline")]
    seq = rig.sup.report(BUTTON, "seq_conflict", {"seq": 7, "highest": 9})
    assert seq is not None and seq < rig.store.pending("centre", 10)[0].seq
    assert rig.events()[-1] == (BUTTON, "seq_conflict", {"seq": 7, "highest": 9})
    assert BUTTON in rig.sup.offline  # still offline: the next message brings it back
    rig.heard(BUTTON)
    assert rig.types()[-1] == (BUTTON, "online")
    with pytest.raises(ValueError, match="not a fault"):
        rig.sup.report(BUTTON, "offline", {})


def test_supervision_seqs_do_not_touch_the_devices_dedup_window(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.store.insert(Event(BUTTON, 7, "alarm", "fire", 0, None, 0, 0, None, {}))
    rig.at(0)
    rig.at(61)
    assert rig.types() == [(BUTTON, "offline")]
    state = rebuild(4096, rig.store.recent_seqs(4096))
    assert state.devices[BUTTON].highest == 7
    assert check(state, BUTTON, 8) == NEW


def test_gateway_id_must_not_be_a_device(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    with pytest.raises(ConfigError, match="not a registered device"):
        Supervisor(rig.cfg, BUTTON, rig.store, rig.registry, lambda: True)


# --- the gateway process ---------------------------------------------------------

# the button's window and the gateway's own grace (longer: the window passes
# while the broker is away) are seconds, not a fraction of one, so a loaded
# machine does not miss a state in between; every step waits on the centre
WINDOW_S, GRACE_S = 5.0, 8.0
LONG = 90.0  # deadline for each step on a loaded machine
BEAT_S = 0.5  # the button's heartbeat while it must stay online


@pytest.fixture
def flow(mosquitto, tmp_path: Path) -> Iterator[tuple[Gateway, Centre, Device]]:  # noqa: ANN001
    key = secrets.token_bytes(32)
    centre = Centre().start()
    gw = Gateway(mosquitto, tmp_path, centre, {BUTTON: key})
    gw.config.write_text(gw.config.read_text() + (
        f"\n[supervision]\nwindows = {{ button = {WINDOW_S} }}\ncheck_s = 0.1\n"
        f"gateway_grace_s = {GRACE_S}\n"))
    gw.start()
    dev = Device(mosquitto, BUTTON, key)
    yield gw, centre, dev
    dev.stop()
    gw.stop()
    centre.stop()


def heartbeat(dev: Device, seq: int) -> None:
    dev.publish(protocol.encode(dev.key, BUTTON, seq, "heartbeat", "periodic", 0, {"up_s": 5},
                                int(time.time() * 1000)), leaf="heartbeat")


@contextmanager
def beating(dev: Device) -> Iterator[None]:
    """The button heartbeats every BEAT_S (far inside its window) meanwhile."""
    stop = threading.Event()

    def beat() -> None:
        seq = 1
        while True:
            heartbeat(dev, seq)
            seq += 1
            if stop.wait(BEAT_S):
                return

    thread = threading.Thread(target=beat, name="heartbeats", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(LONG)


def test_gateway_reports_a_silent_button_and_its_return_to_the_centre(flow) -> None:  # noqa: ANN001
    gw, centre, dev = flow
    health = httpx.get(f"http://{LOOPBACK}:{gw.metrics_port}/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["broker"] is True and health.json()["store"] == "ok"
    assert health.json()["sinks"]["centre"]["backlog"] == 0

    def kinds() -> list[tuple[str, str]]:
        with centre.lock:
            return [(e["kind"], e["type"]) for e in centre.accepted if e["device"] == BUTTON]

    wait_until(lambda: kinds()[:1] == [("supervision", "offline")], LONG,
               "offline at the centre")
    heartbeat(dev, 1)
    # prefixes: silent again, the button goes offline again WINDOW_S later
    wait_until(lambda: kinds()[1:3] == [("heartbeat", "periodic"), ("supervision", "online")],
               LONG, f"heartbeat and online at the centre: {kinds()}")
    assert kinds()[0] == ("supervision", "offline")  # one offline before it was heard
    with centre.lock:
        assert all(e["seq"] < 0 for e in centre.accepted if e["kind"] == "supervision")
    assert gw.metric("hg_gateway_supervision_total", type="offline") >= 1.0


def test_lost_broker_is_one_gateway_offline_not_a_device_flood(flow, mosquitto) -> None:  # noqa: ANN001
    gw, centre, dev = flow

    def sup() -> list[tuple[str, str]]:
        with centre.lock:
            return [(e["device"], e["type"]) for e in centre.accepted
                    if e["kind"] == "supervision"]

    wait_until(lambda: sup()[:1] == [(BUTTON, "offline")], LONG, "the silent button offline")
    with beating(dev):  # online, and kept so up to the broker's loss
        wait_until(lambda: sup()[1:] == [(BUTTON, "online")], LONG, f"the button back: {sup()}")
    mosquitto.stop()
    try:
        # gateway_grace_s > the button's window: the window passed meanwhile
        wait_until(lambda: sup()[2:] == [("gw-flow", "gateway_offline")], LONG,
                   f"gateway_offline at the centre: {sup()}")
        r = httpx.get(f"http://{LOOPBACK}:{gw.metrics_port}/health", timeout=5)
        assert r.status_code == 503 and r.json()["broker"] is False
    finally:
        mosquitto.start()
    wait_until(lambda: ("gw-flow", "online") in sup(), LONG, f"gateway online: {sup()}")
    # no button offline while the broker was away; its fresh window starts on
    # reconnect (so it may go offline WINDOW_S after the gateway's online)
    assert sup()[:4] == [(BUTTON, "offline"), (BUTTON, "online"),
                         ("gw-flow", "gateway_offline"), ("gw-flow", "online")]
    assert gw.metric("hg_gateway_supervision_total", type="gateway_offline") == 1.0
