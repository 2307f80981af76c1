"""Reading the alarm store, and turning rows into the API's Public models
and the live stream's items (one conversion for both)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

from sqlalchemy import Row, func, select, tuple_
from sqlalchemy.orm import Session

from dashboard import flood, hazards
from dashboard.live import LiveItem
from dashboard.models import OPEN_STATES, Alarm, AlarmAudit, Device, Event, GridCell, Household
from dashboard.registry import site_of
from dashboard.schemas import (
    AlarmDetail,
    AlarmPublic,
    AuditPublic,
    DeskCounts,
    DeskSite,
    EventPublic,
    FoldedPage,
    Repeat,
    Transition,
)
from dashboard.workflow import next_actions

_EVENT_COLUMNS = tuple(c.name for c in Event.__table__.columns)
_AUDIT_FIELDS = tuple(AuditPublic.model_fields)


def event_values(ev: Event) -> dict[str, Any]:
    return {name: getattr(ev, name) for name in _EVENT_COLUMNS}


def event_public(values: dict[str, Any]) -> EventPublic:
    fields = {k: v for k, v in values.items() if k != "device_id"}
    return EventPublic(device=values["device_id"], **fields)


def alarm_public(alarm: Alarm, values: dict[str, Any], count: int = 1) -> AlarmPublic:
    """The alarm with its event's `values` and its count (flood.count_folded)."""
    return AlarmPublic(
        id=alarm.id, event_id=values["id"], device=values["device_id"], seq=values["seq"],
        type=alarm.type, priority=alarm.priority, state=alarm.state, count=count,
        created_ms=alarm.created_ms, event_time_ms=values["event_time_ms"],
        device_time_ms=values["device_time_ms"], gateway_time_ms=values["gateway_time_ms"],
        received_ms=values["received_ms"], age_ms=values["age_ms"],
        skew_ms=values["skew_ms"], gateway=values["gateway"], data=values["data"],
        outcome=alarm.outcome, dispatched_to=alarm.dispatched_to, acked_ms=alarm.acked_ms,
        verified_ms=alarm.verified_ms, resolved_ms=alarm.resolved_ms,
        actions=next_actions(alarm.state, alarm.outcome),
        claimed_by=alarm.claimed_by, claimed_ms=alarm.claimed_ms,
        worker=alarm.worker, worker_step=alarm.worker_step, worker_ms=alarm.worker_ms,
    )


def audit_public(row: AlarmAudit) -> AuditPublic:
    return AuditPublic(**{name: getattr(row, name) for name in _AUDIT_FIELDS})


def live_item(values: dict[str, Any], alarm: Alarm | None, count: int = 1) -> LiveItem:
    """The stream message for one stored event: "alarm" when it raised one."""
    if alarm is not None:
        return LiveItem(values["id"], "alarm", alarm_public(alarm, values, count).model_dump())
    return LiveItem(values["id"], "event", event_public(values).model_dump())


def repeat_item(values: dict[str, Any], alarm: Alarm, count: int,
                fault: Alarm | None) -> LiveItem:
    """The stream message for an alarm event folded into `alarm` (flood.py),
    with the flooding fault it raised, if any."""
    ev = alarm.event
    msg = Repeat(alarm=alarm_public(alarm, event_values(ev), count),
                 event=event_public(values),
                 flooding=None if fault is None else alarm_public(fault, values))
    return LiveItem(values["id"], "repeat", msg.model_dump())


def transition_item(alarm: Alarm, ev: Event, audit: AlarmAudit, count: int = 1) -> LiveItem:
    """The stream message for one workflow transition (`count`: the alarm's,
    flood.count_folded)."""
    msg = Transition(alarm=alarm_public(alarm, event_values(ev), count),
                     audit=audit_public(audit))
    return LiveItem(audit.id, "transition", msg.model_dump(), cursor="audit")


# The desk's order: alarms nobody has acknowledged first, then the ones an
# operator is working; within each group by priority (1 most urgent), then
# the longest waiting (created_ms, id).  A row's place is its DeskKey
# (group, priority, created_ms, id); a page is the rows after a key.
DESK_GROUPS = (("received",), ("acknowledged", "verified", "dispatched"))
assert sorted(s for g in DESK_GROUPS for s in g) == sorted(OPEN_STATES)
DeskKey = tuple[int, int, int, int]
_GROUP_OF = {state: i for i, group in enumerate(DESK_GROUPS) for state in group}


def desk_key(alarm: Alarm) -> DeskKey:
    return (_GROUP_OF[alarm.state], alarm.priority, alarm.created_ms, alarm.id)


def desk_page(session: Session, after: DeskKey | None,
              limit: int) -> tuple[list[AlarmPublic], DeskKey | None]:
    """Up to `limit` open alarms in desk order after the key `after` (None:
    from the first), and the key to ask for the next page with (None when
    this page reaches the end).  Each state is read along ix_alarms_desk and
    the states of a group merged, so a page costs a few index range scans
    however many alarms are open."""
    rows: list[Row[Alarm, Event]] = []
    for group, states in enumerate(DESK_GROUPS):
        if after is not None and group < after[0]:
            continue
        start = after[1:] if after is not None and group == after[0] else None
        want = limit + 1 - len(rows)
        runs = [_state_rows(session, state, start, want) for state in states]
        rows.extend(islice(heapq.merge(*runs, key=lambda r: desk_key(r[0])), want))
        if len(rows) > limit:
            break
    more = len(rows) > limit
    del rows[limit:]
    counts = flood.counts_of(session, (alarm for alarm, _ in rows))
    page = [alarm_public(alarm, event_values(ev), counts.get(alarm.id, 1))
            for alarm, ev in rows]
    return page, desk_key(rows[-1][0]) if more and rows else None


