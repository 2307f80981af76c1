"""Reading the alarm store, and turning rows into the API's Public models
and the live stream's items (one conversion for both)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard import hazards
from dashboard.live import LiveItem
from dashboard.models import OPEN_STATES, Alarm, AlarmAudit, Event
from dashboard.registry import site_of
from dashboard.schemas import AlarmDetail, AlarmPublic, AuditPublic, EventPublic, Transition
from dashboard.workflow import next_actions

_EVENT_COLUMNS = tuple(c.name for c in Event.__table__.columns)
_AUDIT_FIELDS = tuple(AuditPublic.model_fields)


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
        outcome=alarm.outcome, dispatched_to=alarm.dispatched_to, acked_ms=alarm.acked_ms,
        verified_ms=alarm.verified_ms, resolved_ms=alarm.resolved_ms,
        actions=next_actions(alarm.state, alarm.outcome),
    )


def audit_public(row: AlarmAudit) -> AuditPublic:
    return AuditPublic(**{name: getattr(row, name) for name in _AUDIT_FIELDS})


def live_item(values: dict[str, Any], alarm: Alarm | None) -> LiveItem:
    """The stream message for one stored event: "alarm" when it raised one."""
    if alarm is not None:
        return LiveItem(values["id"], "alarm", alarm_public(alarm, values).model_dump())
    return LiveItem(values["id"], "event", event_public(values).model_dump())


def transition_item(alarm: Alarm, ev: Event, audit: AlarmAudit) -> LiveItem:
    """The stream message for one workflow transition."""
    msg = Transition(alarm=alarm_public(alarm, event_values(ev)), audit=audit_public(audit))
    return LiveItem(audit.id, "transition", msg.model_dump(), cursor="audit")


def open_alarms(session: Session, limit: int) -> list[AlarmPublic]:
    """Open alarms in desk order: most urgent first, then the longest waiting."""
    rows = session.execute(
        select(Alarm, Event)
        .join(Event, Alarm.event_id == Event.id)
        .where(Alarm.state.in_(OPEN_STATES))
        .order_by(Alarm.priority, Alarm.created_ms, Alarm.id)
        .limit(limit)
    ).all()
    return [alarm_public(alarm, event_values(ev)) for alarm, ev in rows]


def alarm_detail(session: Session, alarm_id: int) -> AlarmDetail | None:
    row = session.execute(
        select(Alarm, Event).join(Event, Alarm.event_id == Event.id).where(Alarm.id == alarm_id)
    ).first()
    if row is None:
        return None
    audit = session.scalars(
        select(AlarmAudit).where(AlarmAudit.alarm_id == alarm_id).order_by(AlarmAudit.id))
    return AlarmDetail(alarm=alarm_public(row[0], event_values(row[1])),
                       audit=[audit_public(a) for a in audit],
                       site=site_of(session, row[0].device_id),
                       hazard=hazards.state_of(session, alarm_id))


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


def transitions_after(session: Session, after_id: int, limit: int) -> list[LiveItem]:
    """Audit rows with id > after_id in id order, as stream items (each with
    its alarm as it is now)."""
    rows = session.execute(
        select(AlarmAudit, Alarm, Event)
        .join(Alarm, AlarmAudit.alarm_id == Alarm.id)
        .join(Event, Alarm.event_id == Event.id)
        .where(AlarmAudit.id > after_id)
        .order_by(AlarmAudit.id)
        .limit(limit)
    ).all()
    return [transition_item(alarm, ev, audit) for audit, alarm, ev in rows]


def last_event_id(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(Event.id), 0))) or 0)


def last_audit_id(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(AlarmAudit.id), 0))) or 0)
