"""Storing a validated batch from a gateway: one transaction, idempotent on
(device, seq) through the UNIQUE constraint, so two racing deliveries of
the same event store it once and the loser reports "duplicate".  In the
same transaction: the desk alarms it opens, the supervision alarms it
restores (restore.py), hazards and device status."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dashboard import devstatus, hazards, restore
from dashboard.db import begin_write
from dashboard.live import LiveItem
from dashboard.models import Alarm, Event
from dashboard.queries import live_item
from dashboard.schemas import EventCreate, IngestBatch, IngestResult

log = logging.getLogger("homeguard.centre.ingest")

# alarm type -> desk priority, 1 most urgent: fire; people in danger;
# electrical hazards; supervision and faults; tests.  Unknown types get
# DEFAULT_PRIORITY (with the supervision/fault group).
PRIORITY = {
    "fire": 1,
    "medical": 2, "security": 2, "panic": 2,
    "residual_current": 3, "over_temp": 3, "over_current": 3,
    "over_voltage": 3, "under_voltage": 3,
    "tamper": 4, "low_battery": 4, "offline": 4, "gateway_offline": 4, "link_lost": 4,
    "seq_conflict": 4,
    "manual": 5, "auto": 5,
}
DEFAULT_PRIORITY = 4


def _insert_ignoring_duplicates(session: Session, table: Table) -> Callable[..., Insert]:
    """INSERT ... ON CONFLICT DO NOTHING for the session's database."""
    name = session.get_bind().dialect.name
    module: Any = {"sqlite": sqlite, "postgresql": postgresql}.get(name)
    if module is None:
        raise RuntimeError(f"ingest needs INSERT ... ON CONFLICT; {name} is not supported")

    def build(**values: Any) -> Insert:
        stmt = module.insert(table).values(**values)
        return stmt.on_conflict_do_nothing(index_elements=["device_id", "seq"])

    return build


def store_batch(
    session: Session, batch: IngestBatch, received_ms: int
) -> tuple[list[IngestResult], list[LiveItem]]:
    """Insert every event not stored before; returns one result per input
    event in order and the live items to publish once the caller commits."""
    begin_write(session)
    insert_event = _insert_ignoring_duplicates(session, Event.__table__)  # type: ignore[arg-type]
    restores = restore.Restores(session, {ev.device for ev in batch.events})
    results: list[IngestResult] = []
    fresh: list[LiveItem] = []
    stored: list[EventCreate] = []
    for ev in batch.events:
        values = _event_values(ev, batch.gateway, received_ms)
        stmt = insert_event(**values).returning(Event.__table__.c.id)
        event_id = session.execute(stmt).scalar_one_or_none()
        if event_id is None:
            log.info("duplicate %s seq %d from %s ignored", ev.device, ev.seq, batch.gateway)
            results.append(IngestResult(device=ev.device, seq=ev.seq, status="duplicate"))
            continue
        results.append(IngestResult(device=ev.device, seq=ev.seq, status="accepted"))
        values["id"] = event_id
        alarm = _store_alarm(session, values) if is_alarm(ev.kind, ev.type) else None
        hazards.on_event(session, values, alarm)  # opens or attaches to a hazard
        fresh.append(live_item(values, alarm))
        restores.heard(values)
        if alarm is not None:
            restores.opened(alarm, values)
        stored.append(ev)
    devstatus.apply(session, stored, batch.gateway)
    return results, fresh + restores.items()


# a gateway's supervision events that need an operator: a device gone silent
# (or its last will), a gateway that lost its broker or its devices' link
# (these three restore themselves, restore.py), and a device fault: a seq
# reused for other content (closed by an operator)
SUPERVISION_ALARMS = ("offline", "gateway_offline", "link_lost", "seq_conflict")


def is_alarm(kind: str, typ: str) -> bool:
    """Events that open a desk alarm."""
    return kind == "alarm" or (kind == "supervision" and typ in SUPERVISION_ALARMS)


def _event_values(ev: EventCreate, gateway: str, received_ms: int) -> dict[str, Any]:
    values = ev.model_dump(exclude={"device"})
    values.update(device_id=ev.device, gateway=gateway, received_ms=received_ms)
    return values


def _store_alarm(session: Session, values: dict[str, Any]) -> Alarm:
    alarm = Alarm(
        event_id=values["id"], device_id=values["device_id"], type=values["type"],
        priority=PRIORITY.get(values["type"], DEFAULT_PRIORITY), state="received",
        created_ms=values["received_ms"],
    )
    session.add(alarm)
    session.flush()
    return alarm
