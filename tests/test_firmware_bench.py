"""`homeguard bench firmware`'s full board image figure runs: the button
board's installed .mpy tree booted by hg.board.setup on the virtual board's
machine/network, connected, through 1000 events, with no firmware module
loaded before the first reading (no threshold: benchmarks
print figures, docs/benchmarks.md holds them against the goal)."""

from __future__ import annotations

import pytest

from homeguard.bench import firmware


@pytest.mark.timeout(300)
def test_the_full_board_image_boots_connects_and_sends(micropython) -> None:  # noqa: ANN001
    b = firmware.board_figures(micropython)
    assert b["events"] == 1000 and b["outbox_left"] == 0  # every event acked `stored`
    assert 0 < b["heap_booted"] <= b["heap_connected"]
    assert b["heap_after_events"] > 0 and b["press_to_publish_us_p50"] > 0
    assert b["loaded_before"] == []  # every firmware module counted (hg.protocol too)
