"""One operator per alarm: the claim.

An operator's first workflow action on an open alarm (normally `ack`, the
taking) claims it: `alarms.claimed_by` is set by a conditional UPDATE
(... WHERE claimed_by IS NULL), so of two operators racing for one alarm
the database lets exactly one win.  While it is held, other operators'
actions on it are refused (`ClaimHeld`, a 409); a supervisor or admin
reassigns it (`reassign`, to someone or to nobody).  A claim ends with the
alarm, when its holder logs out (`release_user`), and when its holder has
not acted on it for `claim_idle_s` (`release_idle`; an idle claim no longer
holds even before that release is recorded).  The centre's background task
(`sweep_forever`, started by app.py) records those releases whether or not
a desk is open; open desk streams sweep too, through the same `IdleSweep`.

A dispatched alarm keeps its claim however long it waits: its holder sent
the grid worker or a patrol and is waiting on them, which takes as long as
the way there, and nobody else should pick it up meanwhile.  It is still
released when the holder logs out, by the holder, and by a supervisor.

Every change of holder is an `alarm_audit` row (action `reassign` or
`release`, `claimed_by` = the holder after it; a taking is the action's own
row), so it reaches every desk as a live `transition`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session, sessionmaker

from dashboard.db import begin_write
from dashboard.live import Hub, LiveItem
from dashboard.models import OPEN_STATES, Alarm, AlarmAudit, Event, User
from dashboard.roles import allowed

log = logging.getLogger("homeguard.centre.claims")

# why a claim was released (alarm_audit.note of a `release` row)
LOGOUT, IDLE, BY_HOLDER = "logout", "idle", "released"


class ClaimHeld(Exception):
    """Another operator holds the alarm."""

    def __init__(self, alarm_id: int, holder: str) -> None:
        super().__init__(
            f"alarm {alarm_id} is being handled by {holder}: only they act on it, unless a "
            "supervisor reassigns it (POST /api/v1/alarms/{id}/reassign)")
        self.alarm_id, self.holder = alarm_id, holder


class NotAssignable(ValueError):
    """The user an alarm was to be given to cannot take it."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Taken:
    """What `take` found: the alarm was claimed just now, or held already."""

    new: bool


# states whose claim is never released for idleness: the holder is waiting
# on the grid worker or patrol they dispatched
WAITING_STATES = ("dispatched",)


def _expired(idle_ms: int, now: int) -> ColumnElement[bool]:
    return (Alarm.claim_seen_ms < now - idle_ms) & Alarm.state.not_in(WAITING_STATES)


def take(session: Session, alarm_id: int, user: User, idle_ms: int, now: int,
         released: list[tuple[Alarm, AlarmAudit]]) -> Taken | None:
    """Claim the alarm for `user` within the caller's write transaction, or
    touch the claim they hold.  None when the alarm is not open (or not
    there: the caller tells which).  ClaimHeld when someone else holds it.
    An idle claim of another is released first (its row added to `released`)."""
    released.extend(release_idle(session, idle_ms, now, alarm_id=alarm_id))
    free = (update(Alarm)
            .where(Alarm.id == alarm_id, Alarm.state.in_(OPEN_STATES),
                   Alarm.claimed_by.is_(None))
            .values(claimed_by=user.username, claimed_ms=now, claim_seen_ms=now))
    if session.execute(free).rowcount == 1:  # type: ignore[attr-defined]
        return Taken(new=True)
    mine = (update(Alarm)
            .where(Alarm.id == alarm_id, Alarm.state.in_(OPEN_STATES),
                   Alarm.claimed_by == user.username)
            .values(claim_seen_ms=now))
    if session.execute(mine).rowcount == 1:  # type: ignore[attr-defined]
        return Taken(new=False)
    row = session.execute(select(Alarm.state, Alarm.claimed_by)
                          .where(Alarm.id == alarm_id)).first()
    if row is not None and row.state in OPEN_STATES and row.claimed_by is not None:
        raise ClaimHeld(alarm_id, row.claimed_by)
    return None


def _release(session: Session, alarm: Alarm, by: User, action: str, to: str | None,
             note: str, now: int) -> AlarmAudit:
    audit = AlarmAudit(alarm_id=alarm.id, at_ms=now, user_id=by.id, username=by.username,
                       action=action, from_state=alarm.state, to_state=alarm.state,
                       outcome=None, dispatched_to=None, note=note, claimed_by=to)
    alarm.claimed_by = to
    alarm.claimed_ms = alarm.claim_seen_ms = None if to is None else now
    session.add(audit)
    return audit


def release_idle(session: Session, idle_ms: int, now: int,
                 alarm_id: int | None = None) -> list[tuple[Alarm, AlarmAudit]]:
    """Release every open alarm's claim (or this alarm's) whose holder has
    not acted on it for idle_ms, audited by the system account."""
    from dashboard.restore import system_user  # the account restore.py records under

    stmt = (select(Alarm).where(Alarm.state.in_(OPEN_STATES), Alarm.claimed_by.is_not(None),
                                _expired(idle_ms, now))
            .order_by(Alarm.id).with_for_update())
    if alarm_id is not None:
        stmt = stmt.where(Alarm.id == alarm_id)
    alarms = list(session.scalars(stmt))
    if not alarms:
        return []
    system = system_user(session)
    return [(a, _release(session, a, system, "release", None, IDLE, now)) for a in alarms]


