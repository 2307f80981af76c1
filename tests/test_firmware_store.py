"""Device persistence (hg.config, hg.seqres, hg.outbox) under CPython and real
MicroPython with identical output, then the device runtime (hg.device with
hg.simhal) against the real Mosquitto from broker/ config, the test playing
the gateway with signed acks."""

from __future__ import annotations

import json
from pathlib import Path

from tests.firmware import store_check

HERE = Path(__file__).parent
CHECK = HERE / "firmware" / "store_check.py"


def rows(out: str) -> dict[str, dict]:
    got = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {r.pop("check"): r for r in got}


def cpython_out(tmp_path: Path, capsys) -> str:
    store_check.main(str(tmp_path))
    return capsys.readouterr().out


def test_store_check_values(tmp_path: Path, capsys) -> None:
    r = rows(cpython_out(tmp_path, capsys))
    assert r["config good"]["errors"] == []
    assert r["config good"]["residual"] == {"set": 300, "hyst": 30, "min_ms": 1000}
    assert r["config good"]["telemetry_s"] == 10
    assert r["config bad thresholds"]["errors"] == [
        "thresholds.leak: unknown key",
        "thresholds.residual_ma.set: 10 is outside 20..1000",
        "thresholds.under_voltage_v.x: unknown key",
        "thresholds.under_voltage_v.hyst: 150 is outside 0..100"]
    assert r["config bad broker"]["errors"] == [
        "broker.hots: unknown key", "broker.host: missing",
        "broker.port: must be an integer", "broker.tls: must be true or false"]
    assert r["config missing file"]["errors"][0].endswith("c.json: missing or unreadable")
    assert r["remote ok"] == {"errors": [], "residual": {"set": 100, "hyst": 30, "min_ms": 1000},
                              "telemetry_s": 20, "cal": {"r_gain_num": 7}, "old": 10}
    assert r["remote bad"]["errors"] == ["key_hex: not a remote config key"]
    assert (r["stage"], r["rollback"]["now"], r["commit"]["files"]) == (
        {"trial": True, "now": 30, "prev": 10}, 10, ["config.json"])
    assert r["seq first boot"] == {"first": [1, 2, 3], "last": 600, "writes": 3, "file": "768"}
    assert r["seq after reboot"] == {"next": 769, "writes": 1, "file": "1024"}
    assert r["seq floor"]["next"] == 5001
    assert r["seq limit"]["last"] == 2**30 - 1
    assert r["seq limit"]["result"].startswith("Exhausted")
    assert r["outbox reopen"]["files"] == ["1.m", "2.m", "3.m"]
    assert r["outbox reopen"]["cleaned"] == 1 and all(r["outbox reopen"]["same"])
    assert r["outbox sheds telemetry"]["pending"] == [3, 5, 6, 7]
    assert r["outbox light shed itself"]["stored"] is False
    assert r["outbox events never shed"]["pending"] == [3, 6, 7, 9]
    assert r["outbox events never shed"]["result"].startswith("Full")


def test_micropython_matches_cpython(micropython, tmp_path: Path, capsys) -> None:
    want = cpython_out(tmp_path, capsys).replace(str(tmp_path), "/fs")
    got = micropython.run(
        "import os, sys\nsys.path.append('/t')\nos.mkdir('/fs')\n"
        "import store_check\nstore_check.main('/fs')\n",
        files={"/t/store_check.py": CHECK.read_text()})
    assert got.splitlines() == want.splitlines()
