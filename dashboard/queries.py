"""Reading the alarm store, and turning rows into the API's Public models
and the live stream's items (one conversion for both)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard.live import LiveItem
from dashboard.models import OPEN_STATES, Alarm, Event
from dashboard.schemas import AlarmPublic, EventPublic

_EVENT_COLUMNS = tuple(c.name for c in Event.__table__.columns)


def event_values(ev: Event) -> dict[str, Any]:
    return {name: getattr(ev, name) for name in _EVENT_COLUMNS}


def event_public(values: dict[str, Any]) -> EventPublic:
    fields = {k: v for k, v in values.items() if k != "device_id"}
    return EventPublic(device=values["device_id"], **fields)


def alarm_public(alarm: Alarm, values: dict[str, Any]) -> AlarmPublic:
    return AlarmPublic(
        id=alarm.id, event_id=values["id"], device=values["device_id"], seq=values["seq"],
        type=alarm.type, priority=alarm.priority, state=alarm.state,
        created_ms=alarm.created_ms, event_time_ms=values["event_time_ms"],
        device_time_ms=values["device_time_ms"], gateway_time_ms=values["gateway_time_ms"],
        received_ms=values["received_ms"], age_ms=values["age_ms"],
        skew_ms=values["skew_ms"], gateway=values["gateway"], data=values["data"],
    )


def live_item(values: dict[str, Any], alarm: Alarm | None) -> LiveItem:
    """The stream message for one stored event: "alarm" when it raised one."""
    if alarm is not None:
        return LiveItem(values["id"], "alarm", alarm_public(alarm, values).model_dump())
    return LiveItem(values["id"], "event", event_public(values).model_dump())


def open_alarms(session: Session, limit: int) -> list[AlarmPublic]:
    """Open alarms, the latest to arrive first."""
    rows = session.execute(
        select(Alarm, Event)
        .join(Event, Alarm.event_id == Event.id)
        .where(Alarm.state.in_(OPEN_STATES))
        .order_by(Alarm.id.desc())
        .limit(limit)
    ).all()
    return [alarm_public(alarm, event_values(ev)) for alarm, ev in rows]


def recent_events(session: Session, device: str | None, limit: int) -> list[EventPublic]:
    stmt = select(Event).order_by(Event.id.desc()).limit(limit)
    if device is not None:
        stmt = stmt.where(Event.device_id == device)
    return [event_public(event_values(ev)) for ev in session.scalars(stmt)]


def items_after(session: Session, after_id: int, limit: int) -> list[LiveItem]:
    """Stored events with id > after_id in id order, as stream items."""
    rows = session.execute(
        select(Event, Alarm)
        .outerjoin(Alarm, Alarm.event_id == Event.id)
        .where(Event.id > after_id)
        .order_by(Event.id)
        .limit(limit)
    ).all()
    return [live_item(event_values(ev), alarm) for ev, alarm in rows]


def last_event_id(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(Event.id), 0))) or 0)
