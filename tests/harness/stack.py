"""The running Homeguard stack for end-to-end tests: a real Mosquitto (the
`mosquitto` fixture), the centre and the gateway as real subprocesses, one
registered button; `stack` fixture per test."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

import httpx
import pytest

from gateway.simdevice import SimDevice
from tests.harness.proc import Proc, free_port

BIN = Path(sys.executable).parent
BUTTON = "hg-b-0101"
TOKEN = "skeleton-token"
ADMIN, ADMIN_PASSWORD = "admin", "stack-admin-password"


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
            "--db", f"sqlite:///{tmp / 'centre.db'}", "--gateway-token", TOKEN,
            "--bootstrap-admin", f"{ADMIN}:{ADMIN_PASSWORD}"], tmp)
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
        # devices publish only once the gateway's persistent session exists:
        # before it, the broker has no subscriber to keep their messages for
        self.gateway.start().wait_ready(lambda: "subscribed topics=" in self.gateway.logs())

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

    def device(self) -> SimDevice:
        return SimDevice(BUTTON, self.key, self.broker.host, self.broker.port, self.password,
                         self.tmp / "dev", resend_s=1.0).start()


@pytest.fixture
def stack(mosquitto, tmp_path: Path):  # noqa: ANN001
    s = Stack(mosquitto, tmp_path)
    s.start()
    yield s
    s.stop()
