"""A device registered and keyed at the centre is accepted by a running
gateway that syncs its keys from the centre (`[registry] centre_sync_s`):
real Mosquitto, centre and gateway processes, the simulated button."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness.proc import wait_until
from tests.harness.stack import BUTTON, Stack
from tests.test_gateway_feedback import operator


def test_a_key_set_at_the_centre_reaches_the_gateway(mosquitto, tmp_path: Path) -> None:  # noqa: ANN001
    stack = Stack(mosquitto, tmp_path)
    (tmp_path / "devices.json").write_text(json.dumps({"devices": []}))  # no keys yet
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(cfg.read_text().replace("[registry]\n", "[registry]\ncentre_sync_s = 0.5\n"))
    stack.start()
    dev = stack.device()
    try:
        assert dev.wait_connected()
        seq = dev.press("fire")
        wait_until(lambda: "unknown_device" in stack.gateway.logs(), 20, "rejected: unknown")
        assert dev.acks.get(seq) is None
        with operator(stack) as (client, h):
            r = client.post("/api/v1/registry/devices", headers=h,
                            json={"device_id": BUTTON, "type": "button"})
            assert r.status_code == 201, r.text
            r = client.put(f"/api/v1/registry/devices/{BUTTON}/key", headers=h,
                           json={"key_hex": stack.key.hex()})
            assert r.status_code in (200, 204), r.text
        # the button resends every second; once the key has synced it is stored
        wait_until(lambda: "delivered" in dev.acks.get(seq, []), 30, "stored and delivered")
        assert [a["seq"] for a in stack.alarms() if a["device"] == BUTTON] == [seq]
        synced = json.loads((tmp_path / "devices.json").read_text())["devices"]
        assert [(d["id"], d["key"]) for d in synced] == [(BUTTON, stack.key.hex())]
    finally:
        dev.stop()
        stack.stop()


def test_merge_keeps_hand_written_entries_and_drops_deleted_synced_ones(tmp_path: Path) -> None:
    from gateway.keysync import merge

    path = tmp_path / "devices.json"
    path.write_text(json.dumps({"devices": [{"id": "hg-b-0001", "key": "aa" * 16,
                                             "type": "button"}]}))
    assert merge(path, {"hg-b-0002": "bb" * 16}, ["hg-b-0002"]) == 1
    assert merge(path, {"hg-b-0002": "bb" * 16}, ["hg-b-0002"]) == 0  # idempotent
    assert merge(path, {}, []) == 1  # deleted at the centre: the synced entry goes
    assert json.loads(path.read_text())["devices"] == [
        {"id": "hg-b-0001", "key": "aa" * 16, "type": "button"}]
