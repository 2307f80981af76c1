"""Seqs a device used that never reached the gateway are counted (issue 16:
a broker that drops the gateway's backlog loses telemetry silently).

The rules on gaps.Gaps itself, then through Pipeline.handle with a real
store: a gap in a device's seqs that outlives the grace is counted in
hg_gateway_seq_missing_total, logged with the device and the seqs, and
handed to the service (which reports it to the centre); a seq that arrives
late fills its gap; a reconnect's or reboot's skip (the run just below an
`online`) is not a loss; after a restart the gap to the stored seqs counts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from gateway.gaps import GRACE_MS, MAX_RUNS, Gaps, Missing
from hg import protocol
from tests.test_gateway_stages import BUTTON, KEYS, NOW, Rig

T0 = 1_000_000


def counted(found: list[Missing]) -> list[tuple[str, int, int, int]]:
    return [(m.device, m.count, m.lo, m.hi) for m in found]


def test_a_gap_is_missing_only_after_the_grace_and_late_seqs_fill_it() -> None:
    g = Gaps(grace_ms=1000)
    for seq in (1, 2, 6, 9):
        g.seen("d", seq, T0)
    assert g.pending() == 3 + 2  # 3-5 and 7-8
    g.seen("d", 4, T0 + 10)  # a late one (a resent alarm, the other session)
    assert g.pending() == 4
    assert g.expire(T0 + 999) == []
    assert counted(g.expire(T0 + 1000)) == [("d", 1, 3, 3), ("d", 1, 5, 5), ("d", 2, 7, 8)]
    assert g.pending() == 0 and g.expire(T0 + 5000) == []
    g.seen("d", 7, T0 + 6000)  # after it was counted: nothing changes, nothing raised
    assert g.pending() == 0


def test_the_run_just_below_an_online_is_a_reconnect_not_a_loss() -> None:
    g = Gaps(grace_ms=1000)
    g.seen("d", 10, T0)
    g.seen("d", 12, T0)  # 11 missing: a real loss
    g.seen("d", 300, T0, online=True)  # a reboot: 13..299 reserved and skipped
    g.seen("d", 301, T0)
    assert counted(g.expire(T0 + 1000)) == [("d", 1, 11, 11)]
    # the online may come after what followed it (two sessions): same verdict
    g.seen("d", 303, T0 + 2000)  # 302 = the online, still on its way
    g.seen("d", 302, T0 + 2001, online=True)
    assert g.pending() == 0


def test_a_device_first_seen_starts_at_its_stored_seq_or_its_first_message() -> None:
    stored = {"old": 50}
    g = Gaps(seed=lambda d: stored.get(d, 0), grace_ms=1000)
    g.seen("new", 700, T0)  # nothing known before: no gap
    g.seen("old", 60, T0)  # the store had 50: 51..59 were lost while away
    assert counted(g.expire(T0 + 1000)) == [("old", 9, 51, 59)]


def test_runs_per_device_are_bounded_and_the_oldest_is_counted_at_once() -> None:
    g = Gaps(grace_ms=10**9)
    for i in range(MAX_RUNS + 3):
        g.seen("d", 1 + 2 * i, T0)  # every other seq missing
    early = g.expire(T0)
    assert counted(early) == [("d", 1, 2, 2), ("d", 1, 4, 4)]
    assert g.pending() == MAX_RUNS


def missing_total() -> float:
    return REGISTRY.get_sample_value("hg_gateway_seq_missing_total") or 0.0


def telemetry(seq: int, ts: int = NOW - 500) -> bytes:
    return protocol.encode(KEYS[BUTTON], BUTTON, seq, "telemetry", "periodic", 0,
                           {"i_max": 1500}, ts)


def test_the_pipeline_counts_logs_and_hands_over_what_never_came(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(tmp_path)
    handed: list[Missing] = []
    rig.pipeline.on_missing = handed.extend
    topic = protocol.topic(BUTTON, "telemetry")
    before = missing_total()
    for seq in (1, 2, 3, 7, 8):  # 4-6 dropped by the broker
        rig.handle(topic, telemetry(seq), NOW)
    assert missing_total() == before and handed == []
    with caplog.at_level(logging.WARNING, logger="homeguard.gateway"):
        rig.handle(topic, telemetry(9, NOW + GRACE_MS), NOW + GRACE_MS)
    assert missing_total() == before + 3
    assert counted(handed) == [(BUTTON, 3, 4, 6)]
    assert rig.pipeline.missing == {BUTTON: 3}
    assert f"device {BUTTON}: 3 seq(s) never arrived verified (4-6)" in caplog.text


def test_after_a_restart_the_gap_to_the_stored_seqs_is_counted(tmp_path: Path) -> None:
    topic = protocol.topic(BUTTON, "telemetry")
    first = Rig(tmp_path)
    for seq in (1, 2, 3):
        first.handle(topic, telemetry(seq), NOW)
    again = Rig(tmp_path)  # the same store: a restarted gateway
    handed: list[Missing] = []
    again.pipeline.on_missing = handed.extend
    again.handle(topic, telemetry(10), NOW)  # 4-9 were dropped while it was down
    again.handle(topic, telemetry(11, NOW + GRACE_MS), NOW + GRACE_MS)
    assert counted(handed) == [(BUTTON, 6, 4, 9)]
