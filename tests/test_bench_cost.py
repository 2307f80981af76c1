"""`homeguard bench cost` at its smallest: every row is measured against real
servers, and the gateway stored every message of every device (benchmarks
are not timed tests: no threshold on the figures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hg import protocol
from homeguard.bench import cost, register
from homeguard.bench.rig import BenchError
from tests.harness.proc import require_binary


@pytest.mark.parametrize("size", [240, 512, 768, 1024])
def test_telemetry_is_padded_to_the_exact_size_and_verifies(size: int) -> None:
    for seq in (1, 99, 100_000):
        key = cost.key_of("hg-c-000007")
        wire = cost.telemetry("hg-c-000007", seq, key, size)
        assert len(wire) == size
        msg = protocol.verify(protocol.topic("hg-c-000007", "telemetry"), wire,
                              {"hg-c-000007": key}.get, 0, 1 << 62, 1 << 62)
        assert msg["seq"] == seq and msg["data"]["v_dv"] == 2301


def test_padding_refuses_what_it_cannot_reach() -> None:
    with pytest.raises(BenchError):
        cost.telemetry("hg-c-000007", 1, cost.key_of("hg-c-000007"), 200)
    assert cost.key_of("hg-c-000001") != cost.key_of("hg-c-000002")


def test_rows_are_devices_at_the_first_size_then_sizes_at_the_first_count() -> None:
    assert cost.rows([100, 1000], [240, 1024]) == [(100, 240), (1000, 240), (100, 1024)]


def test_smallest_run_stores_every_message_and_prints_every_cost(tmp_path: Path) -> None:
    require_binary("mosquitto", "Debian: mosquitto")
    app = typer.Typer()
    register(app)
    out = tmp_path / "cost.json"
    result = CliRunner().invoke(app, [
        "bench", "cost", "--devices", "100,1000", "--payload-bytes", "240,1024",
        "--messages", "3000", "--rounds", "1", "--timeout", "60", "--out", str(out),
        "--dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["results"]["rows"]
    assert [(r["devices"], r["payload_bytes"]) for r in rows] == [
        (100, 240), (1000, 240), (100, 1024)]
    for r in rows:
        # every message of every device, once, in the gateway's own store
        assert r["stored_rounds"] == [[3000, r["devices"]]]
        assert r["gateway_shed_rounds"] == [0]
        for consumer in ("gateway", "paho"):
            assert r[consumer]["msg_per_s"] > 0
            assert r[consumer]["cpu_us_per_msg_rounds"][0] > 0
        assert r["cost_vs_first_rounds"][0] > 0
    assert rows[0]["cost_vs_first"] == 1.0
    assert "vs first" in result.output
