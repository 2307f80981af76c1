"""The running Homeguard stack for end-to-end tests: a real Mosquitto (the
`mosquitto` fixture), the centre and the gateway as real subprocesses, one
registered button running the real firmware; `stack` fixture per test."""

from __future__ import annotations

import json
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hg import protocol
from hg.outbox import LIGHT
from homeguard.simulator.board import BoardSpec
from homeguard.simulator.fleet import Fleet
from tests.harness.proc import Proc, free_port

BIN = Path(sys.executable).parent
BUTTON = "hg-b-0101"
TOKEN = "skeleton-token"
ADMIN, ADMIN_PASSWORD = "admin", "stack-admin-password"


class Stack:
    """`flood_control`: the centre's at its defaults (dashboard/flood.py).
    Off otherwise: end-to-end tests use one button to send hundreds of
    alarms and count the rows, which flood control would fold."""

    def __init__(self, mosquitto, tmp: Path, flood_control: bool = False) -> None:  # noqa: ANN001
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
            "--db", f"sqlite:///{tmp / 'centre.db'}", "--gateway-token", f"gw-test:{TOKEN}",
            "--bootstrap-admin", f"{ADMIN}:{ADMIN_PASSWORD}"], tmp,
            env=None if flood_control else {"HG_CENTRE_FLOOD_ALARMS": "0"})
        cfg = tmp / "gateway.toml"
        cfg.write_text(
            f'[gateway]\nid = "gw-test"\ndata_dir = "{tmp / "gw"}"\n\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\n'
            f'username = "{mosquitto.gateway_user}"\npassword = "{mosquitto.gateway_password}"\n'
            f'client_id = "gw-test"\n\n'
            f'[registry]\npath = "{tmp / "devices.json"}"\n\n'
            f'[centre]\nurl = "{self.centre_url}"\ntoken = "{TOKEN}"\n')
        self.gateway = Proc("gateway", [BIN / "homeguard", "gateway", "--config", cfg], tmp)

    def add_device(self, device: str, typ: str, household: str) -> tuple[bytes, str]:
        """Register one more device (broker account, gateway registry) before
        start(); its (key, password)."""
        key, password = secrets.token_bytes(32), self.broker.add_device(device)
        registry = json.loads((self.tmp / "devices.json").read_text())
        registry["devices"].append({"id": device, "key": key.hex(), "type": typ,
                                    "household": household, "grid": "G-01"})
        (self.tmp / "devices.json").write_text(json.dumps(registry))
        return key, password

    def start(self) -> None:
        """Centre, then gateway; what started is stopped if the start fails
        (a Popen left running fails a later test with a ResourceWarning)."""
        try:
            self.centre.start().wait_ready(self._centre_up)
            # devices publish only once the gateway's persistent session exists:
            # before it, the broker has no subscriber to keep their messages for.
            # The whole log (a first start): a gateway with a backlog logs its
            # deliveries right after, past any short tail
            self.gateway.start().wait_ready(
                lambda: "subscribed topics=" in self.gateway.logs(10_000_000))
        except BaseException:
            self.stop()
            raise

    def _centre_up(self) -> bool:
        try:
            return httpx.get(f"{self.centre_url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        for p in (self.gateway, self.centre):
            p.stop()

    def alarms(self, limit: int = 200) -> list[dict]:
        r = httpx.get(f"{self.centre_url}/api/v1/alarms", params={"limit": limit},
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        r.raise_for_status()
        return r.json()

    def device(self) -> Button:
        """The registered button, started: hg.device + apps.button on hg.simhal."""
        return Button(BoardSpec(BUTTON, self.key.hex(), self.password, self.broker.host,
                                self.broker.port, self.tmp / "dev" / BUTTON, hold_ms=HOLD_MS,
                                resend_ms=1000)).start()


HOLD_MS = 300  # the button's hold time in the tests (200 is the least without double press)
# what the household is told about an alarm, from the last feedback for it
INDICATOR = {
    None: "sending (blink)",
    "stored": "stored at gateway (slow blink)",
    "delivered": "centre received (steady)",
    "acknowledged": "operator on it (steady)",
    "dispatched": "help dispatched (steady)",
    "resolved": "resolved (off)",
}


@dataclass
class Pending:
    """An event in the button's flash outbox."""
    seq: int
    kind: str
    type: str
    ts: int | None


class Button:
    """The stack's button, driven from the test's thread: the real firmware in
    a fleet of one (homeguard/simulator/fleet.py), pressed through its input pins."""

    def __init__(self, spec: BoardSpec) -> None:
        self.fleet = Fleet()
        self.board = self.fleet.add(spec)
        self.key = bytes.fromhex(spec.key_hex)
        self.client = RawPublisher(self)

    def start(self) -> Button:
        self.fleet.start()
        return self

    def stop(self) -> None:
        self.fleet.stop()

    def wait_connected(self, timeout: float = 10) -> bool:
        return self.board.wait_connected(timeout)

    def press(self, typ: str = "fire") -> int:
        """Hold the button until the app sends its alarm; the alarm's seq."""
        seq = self.board.press(typ)
        if seq is None:
            raise AssertionError(f"the button app sent nothing for {typ} (latched?)")
        return seq

    def wire(self, seq: int) -> bytes:
        """The bytes the device first published for event seq."""
        return self.board.call(lambda: self.board.wires[seq])

    @property
    def acks(self) -> dict[int, list[str]]:
        """seq -> the acks the device accepted for it, in order."""
        return self.board.acks

    def indicator(self, seq: int) -> str:
        acks = self.acks.get(seq, [])
        return INDICATOR[acks[-1] if acks and acks[-1] in INDICATOR else None]

    @property
    def outbox(self) -> dict[int, Pending]:
        """The events in the device's flash outbox (not yet acked)."""
        def read() -> dict[int, Pending]:
            obx = self.board.dev.obx
            out = {}
            for seq in obx.pending():
                if obx.kind(seq) not in LIGHT:
                    m = protocol.parse(obx.get(seq))[0]
                    out[seq] = Pending(seq, m["kind"], m["type"], m.get("ts"))
            return out
        return self.board.call(read)

    @property
    def clock_offset_ms(self) -> int:
        """How far the device's clock is off (its hal's offset + the device's
        correction from a clock_skew NAK)."""
        def offset() -> int:
            t = self.board.dev.time_ms()
            return 0 if t is None else int(t - time.time() * 1000)
        return self.board.call(offset)

    @clock_offset_ms.setter
    def clock_offset_ms(self, ms: int) -> None:
        def put() -> None:
            self.board.clock_offset_ms = self.board.hal.clock_offset_ms = ms
        self.board.call(put)


class RawPublisher:
    """Publishes bytes from the button's own connection (hg.link), for tests
    that resend what a device sent."""

    def __init__(self, button: Button) -> None:
        self.board = button.board

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> bool:
        return self.board.call(lambda: self.board.dev.link.publish(topic, payload, qos, retain))


@pytest.fixture
def stack(mosquitto, tmp_path: Path):  # noqa: ANN001
    s = Stack(mosquitto, tmp_path)
    s.start()
    yield s
    s.stop()
