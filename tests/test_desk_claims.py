"""One operator per alarm (issue 18), against the real `homeguard centre` on
SQLite and PostgreSQL: of two operators taking one alarm at the same moment
exactly one wins; the holder is on the live stream; others' actions are
refused with 409 until a supervisor reassigns; logout and idleness release
the claim; every change is in the alarm's audit trail."""

# ruff: noqa: F811 - the `desk` fixture is imported by name
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.desk_centre import DeskCentre, centre_env, desk  # noqa: F401 - fixtures
from tests.test_centre_browser import alarm

RACES = 20
WAIT_S = 60  # generous: the stream's keepalive comes every 15 s at least


def _stream(c: httpx.Client) -> Iterator[dict[str, Any]]:
    """The desk stream's messages from now on, as {"event", "data"}; connected
    when it returns (comments come as {"event": ":"})."""
    messages = _messages(c)
    assert next(messages)["event"] == "connected"
    return messages


def _messages(c: httpx.Client, path: str = "/api/v1/stream") -> Iterator[dict[str, Any]]:
    """A Server-Sent Events stream's messages as {"event", "data", ...}."""
    with c.stream("GET", path, timeout=httpx.Timeout(10, read=60)) as r:
        assert r.status_code == 200, r.read()
        msg: dict[str, Any] = {}
        for line in r.iter_lines():
            if line.startswith(":"):
                yield {"event": "connected" if line == ": connected" else ":"}
                continue
            if line == "":
                if "data" in msg:
                    yield msg
                msg = {}
                continue
            field, _, value = line.partition(": ")
            msg[field] = json.loads(value) if field == "data" else value


