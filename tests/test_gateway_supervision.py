"""Device supervision: silent devices, last wills, a lost broker, with
windows of a fraction of a second. The Supervisor runs over a real store
and registry file, driven through tick(); one flow test runs the gateway
process between a real Mosquitto and a real HTTP centre, and checks /health.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.config import ConfigError, SupervisionSection
from gateway.dedup import NEW, check, rebuild
from gateway.registry import Registry
from gateway.store import SUPERVISION, Event, Store
from gateway.supervision import SEQ_BASE, Supervisor
from hg import protocol
from tests.harness.proc import LOOPBACK, wait_until
from tests.test_gateway_flow import WAIT, Centre, Device, Gateway

BUTTON, SENSOR, GW = "hg-b-0401", "hg-s-0402", "gw-sup"


class Rig:
    def __init__(self, tmp: Path, windows: dict[str, float] | None = None) -> None:
        reg = tmp / "devices.json"
        reg.write_text(json.dumps({"devices": [
            {"id": BUTTON, "key": "00" * 32, "type": "button"},
            {"id": SENSOR, "key": "11" * 32, "type": "sensor"}]}))
        self.registry = Registry(reg)
        self.store = Store(tmp / "gw.db", sinks=("centre",))
        self.up = True
        self.cfg = SupervisionSection(windows=windows or {"button": 0.3, "sensor": 60},
                                      gateway_grace_s=0.2)
        self.sup = self.new()

    def new(self) -> Supervisor:
        return Supervisor(self.cfg, GW, self.store, self.registry, lambda: self.up)

    def events(self) -> list[tuple[str, str, dict]]:
        return [(e.device, e.type, e.data) for e in self.store.pending("centre", 100)
                if e.kind == SUPERVISION]

    def heard(self, device: str, kind: str = "heartbeat", typ: str = "periodic") -> None:
        self.sup.seen(Event(device, 1, kind, typ, 0, None, 0, 0, None, {}))

    def ticks_until(self, check, what: str, timeout: float = 3.0) -> None:  # noqa: ANN001
        def step() -> bool:
            self.sup.tick()
            return bool(check())
        wait_until(step, timeout, what, interval=0.05)


def test_silent_device_goes_offline_once_and_online_when_heard(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.sup.tick()
    assert rig.events() == []
    rig.ticks_until(lambda: rig.events(), "the button's window to pass")
    [(dev, typ, data)] = rig.events()
    assert (dev, typ, data["reason"], data["window_s"]) == (BUTTON, "offline", "silent", 0)
    time.sleep(0.4)  # past the window again: not raised a second time
    rig.sup.tick()
    assert len(rig.events()) == 1
    rig.heard(BUTTON)
    assert [(d, t) for d, t, _ in rig.events()] == [(BUTTON, "offline"), (BUTTON, "online")]
    seqs = [e.seq for e in rig.store.pending("centre", 100)]
    assert all(s >= SEQ_BASE for s in seqs) and seqs[1] > seqs[0]


def test_last_will_is_offline_at_once_and_silence_does_not_repeat_it(tmp_path: Path) -> None:
    rig = Rig(tmp_path, {"button": 60, "sensor": 0.2})
    rig.heard(SENSOR, "status", "offline")
    assert rig.events() == [(SENSOR, "offline", {"reason": "last_will"})]
    time.sleep(0.3)
    rig.sup.tick()
    assert len(rig.events()) == 1
    rig.heard(SENSOR, "status", "online")
    assert rig.events()[-1][:2] == (SENSOR, "online")


def test_lost_broker_raises_one_gateway_event_and_no_device_flood(tmp_path: Path) -> None:
    rig = Rig(tmp_path, {"button": 0.3, "sensor": 0.3})
    rig.up = False
    rig.ticks_until(lambda: rig.events(), "gateway_offline after the grace")
    time.sleep(0.4)  # every device's window passes while the broker is away
    rig.sup.tick()
    assert [(d, t) for d, t, _ in rig.events()] == [(GW, "gateway_offline")]
    rig.up = True
    rig.sup.tick()  # back: a fresh window for each device, no offline yet
    assert [(d, t) for d, t, _ in rig.events()] == [(GW, "gateway_offline"), (GW, "online")]
    rig.ticks_until(lambda: len(rig.events()) == 4, "the devices' fresh windows to pass")
    assert {(d, t) for d, t, _ in rig.events()[2:]} == {(BUTTON, "offline"), (SENSOR, "offline")}


def test_offline_state_and_seqs_survive_a_restart(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.ticks_until(lambda: rig.events(), "offline")
    first = rig.store.pending("centre", 10)[0].seq
    rig.sup = rig.new()  # a gateway restart on the same store
    rig.heard(BUTTON)
    assert rig.events()[-1][:2] == (BUTTON, "online")
    assert rig.store.pending("centre", 10)[-1].seq > first


def test_supervision_seqs_do_not_touch_the_devices_dedup_window(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.store.insert(Event(BUTTON, 7, "alarm", "fire", 0, None, 0, 0, None, {}))
    rig.ticks_until(lambda: rig.events(), "offline")
    state = rebuild(4096, rig.store.recent_seqs(4096))
    assert state.devices[BUTTON].highest == 7
    assert check(state, BUTTON, 8) == NEW


def test_gateway_id_must_not_be_a_device(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    with pytest.raises(ConfigError, match="not a registered device"):
        Supervisor(rig.cfg, BUTTON, rig.store, rig.registry, lambda: True)


# --- the gateway process ---------------------------------------------------------

@pytest.fixture
def flow(mosquitto, tmp_path: Path) -> Iterator[tuple[Gateway, Centre, Device]]:  # noqa: ANN001
    key = secrets.token_bytes(32)
    centre = Centre().start()
    gw = Gateway(mosquitto, tmp_path, centre, {BUTTON: key})
    gw.config.write_text(gw.config.read_text() + (
        "\n[supervision]\nwindows = { button = 1.0 }\ncheck_s = 0.1\ngateway_grace_s = 0.5\n"))
    gw.start()
    dev = Device(mosquitto, BUTTON, key)
    yield gw, centre, dev
    dev.stop()
    gw.stop()
    centre.stop()


def test_gateway_reports_a_silent_button_and_its_return_to_the_centre(flow) -> None:  # noqa: ANN001
    gw, centre, dev = flow
    health = httpx.get(f"http://{LOOPBACK}:{gw.metrics_port}/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["broker"] is True and health.json()["store"] == "ok"
    assert health.json()["sinks"]["centre"]["backlog"] == 0

    def kinds() -> list[tuple[str, str]]:
        with centre.lock:
            return [(e["kind"], e["type"]) for e in centre.accepted if e["device"] == BUTTON]

    wait_until(lambda: kinds() == [("supervision", "offline")], WAIT, "offline at the centre")
    hb = protocol.encode(dev.key, BUTTON, 1, "heartbeat", "periodic", 0, {"up_s": 5},
                         int(time.time() * 1000))
    dev.publish(hb, leaf="heartbeat")
    wait_until(lambda: kinds()[1:] == [("heartbeat", "periodic"), ("supervision", "online")],
               WAIT, f"heartbeat and online at the centre: {kinds()}")
    assert all(e["seq"] >= SEQ_BASE for e in centre.accepted if e["kind"] == "supervision")
    assert gw.metric("hg_gateway_supervision_total", type="offline") == 1.0


def test_lost_broker_is_one_gateway_offline_not_a_device_flood(flow, mosquitto) -> None:  # noqa: ANN001
    gw, centre, dev = flow

    def sup() -> list[tuple[str, str]]:
        with centre.lock:
            return [(e["device"], e["type"]) for e in centre.accepted
                    if e["kind"] == "supervision"]

    wait_until(lambda: sup() == [(BUTTON, "offline")], WAIT, "the silent button offline")
    dev.publish(protocol.encode(dev.key, BUTTON, 1, "heartbeat", "periodic", 0, {},
                                int(time.time() * 1000)), leaf="heartbeat")
    wait_until(lambda: sup()[1:] == [(BUTTON, "online")], WAIT, "the button back")
    mosquitto.stop()
    try:
        wait_until(lambda: sup()[2:] == [("gw-flow", "gateway_offline")], WAIT,
                   f"gateway_offline at the centre: {sup()}")
        r = httpx.get(f"http://{LOOPBACK}:{gw.metrics_port}/health", timeout=5)
        assert r.status_code == 503 and r.json()["broker"] is False
        time.sleep(1.5)  # past the button's window while the broker is away
    finally:
        mosquitto.start()
    wait_until(lambda: ("gw-flow", "online") in sup(), WAIT, f"gateway online: {sup()}")
    # no button offline while the broker was away; its fresh window starts on reconnect
    assert sup()[:4] == [(BUTTON, "offline"), (BUTTON, "online"),
                         ("gw-flow", "gateway_offline"), ("gw-flow", "online")]
    assert gw.metric("hg_gateway_supervision_total", type="gateway_offline") == 1.0
