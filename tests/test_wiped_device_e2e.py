"""A board whose flash is wiped (or replaced under the same identity) starts
counting seqs from 1 again. Through real Mosquitto, the gateway and the
centre, with the real button firmware (ButtonApp + hg.device on SimHAL):
its next alarm reaches the centre within seconds, once (issue 12). Before,
every alarm under an old seq was acked `stored`/`delivered` and dropped as
a "duplicate" until the counter passed the old high-water mark."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.harness.stack import BUTTON, Stack
from tests.test_button_app import HOLD_MS, Button

FIRST = 100


def button(root: Path, stack: Stack, synced: bool = True) -> Button:
    cfg = root / "config.json"
    if not cfg.exists():
        root.mkdir(parents=True, exist_ok=True)
        cfg.write_text(json.dumps({
            "v": 1, "device_id": BUTTON, "type": "button", "board": "button-c3",
            "broker": {"host": stack.broker.host, "port": stack.broker.port, "tls": False,
                       "username": BUTTON, "password": stack.password},
            "key_hex": stack.key.hex(), "button": {"hold_ms": HOLD_MS}}))
    b = Button(root, stack.broker, write=False)
    b.hal.synced = synced  # False: a board without a clock sends no ts
    b.run(lambda: b.dev.link.connected and not b.dev.link.client.subscribing, "online")
    return b


def mine(stack: Stack) -> list[dict]:
    """The device's own alarms (not the gateway's faults about it)."""
    return [a for a in stack.alarms(1000) if a["device"] == BUTTON and a["seq"] > 0]


def test_a_wiped_board_loses_no_alarm(tmp_path: Path, stack: Stack) -> None:
    root = tmp_path / "board"
    b = button(root, stack)
    try:
        for n in range(FIRST):  # what the app does on a press, without the 100 holds
            b.dev.send_event("fire", {"btn": "f"})
            if n % 20 == 19:  # within the flash outbox's room
                b.run(lambda: not b.dev.obx.pending(), f"{n + 1} alarms acked", timeout=60)
        b.run(lambda: len(mine(stack)) == FIRST, f"{FIRST} alarms at the centre", timeout=60)
    finally:
        b.dev.close()
    for f in root.iterdir():  # flash wiped: only the provisioned config is back
        if f.name != "config.json":
            shutil.rmtree(f) if f.is_dir() else f.unlink()
    b = button(root, stack)
    try:
        b.press(HOLD_MS + 200, "btn_medical")
        b.run(lambda: [a for a in mine(stack) if a["type"] == "medical"],
              "the wiped board's alarm at the centre", timeout=30)
        b.run(lambda: not b.dev.obx.pending(), "its outbox empty")
        alarms = mine(stack)
        medical = [a for a in alarms if a["type"] == "medical"]
        assert len(medical) == 1 and medical[0]["seq"] > FIRST, medical
        assert len(alarms) == FIRST + 1  # nothing doubled, nothing lost
        # and the centre was told the board reused its seqs (one device fault)
        faults = [a for a in stack.alarms(1000) if a["type"] == "seq_conflict"]
        assert [a["device"] for a in faults] == [BUTTON]
    finally:
        b.dev.close()
