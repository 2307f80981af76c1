"""Walking skeleton, end to end through real processes and a real Mosquitto:

simulated button (hg.protocol) -> Mosquitto (project config, device account)
-> gateway (verify, timestamp, dedup, store, ack) -> centre ingest
-> alarm desk in Chromium, live without reload.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateway.simdevice import SimDevice
from hg import protocol
from tests.harness.proc import Proc, free_port, wait_until

BIN = Path(sys.executable).parent
BUTTON = "hg-b-0101"
TOKEN = "skeleton-token"


class Stack:
    def __init__(self, mosquitto, tmp: Path) -> None:  # noqa: ANN001
        self.broker = mosquitto
        self.tmp = tmp
        self.key = secrets.token_bytes(32)
        self.password = mosquitto.add_device(BUTTON)
        (tmp / "devices.json").write_text(json.dumps({"devices": [
            {"id": BUTTON, "key": self.key.hex(), "type": "button",
             "household": "H-0101", "grid": "G-01"}]}))
        self.centre_port = free_port()
        self.centre_url = f"http://127.0.0.1:{self.centre_port}"
        self.centre = Proc("centre", [
            BIN / "homeguard", "centre", "--host", "127.0.0.1", "--port", self.centre_port,
            "--db", f"sqlite:///{tmp / 'centre.db'}", "--gateway-token", TOKEN], tmp)
        cfg = tmp / "gateway.toml"
        cfg.write_text(
            f'[gateway]\nid = "gw-test"\ndata_dir = "{tmp / "gw"}"\n\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\n'
            f'username = "{mosquitto.gateway_user}"\npassword = "{mosquitto.gateway_password}"\n'
            f'client_id = "gw-test"\n\n'
            f'[registry]\npath = "{tmp / "devices.json"}"\n\n'
            f'[centre]\nurl = "{self.centre_url}"\ntoken = "{TOKEN}"\n')
        self.gateway = Proc("gateway", [BIN / "homeguard", "gateway", "--config", cfg], tmp)

    def start(self) -> None:
        self.centre.start().wait_ready(self._centre_up)
        self.gateway.start()

    def _centre_up(self) -> bool:
        try:
            return httpx.get(f"{self.centre_url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        for p in (self.gateway, self.centre):
            p.stop()

    def alarms(self, limit: int = 200) -> list[dict]:
        return httpx.get(f"{self.centre_url}/api/v1/alarms", params={"limit": limit},
                         timeout=5).json()

    def device(self) -> SimDevice:
        return SimDevice(BUTTON, self.key, self.broker.host, self.broker.port, self.password,
                         self.tmp / "dev", resend_s=1.0).start()


@pytest.fixture
def stack(mosquitto, tmp_path: Path):  # noqa: ANN001
    s = Stack(mosquitto, tmp_path)
    s.start()
    yield s
    s.stop()


def test_pressed_alarm_reaches_the_centre_once_with_both_times(stack: Stack) -> None:
    dev = stack.device()
    try:
        assert dev.wait_connected()
        before = int(time.time() * 1000)
        seq = dev.press("fire")
        wait_until(lambda: any(a["seq"] == seq for a in stack.alarms()), 20,
                   f"alarm {seq} at the centre\n{stack.gateway.logs()}")
        # the household sees the centre got it
        wait_until(lambda: "delivered" in dev.acks.get(seq, []), 20, "delivered ack")
        assert dev.acks[seq][0] == "stored"
        # resend the very same bytes, as a device does after a lost ack
        wire = protocol.encode(dev.key, BUTTON, seq, "alarm", "fire", 5, {"btn": "f"},
                               dev.outbox.get(seq).ts if seq in dev.outbox else None)
        dev.client.publish(protocol.topic(BUTTON, "event"), wire, qos=1)
        wait_until(lambda: dev.acks[seq].count("stored") >= 2, 20, "second stored ack")
        mine = [a for a in stack.alarms() if a["device"] == BUTTON]
        assert [a["seq"] for a in mine] == [seq]
        alarm = mine[0]
        assert alarm["type"] == "fire"
        assert before - 1000 <= alarm["device_time_ms"] <= alarm["gateway_time_ms"] + 20000
        assert before <= alarm["gateway_time_ms"] <= alarm["received_ms"]
    finally:
        dev.stop()


def test_alarm_appears_on_the_desk_without_reload(stack: Stack, page, artifacts_dir) -> None:  # noqa: ANN001
    page.goto(stack.centre_url + "/")
    page.wait_for_selector("#conn[data-state='live']", timeout=10000)
    dev = stack.device()
    try:
        assert dev.wait_connected()
        seq = dev.press("medical")
        row = f"[data-device='{BUTTON}'][data-seq='{seq}']"
        page.wait_for_selector(row, timeout=20000)
        assert page.locator(row).count() == 1
        page.screenshot(path=str(artifacts_dir / "skeleton-desk.png"))
    finally:
        dev.stop()


def test_device_with_a_wrong_clock_still_gets_its_alarm_through(stack: Stack) -> None:
    dev = stack.device()
    dev.clock_offset_ms = -300_000  # five minutes slow: outside the -40 s/+20 s window
    try:
        assert dev.wait_connected()
        seq = dev.press("security")
        wait_until(lambda: any(a["seq"] == seq for a in stack.alarms()), 20,
                   "alarm from a device with a slow clock")
        assert dev.acks[seq][0] == "nak"
        alarm = next(a for a in stack.alarms() if a["seq"] == seq)
        assert alarm["device_time_ms"] is None  # resent with its age only
        assert abs(dev.clock_offset_ms) < 5_000  # took the gateway's time from the NAK
        later = dev.press("fire")
        wait_until(lambda: any(a["seq"] == later for a in stack.alarms()), 20, "next alarm")
        assert next(a for a in stack.alarms() if a["seq"] == later)["device_time_ms"]
    finally:
        dev.stop()