def _state_rows(session: Session, state: str, after: tuple[int, ...] | None,
                limit: int) -> Sequence[Row[Alarm, Event]]:
    stmt = (select(Alarm, Event).join(Event, Alarm.event_id == Event.id)
            .where(Alarm.state == state)
            .order_by(Alarm.priority, Alarm.created_ms, Alarm.id).limit(limit))
    if after is not None:
        stmt = stmt.where(tuple_(Alarm.priority, Alarm.created_ms, Alarm.id) > tuple_(*after))
    return session.execute(stmt).all()


def desk_sites(session: Session, devices: Iterable[str]) -> dict[str, DeskSite]:
    """Where each device is, as a desk row shows it: one query joining the
    registry (device -> household -> grid cell) as registry.site_of does."""
    wanted = sorted(set(devices))
    if not wanted:
        return {}
    rows = session.execute(
        select(Device.device_id, Household.code, Household.address, Household.compound,
               Household.community, GridCell.code, GridCell.name)
        .outerjoin(Household, Device.household_id == Household.id)
        .outerjoin(GridCell, Household.grid_cell_id == GridCell.id)
        .where(Device.device_id.in_(wanted))).all()
    sites = {device: DeskSite(registered=False) for device in wanted}
    for device, code, address, compound, community, cell, cell_name in rows:
        sites[device] = DeskSite(
            registered=True, household=code,
            address=" ".join(p for p in (compound, address) if p) or None,
            community=community, grid_cell=cell, grid_name=cell_name)
    return sites


def open_alarms(session: Session, limit: int) -> list[AlarmPublic]:
    """The first `limit` open alarms in desk order."""
    return desk_page(session, None, limit)[0]


def desk_counts(session: Session) -> DeskCounts:
    """How many alarms are open, in all and per state: a COUNT in the store."""
    by_state = dict(session.execute(
        select(Alarm.state, func.count()).where(Alarm.state.in_(OPEN_STATES))
        .group_by(Alarm.state)).all())
    overdue = session.scalar(select(func.count()).select_from(Alarm).where(
        Alarm.state == "dispatched", Alarm.worker_step == "overdue"))
    return DeskCounts(open=sum(by_state.values()), worker_overdue=overdue or 0,
                      **{state: by_state.get(state, 0) for state in OPEN_STATES})


def alarm_detail(session: Session, alarm_id: int) -> AlarmDetail | None:
    row = session.execute(
        select(Alarm, Event).join(Event, Alarm.event_id == Event.id).where(Alarm.id == alarm_id)
    ).first()
    if row is None:
        return None
    audit = session.scalars(
        select(AlarmAudit).where(AlarmAudit.alarm_id == alarm_id).order_by(AlarmAudit.id))
    return AlarmDetail(alarm=alarm_public(row[0], event_values(row[1]),
                                          flood.count_folded(session, row[0])),
                       audit=[audit_public(a) for a in audit],
                       site=site_of(session, row[0].device_id),
                       hazard=hazards.state_of(session, alarm_id))


def recent_events(session: Session, device: str | None, limit: int) -> list[EventPublic]:
    stmt = select(Event).order_by(Event.id.desc()).limit(limit)
    if device is not None:
        stmt = stmt.where(Event.device_id == device)
    return [event_public(event_values(ev)) for ev in session.scalars(stmt)]


def folded_page(session: Session, alarm: Alarm, before: int | None,
                limit: int) -> FoldedPage:
    """The alarm events folded into the alarm, newest first, a page at a time."""
    events = flood.folded_events(session, alarm, before, limit + 1)
    more = len(events) > limit
    del events[limit:]
    return FoldedPage(count=flood.count_folded(session, alarm),
                      events=[event_public(event_values(ev)) for ev in events],
                      next=events[-1].id if more else None)


def items_after(session: Session, after_id: int, limit: int) -> list[LiveItem]:
    """Stored events with id > after_id in id order, as stream items (an
    alarm folded into another as a `repeat` of it as it is now)."""
    rows = session.execute(
        select(Event, Alarm)
        .outerjoin(Alarm, Alarm.event_id == Event.id)
        .where(Event.id > after_id)
        .order_by(Event.id)
        .limit(limit)
    ).all()
    folded = [ev for ev, own in rows
              if ev.kind == "alarm" and (own is None or own.type == flood.FLOODING)]
    into = flood.folded_into(session, folded) if folded else {}
    counts = flood.counts_of(session, [own for _, own in rows if own is not None])
    counts.update((a.id, flood.count_folded(session, a))
                  for a in set(into.values()) if a.id not in counts)
    items = []
    for ev, own in rows:
        target = into.get(ev.id)
        if target is None:
            items.append(live_item(event_values(ev), own, counts.get(own.id, 1) if own else 1))
        else:
            items.append(repeat_item(event_values(ev), target, counts[target.id], own))
    return items


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
    counts = flood.counts_of(session, {alarm for _, alarm, _ in rows})
    return [transition_item(alarm, ev, audit, counts.get(alarm.id, 1))
            for audit, alarm, ev in rows]


def last_event_id(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(Event.id), 0))) or 0)


def last_audit_id(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(AlarmAudit.id), 0))) or 0)
