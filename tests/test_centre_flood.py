"""Flood control at the centre (issue 15, finding 4), on SQLite and on a
real PostgreSQL: a device over the rate has its further alarms of one type
folded into its open alarm of that type (stored, accepted, counted, listed
in the detail), one `flooding` fault per flood, a first alarm of another
type always its own row, nothing lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select

from dashboard.app import create_app
from dashboard.centre import Centre
from dashboard.flood import FloodRule, RateWindow
from dashboard.ingest import store_batch
from dashboard.models import Event
from dashboard.queries import items_after, transitions_after
from dashboard.schemas import IngestBatch
from dashboard.settings import Settings
from tests.test_centre_api import ADMIN, ADMIN_PASSWORD, AUTH, TOKEN, login

T0 = 1795387455000
FLOODER, OTHER = "hg-b-0666", "hg-b-0001"
RATE = 3  # alarms per window before folding starts, in these tests


def alarm(seq: int, device: str = FLOODER, typ: str = "medical", at_s: float | None = None,
          kind: str = "alarm") -> dict[str, Any]:
    """An alarm `at_s` seconds after T0 (default: seq seconds)."""
    t = T0 + round((seq if at_s is None else at_s) * 1000)
    return {"device": device, "seq": seq, "kind": kind, "type": typ, "event_time_ms": t,
            "device_time_ms": t, "gateway_time_ms": t + 300, "age_ms": 300, "skew_ms": 0,
            "data": {"btn": "a"}}


def batch(*events: dict[str, Any]) -> dict[str, Any]:
    return {"gateway": "gw-1", "events": list(events)}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres").fresh_database())
    return f"sqlite:///{tmp_path / 'centre.db'}"


def settings(db_url: str, **over: Any) -> Settings:
    values: dict[str, Any] = dict(database_url=db_url, gateway_tokens=[TOKEN],
                                  bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}",
                                  flood_alarms=RATE, flood_window_s=60)
    values.update(over)
    return Settings(**values)


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings(db_url))) as c:
        c.headers["X-CSRF-Token"] = login(c, ADMIN, ADMIN_PASSWORD)
        yield c


def ingest(client: TestClient, *events: dict[str, Any]) -> list[str]:
    r = client.post("/api/v1/ingest", json=batch(*events), headers=AUTH)
    assert r.status_code == 200, r.text
    return [x["status"] for x in r.json()["results"]]


def desk(client: TestClient) -> list[tuple[str, str, int, int]]:
    """(device, type, seq, count) of every open alarm, in desk order."""
    r = client.get("/api/v1/desk", params={"limit": 500})
    assert r.status_code == 200 and r.json()["next"] is None, r.text
    return [(a["device"], a["type"], a["seq"], a["count"]) for a in r.json()["alarms"]]


def stored(client: TestClient) -> int:
    centre: Centre = client.app.state.centre  # type: ignore[attr-defined]
    with centre.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Event)) or 0)


def alarm_id(client: TestClient, device: str, typ: str, seq: int) -> int:
    return next(a["id"] for a in client.get("/api/v1/alarms", params={"limit": 1000}).json()
                if (a["device"], a["type"], a["seq"]) == (device, typ, seq))


def close(client: TestClient, aid: int) -> None:
    for action, body in (("ack", {}), ("verify", {"outcome": "false"}), ("resolve", {})):
        r = client.post(f"/api/v1/alarms/{aid}/{action}", json=body)
        assert r.status_code == 200, r.text


def test_the_rate_window() -> None:
    rule = FloodRule(3, 60_000)
    w = RateWindow(rule)
    for t in (0, 1000, 2000):
        assert not w.over(t)
        w.add(t)
    assert w.over(3000) and w.over(59_999)
    assert not w.over(60_000)  # the oldest of the three is a window before it
    assert not RateWindow(FloodRule(0, 60_000)).over(0) and not FloodRule(0, 1).on
    with pytest.raises(ValidationError, match="flood_alarms"):
        Settings(flood_alarms=-1)
    with pytest.raises(ValidationError, match="flood_window_s"):
        Settings(flood_window_s=0)


def test_alarms_over_the_rate_fold_into_the_open_one_and_nothing_is_lost(
        client: TestClient) -> None:
    # ten medical alarms a second apart, then another device's fire
    assert ingest(client, *[alarm(s) for s in range(1, 11)]) == ["accepted"] * 10
    assert ingest(client, alarm(1, device=OTHER, typ="fire")) == ["accepted"]
    assert desk(client) == [
        (OTHER, "fire", 1, 1),
        (FLOODER, "medical", 1, 1), (FLOODER, "medical", 2, 1),
        (FLOODER, "medical", 3, 8),  # seq 4 to 10 folded into it
        (FLOODER, "flooding", 4, 1),  # one fault, on the first folded alarm
    ]
    assert stored(client) == 11  # every event stored
    assert client.get("/api/v1/desk/counts").json()["open"] == 5
    # a gateway resending folded alarms gets `duplicate`; nothing changes
    assert ingest(client, alarm(5), alarm(10)) == ["duplicate", "duplicate"]
    assert desk(client)[3] == (FLOODER, "medical", 3, 8) and stored(client) == 11

    # the detail: its count, and the folded alarms newest first, a page at a time
    aid = alarm_id(client, FLOODER, "medical", 3)
    assert client.get(f"/api/v1/alarms/{aid}").json()["alarm"]["count"] == 8
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = client.get(f"/api/v1/alarms/{aid}/folded", params=params).json()
        assert page["count"] == 8 and len(page["events"]) <= 3
        seen += [e["seq"] for e in page["events"]]
        if page["next"] is None:
            break
        params["before"] = page["next"]
    assert seen == [10, 9, 8, 7, 6, 5, 4]
    first = client.get(f"/api/v1/alarms/{aid}/folded").json()["events"][-1]
    assert (first["seq"], first["event_time_ms"], first["kind"]) == (4, T0 + 4000, "alarm")
    assert client.get(f"/api/v1/alarms/{alarm_id(client, FLOODER, 'medical', 1)}/folded"
                      ).json() == {"count": 1, "events": [], "next": None}
    assert client.get("/api/v1/alarms/999/folded").status_code == 404


def test_another_type_is_never_folded_away_and_one_fault_per_flood(
        client: TestClient) -> None:
    ingest(client, *[alarm(s) for s in range(1, 7)])  # flooding: 4-6 folded
    # a first fire from the flooding device has no open fire alarm: its own row
    assert ingest(client, alarm(7, typ="fire")) == ["accepted"]
    # a second one is a repeat of an open fire while over the rate: folded
    ingest(client, alarm(8, typ="fire"), alarm(9, typ="medical"))
    assert desk(client) == [
        (FLOODER, "fire", 7, 2),
        (FLOODER, "medical", 1, 1), (FLOODER, "medical", 2, 1), (FLOODER, "medical", 3, 5),
        (FLOODER, "flooding", 4, 1),  # still the one fault
    ]


def test_a_new_fault_and_a_new_row_once_the_old_ones_are_closed(client: TestClient) -> None:
    ingest(client, *[alarm(s) for s in range(1, 6)])
    close(client, alarm_id(client, FLOODER, "flooding", 4))
    close(client, alarm_id(client, FLOODER, "medical", 3))
    # the flood goes on: its latest medical alarm is closed, so the next
    # one is a row of its own, and the one after folds into that
    ingest(client, alarm(6), alarm(7))
    assert desk(client) == [
        (FLOODER, "medical", 1, 1), (FLOODER, "medical", 2, 1), (FLOODER, "medical", 6, 2),
        (FLOODER, "flooding", 7, 1),  # the first fault was closed: a new one
    ]
    # the closed alarm keeps what was folded into it (alarms 1-3 the rows made first)
    closed = client.get("/api/v1/alarms/3").json()["alarm"]
    assert (closed["seq"], closed["state"], closed["count"]) == (3, "resolved", 3)


def test_under_the_rate_every_alarm_has_its_row(db_url: str) -> None:
    with TestClient(create_app(settings(db_url))) as c:
        login(c, ADMIN, ADMIN_PASSWORD)
        # one alarm every 30 s: never three within a minute before the next
        ingest(c, *[alarm(s, at_s=30 * s) for s in range(1, 9)])
        # a burst after a quiet while: three rows, then folds
        ingest(c, *[alarm(s, at_s=1000 + s) for s in range(9, 14)])
        assert desk(c) == ([(FLOODER, "medical", s, 1) for s in range(1, 11)]
                           + [(FLOODER, "medical", 11, 3), (FLOODER, "flooding", 12, 1)])
    # flood control off: every alarm its own row, however fast
    with TestClient(create_app(settings(db_url, flood_alarms=0))) as c:
        login(c, ADMIN, ADMIN_PASSWORD)
        ingest(c, *[alarm(s, device="hg-b-0777") for s in range(1, 31)])
        assert [a[2:] for a in desk(c) if a[0] == "hg-b-0777"] == [(s, 1) for s in range(1, 31)]


def test_the_live_stream_counts_on_the_row_and_replays_the_same(client: TestClient) -> None:
    centre: Centre = client.app.state.centre  # type: ignore[attr-defined]
    rule = FloodRule.of(centre.settings)

    def store(*events: dict[str, Any]) -> list[tuple[str, int, int, int | None]]:
        """(name, alarm id, count, flooding alarm id) of each live item."""
        with centre.sessions() as session:
            _, items = store_batch(session, IngestBatch.model_validate(batch(*events)),
                                   T0 + 99_000, rule)
            session.commit()
        return [shape(i.name, i.payload) for i in items]

    def shape(name: str, p: dict[str, Any]) -> tuple[str, int, int, int | None]:
        if name == "repeat":
            fault = p["flooding"]["id"] if p["flooding"] else None
            return name, p["alarm"]["id"], p["alarm"]["count"], fault
        return name, p["id"], p["count"], None

    assert store(*[alarm(s) for s in range(1, 7)]) == [
        ("alarm", 1, 1, None), ("alarm", 2, 1, None), ("alarm", 3, 1, None),
        ("repeat", 3, 2, 4),  # the row grows, and the flooding fault comes with it
        ("repeat", 3, 3, None), ("repeat", 3, 4, None)]
    assert store(alarm(7)) == [("repeat", 3, 5, None)]  # counted from the store
    # a desk reconnecting replays the same messages, each alarm as it is now
    with centre.sessions() as session:
        replayed = [shape(i.name, i.payload) for i in items_after(session, 0, 200)]
    assert replayed == [("alarm", 1, 1, None), ("alarm", 2, 1, None), ("alarm", 3, 5, None),
                        ("repeat", 3, 5, 4)] + [("repeat", 3, 5, None)] * 3
    # a transition keeps the count, live and replayed
    r = client.post("/api/v1/alarms/3/ack", json={})
    assert r.json()["alarm"]["count"] == 5
    with centre.sessions() as session:
        [ack] = transitions_after(session, 0, 10)
    assert (ack.payload["alarm"]["id"], ack.payload["alarm"]["count"]) == (3, 5)


def test_the_fault_tells_the_device_nothing_and_opens_no_hazard(client: TestClient) -> None:
    ingest(client, *[alarm(s, device="hg-s-0001", typ="over_temp") for s in range(1, 8)])
    assert len(client.get("/api/v1/hazards").json()) == RATE  # one per row, none per fold
    fault = alarm_id(client, "hg-s-0001", "flooding", 4)
    for aid in (fault, alarm_id(client, "hg-s-0001", "over_temp", 3)):
        assert client.post(f"/api/v1/alarms/{aid}/ack", json={}).status_code == 200
    # the device hears of its own alarm's acknowledgement, not of the fault's
    feedback = client.get("/api/v1/feedback", params={"gateway": "gw-1"}, headers=AUTH).json()
    assert [(f["seq"], f["type"]) for f in feedback] == [(3, "acknowledged")]