def release_user(session: Session, user: User, note: str = LOGOUT,
                 ) -> list[tuple[Alarm, AlarmAudit]]:
    """Release every open alarm the user holds (they logged out)."""
    now = now_ms()
    alarms = session.scalars(
        select(Alarm).where(Alarm.state.in_(OPEN_STATES), Alarm.claimed_by == user.username)
        .order_by(Alarm.id).with_for_update())
    return [(a, _release(session, a, user, "release", None, note, now)) for a in alarms]


def release_on_logout(session: Session, hub: Hub, user: User) -> int:
    """Release and publish what the user holds (in a write transaction of its own)."""
    session.commit()
    begin_write(session)
    released = release_user(session, user)
    commit_and_publish(session, hub, released)
    return len(released)


def reassign(session: Session, alarm: Alarm, by: User, to: User | None,
             note: str) -> AlarmAudit:
    """Give the open alarm to `to` (None: to nobody), whoever holds it."""
    if to is not None and not (to.active and allowed(to.role, "alarm.ack")):
        raise NotAssignable(f"{to.username} cannot take alarms (inactive or role {to.role})")
    return _release(session, alarm, by, "reassign", None if to is None else to.username,
                    note, now_ms())


def release(session: Session, alarm: Alarm, holder: User, note: str) -> AlarmAudit:
    """The holder lets the open alarm go; another operator may take it."""
    return _release(session, alarm, holder, "release", None, note or BY_HOLDER, now_ms())


def commit_and_publish(session: Session, hub: Hub,
                       changed: list[tuple[Alarm, AlarmAudit]]) -> None:
    """Commit the releases and put them on the live stream, in commit order."""
    from dashboard import flood
    from dashboard.queries import transition_item

    session.flush()
    items: list[LiveItem] = []
    for alarm, audit in changed:
        ev = session.get(Event, alarm.event_id)
        assert ev is not None  # alarms.event_id is a foreign key
        items.append(transition_item(alarm, ev, audit, flood.count_folded(session, alarm)))
    with hub.ordered():
        session.commit()
        hub.publish(items)


class Sweep:
    """A sweep over the store for what a time limit of `limit_s` made due,
    run at most every `every_s` (a tenth of the limit, 1-30 s): the live
    streams call `due()` as they run, and the first one due sweeps.  A sweep
    says whether anything is due (`pending`, a read) and records it (`record`,
    in a write transaction); `run` commits that and puts it on the stream."""

    def __init__(self, limit_s: float) -> None:
        self.every_s = max(1.0, min(30.0, limit_s / 10))
        self._next = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.every_s
        return True

    def pending(self, session: Session, now: int) -> bool:
        raise NotImplementedError

    def record(self, session: Session, now: int) -> list[tuple[Alarm, AlarmAudit]]:
        raise NotImplementedError

    def run(self, session: Session, hub: Hub) -> int:
        now = now_ms()
        if not self.pending(session, now):  # the common case: no write lock taken
            return 0
        session.commit()
        begin_write(session)
        changed = self.record(session, now)
        if not changed:
            session.rollback()
            return 0
        commit_and_publish(session, hub, changed)
        return len(changed)


class IdleSweep(Sweep):
    """Records the release of claims idle for longer than idle_s."""

    def __init__(self, idle_s: float) -> None:
        super().__init__(idle_s)
        self.idle_ms = int(idle_s * 1000)

    def pending(self, session: Session, now: int) -> bool:
        idle = select(Alarm.id).where(Alarm.state.in_(OPEN_STATES), Alarm.claimed_by.is_not(None),
                                      _expired(self.idle_ms, now)).limit(1)
        return session.scalar(idle) is not None

    def record(self, session: Session, now: int) -> list[tuple[Alarm, AlarmAudit]]:
        return release_idle(session, self.idle_ms, now)


def sweep_once(sessions: sessionmaker[Session], hub: Hub, sweep: IdleSweep) -> int:
    with sessions() as session:
        released = sweep.run(session, hub)
    if released:
        log.info("released %d idle alarm claim(s)", released)
    return released


async def sweep_forever(sessions: sessionmaker[Session], hub: Hub, sweep: IdleSweep,
                        stop: asyncio.Event) -> None:
    """The centre's background task: idle claims are released (and every
    desk told) even while no desk is open, until `stop` is set.  A sweep
    that fails (the store away) is logged and tried again next time."""
    while not stop.is_set():
        if sweep.due():
            try:
                await asyncio.to_thread(sweep_once, sessions, hub, sweep)
            except Exception:  # noqa: BLE001 - the next sweep tries again
                log.exception("could not release idle alarm claims")
        try:
            await asyncio.wait_for(stop.wait(), timeout=sweep.every_s)
        except TimeoutError:
            pass
