"""Contact notification against a real local HTTP receiver (the webhook an
SMS/voice provider would offer) and a real local SMTP server: an alarm tells
the first contact, no acknowledgement escalates to the next, an
acknowledgement stops escalation, a receiver that is down is retried and
every attempt is recorded."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard.app import create_app
from dashboard.models import Contact, Device, GridCell, Household
from dashboard.notify.models import Notification
from dashboard.notify.plan import Due, Policy, Tried, due, finished
from dashboard.settings import Settings
from tests.harness.proc import free_port, wait_until
from tests.test_centre_api import ADMIN, ADMIN_PASSWORD, AUTH, TOKEN, batch, event, login

DEVICE = "hg-b-0001"


class Receiver:
    """A webhook receiver on a loopback port: records every JSON body it
    accepts; answers 503 to the first `fail` requests."""

    def __init__(self, port: int, fail: int = 0, slow: dict[int, float] | None = None) -> None:
        self.port, self.fail, self.slow = port, fail, slow or {}
        self.got: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.refused = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(outer.slow.get(body["alarm_id"], 0))  # a provider taking its time
                if outer.fail > 0:
                    outer.fail -= 1
                    outer.refused += 1
                    self.send_response(503)
                else:
                    outer.got.append(body)
                    outer.headers.append(dict(self.headers))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def names(self) -> list[str]:
        return [b["name"] for b in self.got]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def receiver(port: int) -> Iterator[Receiver]:
    r = Receiver(port)
    yield r
    r.close()


def settings(tmp_path: Path, port: int, **over: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=f"sqlite:///{tmp_path / 'c.db'}", gateway_tokens=[TOKEN],
        bootstrap_admin=f"{ADMIN}:{ADMIN_PASSWORD}", notify_channels=["webhook"],
        notify_webhook_url=f"http://127.0.0.1:{port}/sms", notify_timeout_s=2,
        notify_webhook_token="provider-secret",
        notify_poll_s=0.05, notify_backoff_s=0.1, notify_attempts=3, notify_escalate_s=0.6,
        notify_supervisor_phone="13900000009", notify_supervisor_name="Sun (duty)")
    values.update(over)
    return Settings(**values)


def register(app: FastAPI) -> None:
    """One household with two contacts (rank 1 Wang, rank 2 Li) in a grid
    cell whose worker is Zhang, and the button bound to it."""
    with app.state.centre.sessions() as s:
        cell = GridCell(code="G-01", name="东一网格", community="东城社区",
                        worker_name="Zhang", worker_phone="13900000003")
        s.add(cell)
        s.flush()
        home = Household(code="H-0001", address="东城路 1 号 2-301", community="东城社区",
                         grid_cell_id=cell.id)
        home.contacts = [Contact(name="Li", phone="13900000002", rank=2),
                         Contact(name="Wang", phone="13900000001", rank=1,
                                 email="wang@example.test")]
        s.add(home)
        s.flush()
        s.add(Device(device_id=DEVICE, type="button", household_id=home.id, created_ms=0))
        s.commit()


@pytest.fixture
def app(tmp_path: Path, port: int) -> Iterator[FastAPI]:
    app = create_app(settings(tmp_path, port))
    register(app)
    with TestClient(app):
        # log in before any alarm: a login started while the notifier writes
        # can meet "database is locked" (see the report on logins.start)
        app.state.viewer = TestClient(app)
        app.state.csrf = login(app.state.viewer, ADMIN, ADMIN_PASSWORD)
        yield app


def alarm(app: FastAPI, seq: int = 1, typ: str = "fire") -> None:
    r = TestClient(app).post("/api/v1/ingest", json=batch(event(seq, typ=typ)), headers=AUTH)
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "accepted", r.text


def attempts(app: FastAPI, alarm_id: int = 1) -> list[dict[str, Any]]:
    r = app.state.viewer.get(f"/api/v1/alarms/{alarm_id}/notifications")
    assert r.status_code == 200, r.text
    return list(r.json())


def test_alarm_notifies_the_first_contact_by_webhook(app: FastAPI, receiver: Receiver) -> None:
    alarm(app)
    wait_until(lambda: len(receiver.got) >= 1, 5, "the first contact's webhook")
    first = receiver.got[0]
    assert (first["name"], first["phone"], first["role"]) == ("Wang", "13900000001", "contact")
    assert (first["alarm_id"], first["alarm_type"], first["household"]) == (1, "fire", "H-0001")
    assert "东城路 1 号 2-301" in first["text"]
    headers = receiver.headers[0]
    assert headers["Authorization"] == "Bearer provider-secret"
    assert headers["Idempotency-Key"] == first["key"] == "1-0-webhook"
    rows = attempts(app)
    assert [(r["step"], r["name"], r["channel"], r["target"], r["status"]) for r in rows][:1] \
        == [(0, "Wang", "webhook", "13900000001", "sent")]


def test_unacknowledged_alarm_escalates_in_order(app: FastAPI, receiver: Receiver) -> None:
    alarm(app)
    wait_until(lambda: len(receiver.got) >= 4, 10, "escalation to the supervisor")
    assert receiver.names() == ["Wang", "Li", "Zhang", "Sun (duty)"]
    assert [b["role"] for b in receiver.got] == ["contact", "contact", "grid_worker", "supervisor"]
    rows = attempts(app)
    assert [(r["step"], r["status"]) for r in rows] == [(0, "sent"), (1, "sent"), (2, "sent"),
                                                         (3, "sent")]
    gaps = [b["at_ms"] - a["at_ms"] for a, b in zip(rows, rows[1:], strict=False)]
    assert all(g >= 600 for g in gaps), gaps  # each step waited the escalation time


def test_acknowledgement_stops_escalation(app: FastAPI, receiver: Receiver) -> None:
    alarm(app)
    wait_until(lambda: len(receiver.got) >= 1, 5, "the first contact's webhook")
    r = app.state.viewer.post("/api/v1/alarms/1/ack", json={},
                              headers={"X-CSRF-Token": app.state.csrf})
    assert r.status_code == 200, r.text
    # well past two escalation times, nobody else heard of it
    stop = app.state.notify
    deadline_rounds = 3 * 0.6 / 0.05
    wait_until(lambda: stop.rounds >= deadline_rounds, 10, "the notifier to look again")
    assert receiver.names() == ["Wang"]
    assert len(attempts(app)) == 1


def test_non_household_alarms_notify_nobody(app: FastAPI, receiver: Receiver,
                                           caplog: pytest.LogCaptureFixture) -> None:
    TestClient(app).post("/api/v1/ingest", headers=AUTH, json=batch(
        event(1, kind="alarm", typ="tamper"), event(-2, kind="supervision", typ="offline"),
        event(3, device="hg-b-0099", typ="fire"), event(4, typ="medical")))
    wait_until(lambda: len(receiver.got) >= 1, 5, "the medical alarm's webhook")
    rounds = app.state.notify.rounds
    wait_until(lambda: app.state.notify.rounds >= rounds + 5, 5, "more rounds")
    assert [(b["alarm_id"], b["alarm_type"]) for b in receiver.got] == [(4, "medical")]
    unbound = [r.getMessage() for r in caplog.records if "nobody to notify" in r.getMessage()]
    assert unbound == ["alarm 3 (fire from hg-b-0099): nobody to notify (device not "
                       "registered or in no household)"]


def test_receiver_down_is_retried_and_every_attempt_recorded(app: FastAPI, port: int) -> None:
    alarm(app)
    wait_until(lambda: any(r["status"] == "failed" for r in attempts(app)), 5,
               "a failed attempt while nothing listens")
    receiver = Receiver(port, fail=1)  # up now, but its first answer is a 503
    try:
        wait_until(lambda: receiver.got, 5, "the retried webhook")
        assert receiver.names()[0] == "Wang"
    finally:
        receiver.close()
    first = [r for r in attempts(app) if r["step"] == 0]
    assert [r["attempt"] for r in first] == list(range(1, len(first) + 1))
    assert [r["status"] for r in first][-1] == "sent"
    failed = [r for r in first if r["status"] == "failed"]
    assert failed and all(r["error"] for r in failed)
    assert any("ConnectError" in r["error"] for r in failed)


def test_restart_carries_on_without_notifying_a_step_twice(
        tmp_path: Path, port: int, receiver: Receiver) -> None:
    first = create_app(settings(tmp_path, port, notify_escalate_s=1.5))
    register(first)
    with TestClient(first):
        alarm(first)
        wait_until(lambda: receiver.names() == ["Wang"], 5, "the first contact")
    # the centre stopped; pretend it died while telling Li (a row left "sending")
    with first.state.centre.sessions() as s:
        s.add(Notification(alarm_id=1, step=1, role="contact", name="Li", channel="webhook",
                           target="13900000002", attempt=1, status="sending",
                           at_ms=0))
        s.commit()
    again = create_app(settings(tmp_path, port, notify_escalate_s=1.5))
    with TestClient(again):
        wait_until(lambda: "Li" in receiver.names(), 5, "Li after the restart")
        rounds = again.state.notify.rounds
        wait_until(lambda: again.state.notify.rounds >= rounds + 5, 5, "more rounds")
        with again.state.centre.sessions() as s:
            rows = s.query(Notification).order_by(Notification.id).all()
            got = [(r.step, r.attempt, r.status, r.error) for r in rows]
    assert receiver.names()[:2] == ["Wang", "Li"]
    assert receiver.names().count("Wang") == 1
    assert got[:3] == [(0, 1, "sent", None),
                       (1, 1, "failed", "interrupted: the centre stopped during this attempt"),
                       (1, 2, "sent", None)]


def test_smtp_notifies_a_contact_by_email(tmp_path: Path, port: int) -> None:
    controller = pytest.importorskip("aiosmtpd.controller")
    handlers = pytest.importorskip("aiosmtpd.handlers")
    mails: list[Any] = []

    class Keep(handlers.Message):  # type: ignore[misc,name-defined]
        def handle_message(self, message: Any) -> None:
            mails.append(message)

    smtp_port = free_port()
    server = controller.Controller(Keep(), hostname="127.0.0.1", port=smtp_port)
    server.start()
    try:
        app = create_app(settings(tmp_path, port, notify_channels=["smtp"],
                                  notify_smtp_host="127.0.0.1", notify_smtp_port=smtp_port,
                                  notify_smtp_from="centre@homeguard.test",
                                  notify_escalate_s=60))
        register(app)
        with TestClient(app):
            alarm(app, typ="medical")
            wait_until(lambda: mails, 5, "the e-mail to the first contact")
    finally:
        server.stop()
    mail = mails[0]
    assert (mail["To"], mail["From"]) == ("wang@example.test", "centre@homeguard.test")
    assert "medical alarm 1" in mail["Subject"]
    assert "东城路 1 号 2-301" in mail.get_payload(decode=True).decode()


# --- the plan alone (pure: who is due when) ---

POLICY = Policy(attempts=3, backoff_ms=100, escalate_ms=1000)
TWO = [["webhook"], ["webhook"], []]  # the third person has no phone: skipped


def tried(step: int, attempt: int, status: str, at: int, done: int | None = None,
          channel: str = "webhook") -> Tried:
    return Tried(step, channel, attempt, status, at, done if done is not None else at)


def test_plan_backs_off_doubling_then_gives_up_and_escalates_at_once() -> None:
    history = [tried(0, 1, "failed", 0, 10)]
    assert due(TWO, False, history, 109, POLICY) == []
    assert due(TWO, False, history, 110, POLICY) == [Due(0, "webhook", 2)]
    history.append(tried(0, 2, "failed", 110, 120))
    assert due(TWO, False, history, 319, POLICY) == []  # waits 200 ms now
    assert due(TWO, False, history, 320, POLICY) == [Due(0, "webhook", 3)]
    history.append(tried(0, 3, "failed", 320, 330))
    # the first contact is unreachable: the next one at once, not after escalate_ms
    assert due(TWO, False, history, 331, POLICY) == [Due(1, "webhook", 1)]
    assert not finished(TWO, False, history, POLICY)


def test_plan_never_repeats_a_sent_or_busy_step_and_ends() -> None:
    sent = [tried(0, 1, "sent", 0)]
    assert due(TWO, False, sent, 999, POLICY) == []
    assert due(TWO, False, sent, 1000, POLICY) == [Due(1, "webhook", 1)]
    assert due(TWO, True, sent, 5000, POLICY) == []  # acknowledged: no escalation
    assert finished(TWO, True, sent, POLICY)
    busy = [tried(0, 1, "sending", 0)]
    assert due(TWO, False, busy, 10_000, POLICY) == []
    both = [*sent, tried(1, 1, "sent", 1000)]
    assert due(TWO, False, both, 99_000, POLICY) == []  # nobody reachable is left
    assert finished(TWO, False, both, POLICY)
    assert due([[], ["smtp", "log"]], False, [], 0, POLICY) == [Due(1, "smtp", 1),
                                                                Due(1, "log", 1)]


def test_settings_name_a_channel_that_is_not_configured(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="webhook needs HG_CENTRE_NOTIFY_WEBHOOK_URL"):
        settings(tmp_path, 1, notify_webhook_url=None)
    with pytest.raises(ValueError, match="smtp needs HG_CENTRE_NOTIFY_SMTP_HOST"):
        settings(tmp_path, 1, notify_channels=["smtp"])
    with pytest.raises(ValueError, match="unknown notify channel 'sms'"):
        settings(tmp_path, 1, notify_channels=["sms"])


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres").fresh_database())
    return f"sqlite:///{tmp_path / 'shared.db'}"


def test_two_centres_on_one_store_tell_each_person_once(
        tmp_path: Path, port: int, receiver: Receiver, store: str) -> None:
    one = create_app(settings(tmp_path, port, database_url=store, notify_poll_s=0.01,
                              notify_escalate_s=0.3))
    two = create_app(settings(tmp_path, port, database_url=store, notify_poll_s=0.01,
                              notify_escalate_s=0.3, bootstrap_admin=None))
    register(one)
    with TestClient(one), TestClient(two):
        for seq in (1, 2, 3):
            alarm(one, seq)
        wait_until(lambda: len(receiver.got) >= 12, 10, "three alarms escalated to the end")
        rounds = one.state.notify.rounds + two.state.notify.rounds
        wait_until(lambda: one.state.notify.rounds + two.state.notify.rounds >= rounds + 20, 5,
                   "more rounds of both")
    told = sorted((b["alarm_id"], b["step"]) for b in receiver.got)
    assert told == [(a, s) for a in (1, 2, 3) for s in range(4)]
    assert one.state.notify.rounds > 0 and two.state.notify.rounds > 0


def test_log_channel_writes_who_is_told(tmp_path: Path, port: int,
                                        caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(settings(tmp_path, port, notify_channels=["log"]))
    register(app)
    with TestClient(app):
        alarm(app, typ="security")
        wait_until(lambda: any("notify contact Wang" in r.getMessage() for r in caplog.records),
                   5, "the log line for the first contact")
    line = next(r.getMessage() for r in caplog.records if "notify contact" in r.getMessage())
    assert "13900000001" in line and "security alarm #1" in line


def test_a_slow_receiver_does_not_hold_up_other_alarms(app: FastAPI, port: int) -> None:
    receiver = Receiver(free_port(), slow={1: 1.5})
    app.state.notify.notifiers["webhook"].url = f"http://127.0.0.1:{receiver.port}/sms"
    try:
        r = TestClient(app).post("/api/v1/ingest", headers=AUTH,
                                 json=batch(event(1), event(2, typ="medical")))
        assert r.status_code == 200
        wait_until(lambda: len(receiver.got) >= 2, 5, "both alarms' first contacts")
        assert [b["alarm_id"] for b in receiver.got] == [2, 1]
    finally:
        receiver.close()
