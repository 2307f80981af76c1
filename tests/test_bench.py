"""`homeguard bench throughput` at its smallest: the whole stack runs and the
JSON carries every figure (benchmarks are not timed tests: no threshold)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer
from typer.testing import CliRunner

from homeguard.bench import register
from tests.harness.proc import require_binary


def test_throughput_smallest_run_writes_every_figure(tmp_path: Path) -> None:
    require_binary("mosquitto", "Debian: mosquitto")
    require_binary("mosquitto_sub", "Debian: mosquitto-clients")
    app = typer.Typer()
    register(app)
    out = tmp_path / "throughput.json"
    result = CliRunner().invoke(app, [
        "bench", "throughput", "--messages", "600", "--devices", "4", "--rounds", "2",
        "--timeout", "30", "--out", str(out), "--dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["machine"]["cores"] >= 1 and doc["machine"]["cpu"]
    assert 0 < doc["machine"]["cpu_tick_s"] <= 0.1
    # with VictoriaMetrics installed, the gateway writing its points there too
    ts = ("gateway_ts",) if shutil.which("victoria-metrics") else ()
    for consumer in ("mosquitto_sub", "paho", "gateway", "gateway_tuned", *ts):
        assert doc["results"][consumer]["messages"] == 600
        assert len(doc["results"][consumer]["rounds"]) == 2
        assert doc["results"][consumer]["msg_per_s"] > 0
        # CPU time counts in clock ticks (10 ms): a 600-message drain may
        # take less than one, so only its presence and sign are checked here
        assert len(doc["results"][consumer]["cpu_us_per_msg_rounds"]) == 2
        assert doc["results"][consumer]["cpu_us_per_msg"] >= 0
    per_round = [g / p for g, p in zip(doc["results"]["gateway"]["rounds"],
                                       doc["results"]["paho"]["rounds"], strict=True)]
    assert doc["results"]["ratio_gateway_paho_rounds"] == per_round
    assert doc["results"]["ratio_gateway_paho"] == sum(per_round) / 2
    assert "gateway / paho" in result.output and "gateway_tuned / paho" in result.output
    if ts:  # every telemetry point of both rounds is in VictoriaMetrics, once
        points = doc["results"]["timeseries_points"]
        assert points["sent"] == 2 * (600 - 600 // 20) == points["in_victoriametrics"]
        assert len(doc["results"]["ratio_gateway_ts_gateway_tuned_rounds"]) == 2
        assert "gateway_ts / paho" in result.output


def test_latency_smallest_run_reports_the_rate_the_broker_took(tmp_path: Path) -> None:
    require_binary("mosquitto", "Debian: mosquitto")
    app = typer.Typer()
    register(app)
    out = tmp_path / "latency.json"
    result = CliRunner().invoke(app, [
        "bench", "latency", "--loads", "0,300", "--presses", "3", "--bg-devices", "2",
        "--out", str(out), "--dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["results"]
    assert set(rows) == {"0", "300"}
    for row in rows.values():
        assert row["presses"] >= 3
        assert row["stages_ms"]["press_to_browser"]["count"] == row["presses"]
    assert rows["0"]["background_achieved_msg_per_s"] == 0
    # the publisher's figure is what the broker PUBACKed; no threshold
    assert 0 < rows["300"]["background_achieved_msg_per_s"] <= 300 * 1.1
    assert rows["300"]["gateway_took_msg_per_s"] > 0
