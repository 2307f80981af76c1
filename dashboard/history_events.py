"""Event history: the stored events that are not alarms and that an
operator looks back for (restores, cancels, tests, faults and the gateways'
supervision events; not heartbeats, telemetry or status, which are many
and read elsewhere) found by time, kind, type, place and device, a page at
a time with the true total, and the same rows for CSV export.

As history.py does for alarms: newest first along (received_ms, id), the
centre's receipt time, keyset pages, a COUNT with the same filters, places
through the registry as it is now.  Both indexes cover these kinds only
(partial indexes), so the many heartbeats are never read: one for the time
range alone (any kind and type filter read along it), one for a device.
Revision 0010 makes them (dashboard/migrations/versions/0010_event_history.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Index, func, select, text, tuple_
from sqlalchemy.orm import Session

from dashboard import history
from dashboard.models import Event

KINDS = ("restore", "cancel", "test", "fault", "supervision")
# the partial indexes' condition, as SQL both databases read the same
KINDS_SQL = "kind IN ('restore', 'cancel', 'test', 'fault', 'supervision')"
INDEXES = (
    Index("ix_events_history", Event.received_ms, Event.id,
          sqlite_where=text(KINDS_SQL), postgresql_where=text(KINDS_SQL)),
    Index("ix_events_history_device", Event.device_id, Event.received_ms, Event.id,
          sqlite_where=text(KINDS_SQL), postgresql_where=text(KINDS_SQL)),
)


@dataclass(frozen=True)
class Filters:
    """What to look for; None or empty means any.  Times are the centre's
    receipt time (received_ms): since inclusive, until exclusive."""

    since_ms: int | None = None
    until_ms: int | None = None
    kinds: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    community: str | None = None
    compound: str | None = None
    grid_cell: str | None = None
    household: str | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in KINDS]
        if bad:
            raise ValueError(f"kind must be among {', '.join(KINDS)}, not {bad}")


def conditions(f: Filters) -> list[ColumnElement[bool]]:
    # the kinds as the indexes' condition says them, so the planner uses them
    where: list[ColumnElement[bool]] = [text(KINDS_SQL)]  # type: ignore[list-item]
    if f.kinds:
        where.append(Event.kind.in_(f.kinds))
    if f.types:
        where.append(Event.type.in_(f.types))
    if f.since_ms is not None:
        where.append(Event.received_ms >= f.since_ms)
    if f.until_ms is not None:
        where.append(Event.received_ms < f.until_ms)
    if f.device:
        where.append(Event.device_id == f.device)
    place = history.place_devices(f.community, f.compound, f.grid_cell, f.household)
    if place is not None:
        where.append(Event.device_id.in_(place))
    return where


def page_query(f: Filters, before: history.Key | None, limit: int) -> Any:
    """The SELECT of one page (exposed for the query-plan test)."""
    stmt = (select(Event).where(*conditions(f))
            .order_by(Event.received_ms.desc(), Event.id.desc()).limit(limit))
    if before is not None:
        stmt = stmt.where(tuple_(Event.received_ms, Event.id) < tuple_(*before))
    return stmt


def total(session: Session, f: Filters) -> int:
    return int(session.scalar(select(func.count()).select_from(Event).where(*conditions(f)))
               or 0)


def page(session: Session, f: Filters, before: history.Key | None,
         limit: int) -> tuple[Sequence[Any], history.Key | None]:
    """Up to `limit` events newest first before `before`, and the key of the
    next page (None on the last)."""
    return history.keyset(session, page_query(f, before, limit + 1), limit,
                          lambda row: (row[0].received_ms, row[0].id))
