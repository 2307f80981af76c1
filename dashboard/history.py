"""History: stored alarms (closed and open) found by time, type, place,
device, operator and outcome, a page at a time with the true total, and
the same rows for CSV export.

A page is read newest first along (created_ms, id) and the next page asks
for the rows before the last one's key (keyset paging), so page 5,000 costs
what page 1 does.  The total is a COUNT with the same filters.  Place
filters (community, compound, grid cell, household) go through the
registry as it is now: an alarm is found under the household its device
belongs to today.  The operator filter finds alarms any step of which that
operator took (the audit trail).

The indexes these queries need are declared here, beside them, and made by
revision 0006 (dashboard/migrations/versions/0006_history_indexes.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Index, Row, func, or_, select, tuple_
from sqlalchemy.orm import Session

from dashboard.models import OPEN_STATES, Alarm, AlarmAudit, Device, Event, GridCell, Household

# what revision 0006 makes: one (filter column, created_ms, id) index per
# main filter, so each filter reads its rows newest first without a sort;
# migrate.metadata() imports this module so the comparison sees them
INDEXES = (
    Index("ix_alarms_created", Alarm.created_ms, Alarm.id),
    Index("ix_alarms_type_created", Alarm.type, Alarm.created_ms, Alarm.id),
    Index("ix_alarms_device_created", Alarm.device_id, Alarm.created_ms, Alarm.id),
    Index("ix_alarms_outcome_created", Alarm.outcome, Alarm.created_ms, Alarm.id),
    Index("ix_alarms_state_created", Alarm.state, Alarm.created_ms, Alarm.id),
    Index("ix_alarm_audit_username", AlarmAudit.username, AlarmAudit.alarm_id),
)

STATUSES = ("any", "open", "closed")
# an alarm nobody verified has no outcome: the filter calls that "none"
OUTCOMES = ("genuine", "false", "test", "none")
Key = tuple[int, int]


@dataclass(frozen=True)
class Filters:
    """What to look for; None or empty means any.  Times are the centre's
    receipt time (created_ms): since inclusive, until exclusive."""

    since_ms: int | None = None
    until_ms: int | None = None
    types: tuple[str, ...] = ()
    status: str = "any"
    outcomes: tuple[str, ...] = ()
    community: str | None = None
    compound: str | None = None
    grid_cell: str | None = None
    household: str | None = None
    device: str | None = None
    operator: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {self.status!r}")
        bad = [o for o in self.outcomes if o not in OUTCOMES]
        if bad:
            raise ValueError(f"outcome must be among {', '.join(OUTCOMES)}, not {bad}")


@dataclass(frozen=True)
class Steps:
    """Who took each step of an alarm and when (the first of each action)."""

    acked_by: str | None = None
    verified_by: str | None = None
    dispatched_by: str | None = None
    dispatched_ms: int | None = None
    resolved_by: str | None = None


def conditions(f: Filters) -> list[ColumnElement[bool]]:
    """The WHERE clauses of the filters, on the alarms table alone (places
    and operators as IN (subquery), which the planner turns into a semi-join)."""
    where: list[ColumnElement[bool]] = []
    if f.since_ms is not None:
        where.append(Alarm.created_ms >= f.since_ms)
    if f.until_ms is not None:
        where.append(Alarm.created_ms < f.until_ms)
    if f.types:
        where.append(Alarm.type.in_(f.types))
    if f.status == "open":
        where.append(Alarm.state.in_(OPEN_STATES))
    elif f.status == "closed":
        where.append(Alarm.state == "resolved")
    if f.outcomes:
        named = [o for o in f.outcomes if o != "none"]
        parts = [Alarm.outcome.in_(named)] if named else []
        if "none" in f.outcomes:
            parts.append(Alarm.outcome.is_(None))
        where.append(or_(*parts))
    if f.device:
        where.append(Alarm.device_id == f.device)
    place = place_devices(f.community, f.compound, f.grid_cell, f.household)
    if place is not None:
        where.append(Alarm.device_id.in_(place))
    if f.operator:
        where.append(Alarm.id.in_(
            select(AlarmAudit.alarm_id).where(AlarmAudit.username == f.operator)))
    return where


def place_devices(community: str | None, compound: str | None, grid_cell: str | None,
                  household: str | None) -> Any:
    """The SELECT of the devices of the households that match these place
    filters, or None when there is none (also for history_events.py)."""
    if not (community or compound or grid_cell or household):
        return None
    stmt = select(Device.device_id).join(Household, Device.household_id == Household.id)
    if community:
        stmt = stmt.where(Household.community == community)
    if compound:
        stmt = stmt.where(Household.compound == compound)
    if household:
        stmt = stmt.where(Household.code == household)
    if grid_cell:
        stmt = stmt.join(GridCell, Household.grid_cell_id == GridCell.id).where(
            GridCell.code == grid_cell)
    return stmt


def page_query(f: Filters, before: Key | None, limit: int) -> Any:
    """The SELECT of one page (exposed for the query-plan test)."""
    stmt = (select(Alarm, Event).join(Event, Alarm.event_id == Event.id)
            .where(*conditions(f))
            .order_by(Alarm.created_ms.desc(), Alarm.id.desc()).limit(limit))
    if before is not None:
        stmt = stmt.where(tuple_(Alarm.created_ms, Alarm.id) < tuple_(*before))
    return stmt


def count_query(f: Filters) -> Any:
    return select(func.count()).select_from(Alarm).where(*conditions(f))


def total(session: Session, f: Filters) -> int:
    return int(session.scalar(count_query(f)) or 0)


def keyset(session: Session, stmt: Any, limit: int,
           key: Callable[[Any], Key]) -> tuple[list[Any], Key | None]:
    """The rows of `stmt` (which asks for limit + 1), the first `limit` of
    them, and the key of the next page: that of the last row kept, when
    there are more (None on the last page)."""
    rows = list(session.execute(stmt).all())
    more = len(rows) > limit
    del rows[limit:]
    return rows, key(rows[-1]) if more and rows else None


def page(session: Session, f: Filters, before: Key | None,
         limit: int) -> tuple[Sequence[Row[Alarm, Event]], Key | None]:
    """Up to `limit` alarms newest first before `before`, and the key of the
    next page (None on the last)."""
    return keyset(session, page_query(f, before, limit + 1), limit,
                  lambda row: (row[0].created_ms, row[0].id))


Pager = Callable[[Session, Any, Key | None, int], tuple[Sequence[Any], Key | None]]


def batches(session: Session, f: Any, size: int = 1000, read: Pager = page,
            ) -> Iterator[Sequence[Any]]:
    """Every row `read` finds with the filters (alarms by default; events
    with history_events.page), newest first, `size` at a time; each batch is
    read in its own short transaction, so an export never holds one open."""
    before: Key | None = None
    while True:
        rows, before = read(session, f, before, size)
        session.commit()
        if rows:
            yield rows
        if before is None:
            return


def places_of(session: Session, devices: set[str]) -> dict[str, dict[str, str]]:
    """Household code, community, compound and grid cell of each device."""
    if not devices:
        return {}
    rows = session.execute(
        select(Device.device_id, Household.code, Household.community, Household.compound,
               GridCell.code)
        .join(Household, Device.household_id == Household.id)
        .outerjoin(GridCell, Household.grid_cell_id == GridCell.id)
        .where(Device.device_id.in_(devices))).all()
    return {d: {"household": h, "community": c, "compound": p or "", "grid_cell": g or ""}
            for d, h, c, p, g in rows}


def steps_of(session: Session, alarm_ids: list[int]) -> dict[int, Steps]:
    """Who acknowledged, verified, dispatched and resolved each alarm."""
    if not alarm_ids:
        return {}
    rows = session.execute(
        select(AlarmAudit.alarm_id, AlarmAudit.action, AlarmAudit.username, AlarmAudit.at_ms)
        .where(AlarmAudit.alarm_id.in_(alarm_ids)).order_by(AlarmAudit.id)).all()
    found: dict[int, dict[str, Any]] = {}
    for alarm_id, action, who, at in rows:
        got = found.setdefault(alarm_id, {})
        if action == "dispatch":
            got.setdefault("dispatched_ms", at)
        name = {"ack": "acked_by", "verify": "verified_by", "dispatch": "dispatched_by",
                "resolve": "resolved_by", "restore": "resolved_by"}.get(action)
        if name is not None:
            got.setdefault(name, who)
    return {alarm_id: Steps(**got) for alarm_id, got in found.items()}
