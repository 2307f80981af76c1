"""The gateway's pipeline is declared once, in order (gateway/pipeline.py
FRONT, COMMIT, STAGES), and run in that order: the front stages per message,
the commit stages over a batch of events. What each stage decides is tested
in tests/test_gateway_stages.py; here, the order and that it is the one run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway import dedup, pipeline
from gateway.pipeline import COMMIT, DUPLICATE, FRONT, STAGES, STORED, Batch, BatchStage, Received
from hg import protocol
from tests.test_gateway_stages import BUTTON, EVENT, KEYS, NOW, Rig, alarm


def test_one_declared_order_that_the_module_describes() -> None:
    assert STAGES == ("retained", "verify", "timestamp", "dedup", "store", "remember", "ack")
    described = re.findall(r"^      ([a-z]+) ", pipeline.__doc__ or "", re.MULTILINE)
    assert tuple(described) == STAGES


def test_a_batch_runs_through_the_commit_stages_in_their_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig(tmp_path)
    fire = rig.pipeline.front(Received(EVENT, alarm(7), NOW, False))
    medical = rig.pipeline.front(Received(EVENT, protocol.encode(
        KEYS[BUTTON], BUTTON, 7, "alarm", "medical", 0, {}, NOW - 100), NOW, False))
    seen: list[tuple[str, list[str], int]] = []

    def watched(stage: BatchStage) -> BatchStage:
        def run(p: pipeline.Pipeline, b: Batch) -> None:
            stage.run(p, b)
            seen.append((stage.name, list(b.outcomes), len(rig.sent)))
        return BatchStage(stage.name, run)

    monkeypatch.setattr(pipeline, "COMMIT", tuple(watched(s) for s in COMMIT))
    assert rig.pipeline.commit_events([(fire, EVENT), (medical, EVENT), (fire, EVENT)]) == [
        STORED, dedup.CONFLICT, DUPLICATE]
    assert seen == [
        ("dedup", [STORED, STORED, STORED], 0),  # the window knows none of them yet
        ("store", [STORED, dedup.CONFLICT, DUPLICATE], 0),  # the store's last word, by content
        ("remember", [STORED, dedup.CONFLICT, DUPLICATE], 0),
        ("ack", [STORED, dedup.CONFLICT, DUPLICATE], 3)]  # stored, nak, stored again
    assert rig.pipeline.dedup.check(BUTTON, 7) == dedup.DUPLICATE  # remembered


def test_the_front_stages_are_the_ones_run(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    ran: list[str] = []
    monkeypatch.setattr(pipeline, "FRONT", tuple(
        pipeline.Stage(s.name, lambda p, m, s=s: (ran.append(s.name), s.process(p, m))[1])
        for s in FRONT))
    assert rig.handle(EVENT, alarm(8)) == STORED
    assert ran == ["retained", "verify", "timestamp"]
