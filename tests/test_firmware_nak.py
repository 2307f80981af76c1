"""The firmware acts on the gateway's signed `nak` (issue 12): seq_conflict
and replay (each for an event still in the outbox) move the seq
reservation past the gateway's highest seq `hi` (persisted) and send the
refused event again under a fresh seq with its kind, type, data and event
time (nothing dropped); a status or heartbeat refused for a transient
reason is sent again once; clock_skew corrects the clock.
tests/firmware/nak_check.py drives hg.device over an in-memory broker
(tests/firmware/fakebroker.py) on a clock it moves; it prints the same
under CPython and the npm MicroPython."""

from __future__ import annotations

import json
from pathlib import Path

from tests.firmware import nak_check

HERE = Path(__file__).parent
T0 = nak_check.T0


def rows(out: str) -> dict[str, dict]:
    got = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {r.pop("check"): r for r in got}


def cpython_out(tmp_path: Path, capsys) -> str:  # noqa: ANN001
    nak_check.main(str(tmp_path))
    return capsys.readouterr().out


def test_what_the_device_does_with_each_nak(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    r = rows(cpython_out(tmp_path, capsys))
    assert [m[:2] for m in r["boot"]["sent"]] == [[2, "status"], [3, "heartbeat"]]
    assert r["alarm"] == {"seq": 4, "sent": [[4, "alarm", "fire", [["btn", "a"]], T0 + 1000, 0]]}
    # the gateway holds seq 4 with other content, its highest is 500: sent again
    # as 501 with the same type, data and time (age grown since the press)
    c = r["seq_conflict"]
    assert c["sent"] == [[501, "alarm", "fire", [["btn", "a"]], T0 + 1000, 5000]]
    assert (c["outbox"], c["renumbered"], c["seq_file"]) == ([501], [[4, 501]], "756")
    assert c["log"] == ["hg-b-0099 seq 4 refused (seq_conflict): sent again as 501"]
    assert r["stored"] == {"outbox": [], "feedback": [["stored", 501]]}  # acked as 501
    # a replay NAK for a seq the device no longer holds: only the counter moves
    assert r["replay not ours"] == {"sent": [], "next": 901, "renumbered": [[4, 501]]}
    hb = r["heartbeat"]  # a refused heartbeat: sent again once, under a fresh seq
    assert [m[:3] for m in hb["sent"]] == [[951, "heartbeat", "periodic"]] and hb["then"] == []
    assert r["unknown reason"] == {"sent": [], "error": "nak busy seq 900"}
    # an event made before a reboot: its stored ts kept, its age from that ts
    a = r["after reboot"]
    assert a["boot_seqs"][0] == 1158  # above the reservation persisted when moving past hi
    assert a["sent"] == [[2001, "alarm", "security", [], T0 + 8000, 13000]]
    assert a["outbox"] == [901, 2001] and a["renumbered"] == [[a["kept"], 2001]]
    s = r["online clock_skew"]  # the online status again, with the corrected clock
    assert s["sent"] == [[2002, "status", "online", [["fw", "hg-0.1"], ["rst", "power_on"]],
                          T0 + 21000 + 60000, 0]]
    # a replay NAK for an event still in the outbox: the reservation moves past
    # hi and the event is sent again under a fresh seq, same content and time
    p = r["replay in outbox"]
    press = [p["held"], "alarm", "panic", [["btn", "p"]], T0 + 30000 + 60000]
    assert p["first"] == [press + [0]]
    assert p["sent"] == [[7001, *press[1:], 2000]]  # age grown since the press
    assert (p["outbox"], p["renumbered"], p["seq_file"]) == ([7001], [[p["held"], 7001]], "7256")
    assert p["log"] == [f"hg-b-0099 seq {p['held']} refused (replay): sent again as 7001"]


def test_micropython_prints_the_same(micropython, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    want = cpython_out(tmp_path, capsys)
    got = micropython.run(
        "import os, sys\nsys.path.append('/t')\nos.mkdir('/fs')\n"
        "import nak_check\nnak_check.main('/fs')\n",
        files={"/t/nak_check.py": (HERE / "firmware" / "nak_check.py").read_text(),
               "/t/fakebroker.py": (HERE / "firmware" / "fakebroker.py").read_text()})
    assert got.splitlines() == want.splitlines()
