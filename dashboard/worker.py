"""The grid worker's tasks: an alarm dispatched to the grid worker goes to
the phone of the worker account of its grid cell (users.grid_cell), who
takes it through their steps, each an `alarm_audit` row of their own that
leaves the alarm dispatched (the desk resolves it):

    assigned --accept--> accepted --arrive--> arrived --report--> reported
    assigned --(no accept within worker_accept_s)--> overdue --accept--> accepted

`overdue` is recorded by the centre's account (action `overdue`), so every
desk sees it live and re-dispatches.  A re-dispatch assigns afresh; a
dispatch to the patrol takes the task off the worker's phone.

The button's `dispatched` feedback (help on the way) goes when the worker
accepts, not when the desk dispatches to their phone; it stays `dispatched`
through the later steps: the device protocol (docs/protocol.md) has no
state for arrived.
"""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard import claims
from dashboard.db import begin_write
from dashboard.models import Alarm, AlarmAudit, Device, GridCell, Household, User
from dashboard.roles import allowed

ASSIGNED, OVERDUE, ACCEPTED, ARRIVED, REPORTED = (
    "assigned", "overdue", "accepted", "arrived", "reported")
STEPS = (ASSIGNED, OVERDUE, ACCEPTED, ARRIVED, REPORTED)
# action -> (the steps it applies in, the step after it)
ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "accept": ((ASSIGNED, OVERDUE), ACCEPTED),
    "arrive": ((ACCEPTED,), ARRIVED),
    "report": ((ARRIVED,), REPORTED),
}
OVERDUE_ACTION = "overdue"
MAX_NOTE = 2000


class NoWorker(ValueError):
    """The named user cannot take grid worker tasks."""


class TaskNotFound(LookupError):
    """No open task of this worker for this alarm."""

    def __init__(self, alarm_id: int, username: str) -> None:
        super().__init__(f"alarm {alarm_id} is not a task of {username} (any more)")


class IllegalStep(Exception):
    """The step does not follow the task's current one."""

    def __init__(self, alarm_id: int, action: str, step: str | None) -> None:
        self.step = step
        self.allowed = next_steps(step)
        super().__init__(f"task {alarm_id} is {step}: cannot {action}; "
                         f"allowed next: {', '.join(self.allowed) or 'none'}")


def next_steps(step: str | None) -> list[str]:
    return [name for name, (froms, _to) in ACTIONS.items() if step in froms]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _cell_of(session: Session, device_id: str) -> str | None:
    return session.scalar(
        select(GridCell.code).join(Household, Household.grid_cell_id == GridCell.id)
        .join(Device, Device.household_id == Household.id)
        .where(Device.device_id == device_id))


def assignee(session: Session, alarm: Alarm, named: str | None) -> User | None:
    """The worker a grid worker dispatch goes to: `named`, or else the
    (first, by username) active grid worker of the alarm's grid cell; None
    when the cell has no worker account.  NoWorker when `named` cannot take it."""
    if named is not None:
        user = session.scalar(select(User).where(User.username == named))
        if user is None or not user.active or not allowed(user.role, "task.work"):
            raise NoWorker(f"{named!r} is not an active grid worker account")
        return user
    cell = _cell_of(session, alarm.device_id)
    if cell is None:
        return None
    return session.scalar(
        select(User).where(User.grid_cell == cell, User.role == "grid_worker",
                           User.active.is_(True)).order_by(User.username).limit(1))


def assign(alarm: Alarm, worker: User | None, now: int) -> None:
    """Give the dispatched alarm to the worker (None: to no worker's phone)."""
    alarm.worker = None if worker is None else worker.username
    alarm.worker_step = None if worker is None else ASSIGNED
    alarm.worker_ms = None if worker is None else now


def _audit(alarm: Alarm, user: User, action: str, now: int, outcome: str | None,
           note: str) -> AlarmAudit:
    return AlarmAudit(alarm_id=alarm.id, at_ms=now, user_id=user.id, username=user.username,
                      action=action, from_state=alarm.state, to_state=alarm.state,
                      outcome=outcome, dispatched_to=None, note=note[:MAX_NOTE],
                      claimed_by=alarm.claimed_by, worker=alarm.worker)


def step(session: Session, alarm_id: int, user: User, action: str, *,
         outcome: str | None = None, note: str = "") -> tuple[Alarm, AlarmAudit]:
    """The worker's step on their task (the caller commits and publishes);
    TaskNotFound, IllegalStep."""
    froms, to = ACTIONS[action]
    begin_write(session)
    alarm = session.scalar(select(Alarm).where(Alarm.id == alarm_id).with_for_update()
                           .execution_options(populate_existing=True))
    if alarm is None or alarm.state != "dispatched" or alarm.worker != user.username:
        raise TaskNotFound(alarm_id, user.username)
    if alarm.worker_step not in froms:
        raise IllegalStep(alarm_id, action, alarm.worker_step)
    now = now_ms()
    audit = _audit(alarm, user, action, now, outcome if action == "report" else None, note)
    alarm.worker_step, alarm.worker_ms = to, now
    session.add(audit)
    if to == ACCEPTED:
        from dashboard.workflow import tell_device  # workflow imports this module

        tell_device(session, alarm, "dispatched", now)
    session.flush()
    return alarm, audit


def mark_overdue(session: Session, accept_ms: int, now: int) -> list[tuple[Alarm, AlarmAudit]]:
    """Mark every task assigned longer than accept_ms ago and not accepted
    overdue, audited by the centre's account (in the caller's write transaction)."""
    from dashboard.restore import system_user  # the account restore.py records under

    late = list(session.scalars(
        select(Alarm).where(Alarm.state == "dispatched", Alarm.worker_step == ASSIGNED,
                            Alarm.worker_ms < now - accept_ms)
        .order_by(Alarm.id).with_for_update()))
    if not late:
        return []
    system = system_user(session)
    changed = []
    for alarm in late:
        audit = _audit(alarm, system, OVERDUE_ACTION, now, None,
                       f"not accepted within {accept_ms // 1000} s")
        alarm.worker_step, alarm.worker_ms = OVERDUE, now
        session.add(audit)
        changed.append((alarm, audit))
    return changed


def tasks_of(session: Session, username: str) -> list[Alarm]:
    """The worker's open tasks, the most urgent first, then the oldest."""
    return list(session.scalars(
        select(Alarm).where(Alarm.worker == username, Alarm.state == "dispatched")
        .order_by(Alarm.priority, Alarm.created_ms, Alarm.id)))


class OverdueSweep(claims.Sweep):
    """Marks tasks not accepted within accept_s overdue (claims.Sweep)."""

    def __init__(self, accept_s: float) -> None:
        super().__init__(accept_s)
        self.accept_ms = int(accept_s * 1000)

    def pending(self, session: Session, now: int) -> bool:
        late = select(Alarm.id).where(Alarm.state == "dispatched", Alarm.worker_step == ASSIGNED,
                                      Alarm.worker_ms < now - self.accept_ms).limit(1)
        return session.scalar(late) is not None

    def record(self, session: Session, now: int) -> list[tuple[Alarm, AlarmAudit]]:
        return mark_overdue(session, self.accept_ms, now)
