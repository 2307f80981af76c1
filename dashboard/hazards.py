"""Electrical hazards: a sensor alarm of an electrical type opens a hazard
that stays open until an inspection marks it rectified (who, when, note).
The sensor's `restore` events (kind restore, same type as the alarm) attach
to the device's latest hazard of that type and show on it; a restore does
not close the hazard, only an inspection does.

The tables are declared here on the store's Base, so `create_tables`
creates them whenever this module is imported (ingest imports it).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from dashboard.db import begin_write
from dashboard.models import Alarm, Base, Device, Household, User
from dashboard.schemas import HazardState

log = logging.getLogger("homeguard.centre.hazards")

HAZARD_TYPES = ("residual_current", "over_temp", "over_current", "over_voltage",
                "under_voltage")
MAX_NOTE = 2000
# the community of a device in no household
UNASSIGNED = ""


class Hazard(Base):
    __tablename__ = "hazards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id"), unique=True)
    device_id: Mapped[str] = mapped_column(String(32), index=True)
    type: Mapped[str] = mapped_column(String(32))
    opened_ms: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)
    rectified_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    rectified_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rectify_note: Mapped[str] = mapped_column(Text, default="")


class HazardRestore(Base):
    """A sensor's restore event attached to its hazard."""

    __tablename__ = "hazard_restores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazards.id"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), unique=True)
    event_time_ms: Mapped[int] = mapped_column(BigInteger)


class HazardNotFound(LookupError):
    def __init__(self, hazard_id: int) -> None:
        super().__init__(f"no hazard {hazard_id}")
        self.hazard_id = hazard_id


class AlreadyRectified(Exception):
    def __init__(self, hazard_id: int, by: str | None) -> None:
        super().__init__(f"hazard {hazard_id} was already rectified by {by}")
        self.hazard_id, self.by = hazard_id, by


def on_event(session: Session, values: dict[str, Any], alarm: Alarm | None) -> None:
    """Ingest hook for one freshly stored event: opens or attaches."""
    if values["type"] not in HAZARD_TYPES:
        return
    if alarm is not None and values["kind"] == "alarm":
        session.add(Hazard(alarm_id=alarm.id, device_id=alarm.device_id, type=alarm.type,
                           opened_ms=values["received_ms"], state="open"))
    elif values["kind"] == "restore":
        _attach_restore(session, values)


def _attach_restore(session: Session, values: dict[str, Any]) -> None:
    hazard = session.scalar(
        select(Hazard).where(Hazard.device_id == values["device_id"],
                             Hazard.type == values["type"])
        .order_by(Hazard.id.desc()).limit(1))
    if hazard is None:
        log.warning("restore %s seq %d (%s) has no hazard to attach to: kept as an event only",
                    values["device_id"], values["seq"], values["type"])
        return
    session.add(HazardRestore(hazard_id=hazard.id, event_id=values["id"],
                              event_time_ms=values["event_time_ms"]))


def rectify(session: Session, hazard_id: int, user: User, note: str) -> Hazard:
    """Mark an open hazard rectified (the caller commits)."""
    begin_write(session)
    hazard = session.scalar(select(Hazard).where(Hazard.id == hazard_id).with_for_update())
    if hazard is None:
        raise HazardNotFound(hazard_id)
    if hazard.state == "rectified":
        raise AlreadyRectified(hazard_id, hazard.rectified_by)
    hazard.state, hazard.rectified_by = "rectified", user.username
    hazard.rectified_ms = time.time_ns() // 1_000_000
    hazard.rectify_note = note[:MAX_NOTE]
    session.flush()
    return hazard


def _located() -> Any:
    """Hazards with their household's community/compound (outer joins)."""
    return (select(Hazard, Household.community, Household.compound)
            .join(Device, Device.device_id == Hazard.device_id, isouter=True)
            .join(Household, Household.id == Device.household_id, isouter=True))


def listing(session: Session, state: str | None) -> list[dict[str, Any]]:
    """Hazards (open first, newest first) with their restores."""
    stmt = _located().order_by((Hazard.state == "open").desc(), Hazard.id.desc())
    if state is not None:
        stmt = stmt.where(Hazard.state == state)
    rows = session.execute(stmt.limit(1000)).all()
    restores: dict[int, list[int]] = {}
    ids = [h.id for h, _c, _p in rows]
    for r in session.scalars(select(HazardRestore).where(HazardRestore.hazard_id.in_(ids))
                             .order_by(HazardRestore.id)):
        restores.setdefault(r.hazard_id, []).append(r.event_time_ms)
    return [_row(h, c, p, restores.get(h.id, [])) for h, c, p in rows]


def _row(h: Hazard, community: str | None, compound: str | None,
         restores: list[int]) -> dict[str, Any]:
    return {
        "id": h.id, "alarm_id": h.alarm_id, "device_id": h.device_id, "type": h.type,
        "state": h.state, "opened_ms": h.opened_ms, "rectified_ms": h.rectified_ms,
        "rectified_by": h.rectified_by, "note": h.rectify_note,
        "community": community or UNASSIGNED, "compound": compound or "",
        "restored": bool(restores), "restore_times_ms": restores,
    }


def counts(session: Session) -> list[dict[str, Any]]:
    """Per community: warnings pushed (hazards opened), rectified, still open."""
    community = func.coalesce(Household.community, UNASSIGNED)
    stmt = (select(community, func.count(Hazard.id),
                   func.count(Hazard.rectified_ms))
            .select_from(Hazard)
            .join(Device, Device.device_id == Hazard.device_id, isouter=True)
            .join(Household, Household.id == Device.household_id, isouter=True)
            .group_by(community).order_by(community))
    return [{"community": c, "warnings": int(w), "rectified": int(r), "open": int(w - r)}
            for c, w, r in session.execute(stmt).all()]


def state_of(session: Session, alarm_id: int) -> HazardState | None:
    """The alarm's hazard with its restores, for the alarm detail; None if none."""
    h = session.scalar(select(Hazard).where(Hazard.alarm_id == alarm_id))
    if h is None:
        return None
    restores = session.scalars(select(HazardRestore.event_time_ms)
                               .where(HazardRestore.hazard_id == h.id)
                               .order_by(HazardRestore.event_time_ms))
    return HazardState(id=h.id, state=h.state, restores_ms=list(restores),
                       rectified_ms=h.rectified_ms, rectified_by=h.rectified_by)
