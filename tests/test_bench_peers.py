"""`homeguard bench peers` with no peer installed: the baseline rows are
measured on the real stack and each peer has a row saying how to install it
(benchmarks are not timed tests: no threshold)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from homeguard.bench import register
from homeguard.bench.peers_install import INSTALL_HINT, find_node_red, find_tb_gateway
from tests.harness.proc import require_binary


def test_peers_without_peers_measures_the_baselines_and_says_how_to_install(
        tmp_path: Path) -> None:
    require_binary("mosquitto", "Debian: mosquitto")
    require_binary("victoria-metrics", "Debian: victoria-metrics")
    empty = tmp_path / "no-peers"
    assert find_node_red(empty) is None and find_tb_gateway(empty) is None
    app = typer.Typer()
    register(app)
    out = tmp_path / "peers.json"
    result = CliRunner().invoke(app, [
        "bench", "peers", "--messages", "400", "--devices", "4", "--rounds", "1",
        "--timeout", "30", "--peers-dir", str(empty), "--out", str(out),
        "--dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    results = doc["results"]
    assert doc["params"]["peers_dir"] == str(empty)
    for consumer in ("paho", "gateway_ts"):
        assert results[consumer]["messages"] == 400
        assert len(results[consumer]["rounds"]) == 1
        assert results[consumer]["msg_per_s"] > 0
        assert f"\n│ {consumer} " in result.output
    assert results["gateway_ts"]["ratio_paho_rounds"] == [
        results["gateway_ts"]["rounds"][0] / results["paho"]["rounds"][0]]
    # every point of the telemetry-only stream is in VictoriaMetrics, once
    assert results["points"] == {"gateway_ts": {"sent": 400, "stored": 400}}
    assert results["not_run"] == dict.fromkeys(
        ("nodered_each", "nodered_batch", "tb_gateway"), INSTALL_HINT)
    assert results["versions"] == {}
    for peer in ("nodered_each", "nodered_batch", "tb_gateway"):
        assert peer not in results
        assert f"│ {peer} " in result.output
    assert result.output.count(INSTALL_HINT) == 3
    assert not empty.exists()  # nothing installed without --install
