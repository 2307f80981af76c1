"""Supervision alarms that restore themselves (SIA style): an `offline`,
`gateway_offline` or `link_lost` alarm is closed by the centre when its
device (or gateway) is heard from again: the gateway's `online` for it, or
any message of the device but its last will, received by a gateway no
earlier than the alarm's event was raised.

The alarm goes to `resolved` with an audit row by the system account
(SYSTEM_USER, which cannot log in), action `restore`, the note naming what
restored it; ingest publishes the transition on the live stream after its
commit, like an operator's. An alarm whose restore reached the centre
first (two gateways of a share group deliver on their own) is closed as
soon as it is stored.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dashboard.live import LiveItem
from dashboard.models import OPEN_STATES, Alarm, AlarmAudit, Event, User
from dashboard.queries import transition_item

log = logging.getLogger("homeguard.centre.restore")

RESTORABLE = ("offline", "gateway_offline", "link_lost")
# the account automatic transitions are recorded under: not a valid login name
# (dashboard/users.py USERNAME), so no operator can ever be it
SYSTEM_USER = "(system)"
SYSTEM_ROLE = "system"
# earlier events of a device looked at when its supervision alarm is stored
RECENT = 50


def restores(kind: str, typ: str) -> bool:
    """Does this event show its device (or gateway) is there?"""
    if kind == "supervision":
        return typ == "online"
    return not (kind == "status" and typ == "offline")


def system_user(session: Session) -> User:
    user = session.scalar(select(User).where(User.username == SYSTEM_USER))
    if user is not None:
        return user
    user = User(username=SYSTEM_USER, password_hash="!", role=SYSTEM_ROLE,
                display_name="Homeguard", active=False, created_ms=_now_ms())
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:  # another transaction made it first
        user = session.scalars(select(User).where(User.username == SYSTEM_USER)).one()
    return user


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Restores:
    """One ingest batch's restores: open restorable alarms of its devices,
    closed as the batch's events (in order) show their devices back."""

    def __init__(self, session: Session, devices: set[str]) -> None:
        self.session = session
        self.open: dict[str, list[tuple[Alarm, int]]] = {}  # device -> (alarm, raised at)
        self.closed: list[tuple[Alarm, AlarmAudit]] = []
        self._user: User | None = None
        if devices:
            rows = session.execute(
                select(Alarm, Event.gateway_time_ms)
                .join(Event, Alarm.event_id == Event.id)
                .where(Alarm.device_id.in_(devices), Alarm.type.in_(RESTORABLE),
                       Alarm.state.in_(OPEN_STATES))
                .order_by(Alarm.id).with_for_update(of=Alarm))
            for alarm, at in rows:
                self.open.setdefault(alarm.device_id, []).append((alarm, at))

    def opened(self, alarm: Alarm, values: dict[str, Any]) -> None:
        """A restorable alarm was just stored (values: its event)."""
        if alarm.type not in RESTORABLE:
            return
        later = self._heard_after(values)
        if later is not None:
            self._close(alarm, later)
        else:
            self.open.setdefault(alarm.device_id, []).append(
                (alarm, values["gateway_time_ms"]))

    def heard(self, values: dict[str, Any]) -> None:
        """An event was just stored: close what it restores."""
        if not restores(values["kind"], values["type"]):
            return
        waiting = self.open.get(values["device_id"])
        if not waiting:
            return
        keep = []
        for alarm, at in waiting:
            if values["gateway_time_ms"] >= at:
                self._close(alarm, values)
            else:
                keep.append((alarm, at))
        self.open[values["device_id"]] = keep

    def items(self) -> list[LiveItem]:
        """The transitions for the live stream (after flushing their audit rows)."""
        if not self.closed:
            return []
        self.session.flush()
        out = []
        for alarm, audit in self.closed:
            ev = self.session.get(Event, alarm.event_id)
            assert ev is not None  # alarms.event_id is a foreign key
            out.append(transition_item(alarm, ev, audit))
        return out

    def _heard_after(self, values: dict[str, Any]) -> dict[str, Any] | None:
        """A restoring event of the device stored before this one but
        received later (another gateway's delivery came first)."""
        rows = self.session.execute(
            select(Event.kind, Event.type, Event.seq, Event.gateway, Event.gateway_time_ms)
            .where(Event.device_id == values["device_id"], Event.id < values["id"])
            .order_by(Event.id.desc()).limit(RECENT))
        for kind, typ, seq, gateway, at in rows:
            if at >= values["gateway_time_ms"] and restores(kind, typ):
                return {"kind": kind, "type": typ, "seq": seq, "gateway": gateway,
                        "device_id": values["device_id"]}
        return None

    def _close(self, alarm: Alarm, by: dict[str, Any]) -> None:
        if self._user is None:
            self._user = system_user(self.session)
        user = self._user
        now = _now_ms()
        note = f"restored: {by['kind']} {by['type']} seq {by['seq']} via {by['gateway']}"
        audit = AlarmAudit(alarm_id=alarm.id, at_ms=now, user_id=user.id,
                           username=user.username, action="restore", from_state=alarm.state,
                           to_state="resolved", outcome=None, dispatched_to=None, note=note)
        alarm.state, alarm.resolved_ms = "resolved", now
        self.session.add(audit)
        self.closed.append((alarm, audit))
        log.info("alarm %d (%s %s) %s", alarm.id, alarm.type, alarm.device_id, note)
