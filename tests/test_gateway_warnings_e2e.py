"""The gateway's warnings about itself reach the desk (issue 16), through
real Mosquitto, the gateway and the centre:

- data_lost: a device's seqs that never arrived (what a broker that drops
  the gateway's backlog leaves) are counted, logged and shown as one alarm
  naming how many and the device that lost most;
- disk_low: free space under [gateway] min_free_mb is an alarm, not only a
  /health field nobody may be looking at."""

from __future__ import annotations

import time
from pathlib import Path

from tests.harness.proc import wait_until
from tests.harness.stack import BUTTON, Stack
from tests.test_identity_e2e import Client

WAIT = 60.0


def warnings(stack: Stack, typ: str) -> list[dict]:
    return [a for a in stack.alarms(1000) if a["device"] == "gw-test" and a["type"] == typ]


def configure(stack: Stack, tmp: Path, gateway: str = "", dedup: str = "") -> None:
    cfg = tmp / "gateway.toml"
    text = cfg.read_text().replace('[gateway]\n', f'[gateway]\n{gateway}', 1)
    cfg.write_text(text + (f"\n[dedup]\n{dedup}" if dedup else ""))


def test_seqs_that_never_arrive_are_a_data_lost_warning(mosquitto, tmp_path: Path) -> None:  # noqa: ANN001
    stack = Stack(mosquitto, tmp_path)
    configure(stack, tmp_path, dedup="missing_grace_s = 1.0\n")
    stack.start()
    dev = Client(stack)
    try:
        for seq in (1, 2, 3, 8, 9):  # 4-7 lost on the way
            dev.send(seq, "periodic", kind="telemetry", data={"i_max": 1200})
        seq = 10
        # the gateway looks at its gaps as messages come: keep the device talking
        deadline = time.monotonic() + WAIT
        while not warnings(stack, "data_lost"):
            assert time.monotonic() < deadline, stack.gateway.logs()
            dev.send(seq, "periodic", kind="telemetry", data={"i_max": 1200})
            seq += 1
            time.sleep(0.5)
        [warning] = warnings(stack, "data_lost")
        assert warning["data"] == {"seqs": 4, "devices": 1, "most": BUTTON, "most_seqs": 4}
        assert f"device {BUTTON}: 4 seq(s) never arrived verified (4-7)" in stack.gateway.logs()
    finally:
        dev.close()
        stack.stop()


def test_a_disk_under_min_free_mb_is_a_disk_low_warning(mosquitto, tmp_path: Path) -> None:  # noqa: ANN001
    stack = Stack(mosquitto, tmp_path)
    configure(stack, tmp_path, gateway="min_free_mb = 1000000000\n")  # more than any disk
    stack.start()
    dev = Client(stack)
    try:
        dev.send(1, "fire")
        dev.ack_for(1, "delivered", timeout=WAIT)  # low, but not full: alarms go through
        wait_until(lambda: warnings(stack, "disk_low"), WAIT, "the disk_low warning")
        [warning] = warnings(stack, "disk_low")
        assert warning["data"]["min_free_mb"] == 1000000000
        assert 0 <= warning["data"]["free_mb"] < 1000000000
    finally:
        dev.close()
        stack.stop()