def _next(messages: Iterator[dict[str, Any]], action: str,
          timeout: float = WAIT_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    for msg in messages:
        if msg["event"] == "transition" and msg["data"]["audit"]["action"] == action:
            return msg["data"]
        assert time.monotonic() < deadline, f"no {action} on the stream within {timeout} s"
    raise AssertionError(f"the stream ended before a {action}")


def _audit(c: httpx.Client, alarm_id: int) -> list[tuple[str, str, str | None]]:
    return [(a["action"], a["username"], a["claimed_by"])
            for a in c.get(f"/api/v1/alarms/{alarm_id}").json()["audit"]]


def test_of_two_operators_taking_an_alarm_at_once_exactly_one_wins(desk: DeskCentre) -> None:
    names = ("olga", "oscar")
    clients = {name: desk.operator(name) for name in names}
    events = [alarm(1, device=f"hg-b-{n:04d}") for n in range(1, RACES + 1)]
    assert desk.ingest(*events) == ["accepted"] * RACES
    ids = sorted(a["id"] for a in clients["olga"].get("/api/v1/desk").json()["alarms"])
    assert len(ids) == RACES
    gate = threading.Barrier(2)

    def take(name: str, alarm_id: int) -> httpx.Response:
        gate.wait(timeout=30)
        return clients[name].post(f"/api/v1/alarms/{alarm_id}/ack", json={})

    wins = dict.fromkeys(names, 0)
    with ThreadPoolExecutor(2) as pool:
        for alarm_id in range(1, RACES + 1):
            got = dict(zip(names, pool.map(take, names, (alarm_id, alarm_id)), strict=True))
            codes = sorted(r.status_code for r in got.values())
            assert codes == [200, 409], {n: r.text for n, r in got.items()}
            [winner] = [n for n, r in got.items() if r.status_code == 200]
            [loser] = [n for n in names if n != winner]
            assert got[loser].json()["claimed_by"] == winner, got[loser].text
            assert got[winner].json()["alarm"]["claimed_by"] == winner
            assert _audit(clients[loser], alarm_id) == [("ack", winner, winner)]
            wins[winner] += 1
    assert sum(wins.values()) == RACES


def test_the_holder_is_live_and_only_a_supervisor_reassigns(desk: DeskCentre) -> None:
    olga, oscar, sam = desk.operator("olga"), desk.operator("oscar"), desk.operator("sam")
    messages = _stream(desk.client())
    assert desk.ingest(alarm(1, typ="medical")) == ["accepted"]
    r = olga.post("/api/v1/alarms/1/ack", json={})
    assert r.status_code == 200, r.text
    seen = _next(messages, "ack")
    assert (seen["alarm"]["claimed_by"], seen["audit"]["claimed_by"]) == ("olga", "olga")

    for other in (oscar, sam):  # a supervisor too acts only after reassigning
        r = other.post("/api/v1/alarms/1/verify", json={"outcome": "genuine"})
        assert r.status_code == 409 and r.json()["claimed_by"] == "olga", r.text
        assert "olga" in r.json()["detail"]
    assert oscar.post("/api/v1/alarms/1/reassign", json={"to": "oscar"}).status_code == 403
    assert sam.post("/api/v1/alarms/1/reassign", json={"to": "nobody-here"}).status_code == 422
    r = sam.post("/api/v1/alarms/1/reassign", json={"to": "oscar", "note": "olga on a call"})
    assert r.status_code == 200, r.text
    assert r.json()["alarm"]["claimed_by"] == "oscar"
    seen = _next(messages, "reassign")
    assert (seen["alarm"]["claimed_by"], seen["audit"]["username"]) == ("oscar", "sam")

    assert olga.post("/api/v1/alarms/1/verify", json={"outcome": "genuine"}).status_code == 409
    assert oscar.post("/api/v1/alarms/1/verify", json={"outcome": "genuine"}).status_code == 200
    assert olga.post("/api/v1/alarms/1/release").json()["claimed_by"] == "oscar"
    r = oscar.post("/api/v1/alarms/1/release")
    assert r.status_code == 200 and r.json()["alarm"]["claimed_by"] is None, r.text
    assert _next(messages, "release")["alarm"]["claimed_by"] is None
    # free again: the next operator to act takes it
    assert olga.post("/api/v1/alarms/1/dispatch", json={"to": "patrol"}).status_code == 200
    assert _audit(olga, 1) == [("ack", "olga", "olga"), ("reassign", "sam", "oscar"),
                               ("verify", "oscar", "oscar"), ("release", "oscar", None),
                               ("dispatch", "olga", "olga")]


def test_logout_releases_what_the_operator_held(desk: DeskCentre) -> None:
    olga, oscar = desk.operator("olga"), desk.operator("oscar")
    assert desk.ingest(alarm(1), alarm(2)) == ["accepted", "accepted"]
    for alarm_id in (1, 2):
        assert olga.post(f"/api/v1/alarms/{alarm_id}/ack", json={}).status_code == 200
    r = olga.post("/logout", data={"csrf_token": olga.headers["X-CSRF-Token"]})
    assert r.status_code == 303, r.text
    for alarm_id in (1, 2):
        assert oscar.get(f"/api/v1/alarms/{alarm_id}").json()["alarm"]["claimed_by"] is None
        assert _audit(oscar, alarm_id)[-1] == ("release", "olga", None)
        note = oscar.get(f"/api/v1/alarms/{alarm_id}").json()["audit"][-1]["note"]
        assert note == "logout"
    assert oscar.post("/api/v1/alarms/1/verify", json={"outcome": "test"}).status_code == 200


@pytest.mark.parametrize("centre_env", [{"HG_CENTRE_CLAIM_IDLE_S": "2"}])
def test_an_idle_claim_is_released_and_every_desk_sees_it(desk: DeskCentre) -> None:
    olga, oscar = desk.operator("olga"), desk.operator("oscar")
    messages = _stream(desk.client())
    assert desk.ingest(alarm(1)) == ["accepted"]
    assert olga.post("/api/v1/alarms/1/ack", json={}).status_code == 200
    assert _next(messages, "ack")["alarm"]["claimed_by"] == "olga"
    # nobody acts: the open stream's sweep records the release by the system
    seen = _next(messages, "release")
    assert (seen["audit"]["username"], seen["audit"]["note"]) == ("(system)", "idle")
    assert seen["alarm"]["claimed_by"] is None
    assert oscar.post("/api/v1/alarms/1/verify", json={"outcome": "false"}).status_code == 200
    assert _audit(oscar, 1) == [("ack", "olga", "olga"), ("release", "(system)", None),
                                ("verify", "oscar", "oscar")]
