"""`homeguard chaos` without servers: the reconciliation's counting and the
fault driver against a fake stack. (The whole run: tests/test_faults.py.)"""

from __future__ import annotations

import time

from homeguard.chaos import reconcile
from homeguard.chaos.faults import (
    CENTRE_DOWN,
    CUT_LINKS,
    KILL_GATEWAY,
    KINDS,
    RESTART_BROKER,
    Driver,
    Fault,
    FaultConfig,
)
from homeguard.chaos.reconcile import Stored


def stored(device: str, seq: int, at: int = 1000, received: int = 1100) -> Stored:
    return Stored(device, seq, at, received)


def test_alarms_lost_duplicated_and_unexpected_are_counted_apart() -> None:
    sent = {("d-1", 1), ("d-1", 2), ("d-2", 1), ("d-2", 2)}
    at_centre = [stored("d-1", 1), stored("d-1", 1), stored("d-2", 1), stored("d-3", 9)]
    out = reconcile.alarms(sent, at_centre, acked={("d-1", 2)})
    assert (out["pressed"], out["at_centre"], out["lost"]) == (4, 2, 2)
    assert out["lost_after_stored_ack"] == 1  # the gateway acked d-1/2 and it is not there
    assert out["duplicates"] == 1 and out["unexpected"] == 1
    assert out["lost_sample"] == [("d-1", 2), ("d-2", 2)]
    assert out["unexpected_sample"] == [("d-3", 9)]


def test_an_alarm_still_in_a_boards_flash_is_not_lost() -> None:
    sent = {("d", 1), ("d", 2), ("d", 3)}
    report = {"devices": {"d": {"in_flash_at_end": [3]}, "e": {}}}
    flash = reconcile.in_flash(report)
    assert flash == {("d", 3)}
    out = reconcile.alarms(sent, [stored("d", 1, 0, 10)], set(), flash)
    assert out["lost"] == 1 and out["lost_sample"] == [("d", 2)]
    assert out["in_flash_at_end"] == 1


def test_telemetry_missing_within_the_shed_count_is_not_lost() -> None:
    acked = {("d", s) for s in range(10)}
    kept = {("d", s) for s in range(7)} | {("d", 99)}
    assert reconcile.telemetry(acked, kept, shed=2) == {
        "acked_by_broker": 10, "stored": 7, "missing": 3, "shed": 2, "lost": 1}
    assert reconcile.telemetry(acked, kept, shed=5)["lost"] == 0


def test_latency_is_split_by_whether_the_press_fell_in_a_fault() -> None:
    faults = [Fault(KILL_GATEWAY, 1000, 2000), Fault(CENTRE_DOWN, 15_000, 16_000)]
    at_centre = [stored("d", 1, 1500, 4000), stored("d", 2, 3000, 3010),
                 stored("d", 3, 15_500, 16_500), stored("d", 4, 17_000, 17_020),
                 stored("x", 1, 1500, 1600)]  # not sent by the fleet: left out
    out = reconcile.latency({("d", s) for s in range(1, 5)}, at_centre, faults)
    assert out["inside_outages"]["count"] == 2 and out["inside_outages"]["max"] == 2500
    assert out["outside_outages"]["count"] == 2 and out["outside_outages"]["max"] == 20
    assert out["all"]["count"] == 4
    # by the fault in force: a gateway kill's alarm apart from the centre outage's
    assert out["by_fault"][KILL_GATEWAY]["count"] == 1
    assert out["by_fault"][KILL_GATEWAY]["max"] == 2500
    assert out["by_fault"][CENTRE_DOWN]["max"] == 1000
    # after the part was back: the kill's alarm arrived 2,000 ms after the
    # gateway was back (2000 -> 4000), the outage's 500 ms after the centre
    assert out["after_back"][KILL_GATEWAY] == {"count": 1, "min": 2000, "max": 2000,
                                               "p50": 2000, "p95": 2000, "p99": 2000}
    assert out["after_back"][CENTRE_DOWN]["max"] == 500


def test_after_back_leaves_out_presses_under_two_faults_or_just_after_another() -> None:
    faults = [Fault(KILL_GATEWAY, 20_000, 22_000), Fault(RESTART_BROKER, 21_000, 21_500),
              Fault(CUT_LINKS, 1_000, 2_000), Fault(KILL_GATEWAY, 5_000, 6_000)]
    at_centre = [stored("d", 1, 21_200, 29_000),  # under the kill and the restart
                 stored("d", 2, 20_200, 22_100),  # the kill alone
                 stored("d", 3, 5_500, 9_000)]  # a kill 3.5 s after a cut ended
    out = reconcile.latency({("d", 1), ("d", 2), ("d", 3)}, at_centre, faults)
    assert out["by_fault"][KILL_GATEWAY]["count"] == 3
    assert out["after_back"][KILL_GATEWAY]["count"] == 1
    assert out["after_back"][KILL_GATEWAY]["max"] == 100
    assert out["after_back"][RESTART_BROKER] == {"count": 0}


class FakeStack:
    """Notes what the driver did; a part is 'down' between its stop and start."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.down: set[str] = set()

    def kill_gateway(self) -> None:
        assert "gateway" not in self.down, "killed while down"
        self.down.add("gateway")
        self.calls.append("kill_gateway")

    def start_gateway(self) -> None:
        self.down.discard("gateway")
        self.calls.append("start_gateway")

    def restart_broker(self) -> None:
        self.calls.append("restart_broker")

    def kill_centre(self) -> None:
        self.down.add("centre")
        self.calls.append("kill_centre")

    def start_centre(self) -> str:
        self.down.discard("centre")
        self.calls.append("start_centre")
        return ""

    def cut_links(self, seconds: float) -> None:
        self.calls.append("cut_links")


def test_the_driver_does_every_kind_and_leaves_every_part_up() -> None:
    fake = FakeStack()
    cfg = FaultConfig(every_s=0.05, gateway_down_s=(0.05, 0.1), cut_s=(0.01, 0.02),
                      centre_outage_s=30.0, centre_at_s=0.2, seed=3)
    driver = Driver(fake, cfg)
    until = time.monotonic() + 1.5
    faults = driver.run(lambda: time.monotonic() >= until)
    assert {f.kind for f in faults} == set(KINDS)
    assert [f.kind for f in faults].count(CENTRE_DOWN) == 1
    # the run ended inside the 30 s centre outage: the centre is started anyway
    assert fake.down == set() and fake.calls.count("start_centre") == 1
    assert fake.calls.count("kill_gateway") == fake.calls.count("start_gateway")
    assert all(f.end_ms is not None and f.end_ms >= f.start_ms for f in faults)
