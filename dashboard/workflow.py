"""The alarm workflow: which action moves an alarm from which state, and
applying one with its audit row and its device feedback row (for a
device's own alarms only).  Supervision alarms that restore themselves are
closed by restore.py, not here.

    received --ack--> acknowledged --verify(genuine|false|test)--> verified
    verified --dispatch(grid_worker|patrol)--> dispatched  (genuine only;
    dispatched --dispatch--> dispatched                     sends one more)
    verified | dispatched --resolve--> resolved  (closed; no further action;
                                      optionally with the result it closes with)

A dispatch to the grid worker also goes to the phone of the worker account
of the alarm's grid cell (or of the worker named), worker.py; the worker's
own steps on it (accept, arrive, report) leave the alarm dispatched.  The
device hears `dispatched` when that worker accepts, not at the dispatch
(a dispatch to the patrol, or to a cell with no worker account: at once).

Every transition runs in one write transaction that locks the alarm row,
so two operators pressing "acknowledge" at once get one 200 and one 409.
The first action on an open alarm claims it for its operator (claims.py):
while it is held, another operator's action is refused (ClaimHeld).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard import claims, worker
from dashboard.db import begin_write
from dashboard.models import Alarm, AlarmAudit, Event, Feedback, User

OUTCOMES = ("genuine", "false", "test")
DISPATCH_TO = ("grid_worker", "patrol")
MAX_NOTE = 2000


@dataclass(frozen=True)
class Action:
    name: str
    permission: str
    to_state: str
    from_states: tuple[str, ...]
    # the `ack` type the device is sent, None when the device is not told
    feedback: str | None


ACTIONS = {
    a.name: a for a in (
        Action("ack", "alarm.ack", "acknowledged", ("received",), "acknowledged"),
        Action("verify", "alarm.verify", "verified", ("acknowledged",), None),
        Action("dispatch", "alarm.dispatch", "dispatched", ("verified", "dispatched"),
               "dispatched"),
        Action("resolve", "alarm.resolve", "resolved", ("verified", "dispatched"), "resolved"),
    )
}


class AlarmNotFound(LookupError):
    def __init__(self, alarm_id: int) -> None:
        super().__init__(f"no alarm {alarm_id}")
        self.alarm_id = alarm_id


class IllegalTransition(Exception):
    """The action does not apply to the alarm in its current state."""

    def __init__(self, alarm_id: int, action: str, state: str, outcome: str | None) -> None:
        self.alarm_id, self.action, self.state = alarm_id, action, state
        self.allowed = next_actions(state, outcome)
        nxt = ", ".join(f"{a} (-> {ACTIONS[a].to_state})" for a in self.allowed) or "none"
        why = ""
        if action == "dispatch" and state == "verified":
            why = f" (it was verified {outcome}; only genuine alarms are dispatched)"
        super().__init__(
            f"alarm {alarm_id} is {state}: cannot {action}{why}; allowed next: {nxt}")


def next_actions(state: str, outcome: str | None) -> list[str]:
    """Actions that apply to an alarm in this state (roles aside)."""
    return [
        a.name for a in ACTIONS.values()
        if state in a.from_states and not (a.name == "dispatch" and outcome != "genuine")
    ]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _stamp(alarm: Alarm, action: str, now: int, outcome: str | None, to: str | None) -> None:
    if action == "ack":
        alarm.acked_ms = now
    elif action == "verify":
        alarm.verified_ms, alarm.outcome = now, outcome
    elif action == "dispatch":
        alarm.dispatched_to = to
    elif action == "resolve":
        alarm.resolved_ms = now
        if outcome is not None:  # the result it closes with, when the operator gave one
            alarm.outcome = outcome


def apply(session: Session, alarm_id: int, action: str, user: User, *,
          outcome: str | None = None, to: str | None = None, note: str = "",
          worker_name: str | None = None, idle_ms: int = 2**62,
          released: list[tuple[Alarm, AlarmAudit]] | None = None,
          ) -> tuple[Alarm, AlarmAudit]:
    """Move the alarm on (the caller commits); AlarmNotFound, IllegalTransition,
    claims.ClaimHeld, worker.NoWorker (a dispatch to `worker_name`).  The user
    claims the alarm (or touches their claim); an idle claim of another
    (`idle_ms`) is released first, into `released`."""
    rule = ACTIONS[action]
    begin_write(session)
    now = _now_ms()
    claims.take(session, alarm_id, user, idle_ms, now, [] if released is None else released)
    alarm = session.scalar(select(Alarm).where(Alarm.id == alarm_id).with_for_update()
                           .execution_options(populate_existing=True))
    if alarm is None:
        raise AlarmNotFound(alarm_id)
    if action not in next_actions(alarm.state, alarm.outcome):
        raise IllegalTransition(alarm_id, action, alarm.state, alarm.outcome)
    if action == "dispatch":
        worker.assign(alarm, None if to != "grid_worker"
                      else worker.assignee(session, alarm, worker_name), now)
    audit = AlarmAudit(
        alarm_id=alarm.id, at_ms=now, user_id=user.id, username=user.username,
        action=action, from_state=alarm.state, to_state=rule.to_state,
        outcome=outcome if action in ("verify", "resolve") else None,
        dispatched_to=to if action == "dispatch" else None, note=note[:MAX_NOTE],
        claimed_by=alarm.claimed_by, worker=alarm.worker if action == "dispatch" else None,
    )
    _stamp(alarm, action, now, outcome, to)
    alarm.state = rule.to_state
    session.add(audit)
    # a dispatch to a worker's phone is not yet help on the way: the
    # household hears `dispatched` when the worker accepts (worker.step)
    if rule.feedback is not None and not (action == "dispatch" and alarm.worker is not None):
        tell_device(session, alarm, rule.feedback, now)
    session.flush()
    return alarm, audit


def tell_device(session: Session, alarm: Alarm, kind: str, now: int) -> None:
    """Queue the `ack` of this kind for the alarm's device, when it waits for one."""
    ev = session.get(Event, alarm.event_id)
    assert ev is not None  # alarms.event_id is a foreign key
    # a flooding fault (flood.py) is the centre's, raised on one of the
    # device's folded alarms: the device waits for nothing on it
    if device_waits(ev) and alarm.type == ev.type:
        session.add(_feedback(alarm, ev, kind, now))


def device_waits(ev: Event) -> bool:
    """Does a device wait for the operator's steps on this event?  Only for
    its own alarms: never for what a gateway originated (supervision, faults;
    negative seqs), so a device never gets an ack for a seq it did not send."""
    return ev.kind == "alarm" and ev.seq > 0


def _feedback(alarm: Alarm, ev: Event, kind: str, now: int) -> Feedback:
    return Feedback(alarm_id=alarm.id, device_id=ev.device_id, seq=ev.seq,
                    gateway=ev.gateway, type=kind, created_ms=now, delivered=False)
