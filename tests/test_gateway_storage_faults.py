"""Storage faults (issue 16): a full disk under the real gateway, and the
memory it may use while its store cannot write.

The disk test mounts a small tmpfs as the gateway's data_dir (the tests run
as root, as CI does) and fills it. While it is full the gateway acks
nothing, /health says degraded with the free space, a killed gateway starts
again on the full disk, and once space returns every alarm is stored and
at the centre once — without restarting anything. (Before: "cannot start:
database or disk is full" even after space returned.)"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from gateway.lane import EventLane
from tests.harness.proc import free_port, wait_until
from tests.harness.stack import BUTTON, Stack
from tests.test_identity_e2e import Client


def test_a_failing_store_holds_the_source_instead_of_queueing_without_bound() -> None:
    fail = threading.Event()
    fail.set()
    committed: list[int] = []

    def commit(items: list[int]) -> list[str]:
        if fail.is_set():
            raise OSError("database or disk is full")
        committed.extend(items)
        return ["stored"] * len(items)

    lane = EventLane(commit, queue_max=10)
    lane.start()
    fed = []

    def source() -> None:  # the MQTT thread: put() blocks when there is no room
        for n in range(100):
            lane.put(n)
            fed.append(n)

    t = threading.Thread(target=source, daemon=True)
    t.start()
    wait_until(lambda: lane.failing and len(fed) >= 10, 30, "the lane full and failing")
    held = len(fed)
    assert lane.depth() <= 10 and held <= 10 + 500 + 1  # the queue plus the batch held
    assert t.is_alive()  # waiting for room, not queueing
    fail.clear()  # space is back
    t.join(60)
    wait_until(lambda: len(committed) == 100, 30, "every item committed")
    assert committed == list(range(100)) and not lane.failing
    lane.stop()


@pytest.fixture
def small_volume(tmp_path: Path):  # noqa: ANN201
    vol = tmp_path / "gw"
    vol.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(vol)], check=True)
    yield vol
    subprocess.run(["umount", "-l", str(vol)], check=False)


def fill(vol: Path) -> Path:
    """Write a file until the volume is full."""
    filler = vol / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 16))
                f.flush()
        except OSError:
            pass
    return filler


def test_full_disk_acks_nothing_reports_it_and_recovers_without_loss(
        mosquitto, tmp_path: Path, small_volume: Path) -> None:  # noqa: ANN001
    stack = Stack(mosquitto, tmp_path)
    port = free_port()
    cfg = tmp_path / "gateway.toml"
    text = cfg.read_text().replace(f'data_dir = "{small_volume}"\n',
                                   f'data_dir = "{small_volume}"\nmin_free_mb = 4\n')
    cfg.write_text(text + f'\n[metrics]\nhost = "127.0.0.1"\nport = {port}\n')

    def health() -> dict:
        try:
            return json.loads(httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).text)
        except httpx.TransportError:  # not listening (yet): a restart under way
            return {"status": None, "store": None, "disk": {"low": None}}

    stack.start()
    dev = Client(stack)
    try:
        dev.send(1, "fire")
        dev.ack_for(1, "delivered")
        assert health()["disk"]["low"] is False
        filler = fill(small_volume)
        wait_until(lambda: health()["status"] == "degraded" and health()["disk"]["low"], 30,
                   "/health degraded: disk low")
        for seq in range(2, 12):
            dev.send(seq, "medical")
        wait_until(lambda: health()["store"] != "ok", 30, "the store reported failing")
        assert dev.acks.empty()  # nothing acked while nothing can be stored
        # a gateway killed now starts again on the full disk
        stack.gateway.kill()
        stack.gateway.start().wait_ready(lambda: "subscribed topics=" in stack.gateway.logs())
        wait_until(lambda: health()["status"] == "degraded", 30, "degraded after the restart")
        filler.unlink()  # space is back: no restart needed
        acks = dev.ack_for(11, "delivered", timeout=90)
        stored = {a["data"]["ref"] for a in acks if a["type"] == "stored"}
        assert stored >= set(range(2, 12)) - {a["data"]["ref"] for a in acks
                                               if a["type"] == "delivered"}
        wait_until(lambda: len([a for a in stack.alarms(1000) if a["device"] == BUTTON]) >= 11,
                   60, "every alarm at the centre")
        seqs = sorted(a["seq"] for a in stack.alarms(1000) if a["device"] == BUTTON)
        assert seqs == list(range(1, 12))  # each once
        wait_until(lambda: health()["status"] == "ok", 30, "/health ok again")
    finally:
        dev.close()
        stack.stop()
