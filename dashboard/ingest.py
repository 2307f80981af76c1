"""Storing a validated batch from a gateway: one transaction, idempotent on
(device, seq) through the UNIQUE constraint, so two racing deliveries of
the same event store it once and the loser reports "duplicate".  In the
same transaction: the desk alarms it opens (or, for a flooding device, the
open alarm it is folded into: flood.py), the supervision alarms it
restores (restore.py), hazards and device status."""

from __future__ import annotations

import logging
from typing import Any, Literal

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from dashboard import devstatus, hazards, restore
from dashboard.db import begin_write
from dashboard.flood import FLOODING, OFF, Flood, FloodRule
from dashboard.live import LiveItem
from dashboard.models import Alarm, Event
from dashboard.queries import live_item, repeat_item
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
    "seq_conflict": 4, FLOODING: 4, "data_lost": 4, "disk_low": 4, "shedding": 4,
    "manual": 5, "auto": 5,
}
DEFAULT_PRIORITY = 4


def _insert_ignoring_duplicates(session: Session, table: Table) -> ReturningInsert[Any]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id for the session's
    database, its values given when executed (one statement, compiled once)."""
    name = session.get_bind().dialect.name
    module: Any = {"sqlite": sqlite, "postgresql": postgresql}.get(name)
    if module is None:
        raise RuntimeError(f"ingest needs INSERT ... ON CONFLICT; {name} is not supported")
    stmt = module.insert(table).on_conflict_do_nothing(index_elements=["device_id", "seq"])
    return stmt.returning(table.c.id)  # type: ignore[no-any-return]


def store_batch(
    session: Session, batch: IngestBatch, received_ms: int, rule: FloodRule = OFF,
) -> tuple[list[IngestResult], list[LiveItem]]:
    """Insert every event not stored before; returns one result per input
    event in order and the live items to publish once the caller commits.
    `rule`: flood control's (FloodRule.of(settings)); off by default."""
    begin_write(session)
    insert_event = _insert_ignoring_duplicates(session, Event.__table__)  # type: ignore[arg-type]
    restores = restore.Restores(session, {ev.device for ev in batch.events})
    flood = Flood(session, rule)
    results: list[IngestResult] = []
    fresh: list[LiveItem] = []
    stored: list[EventCreate] = []
    for ev in batch.events:
        values = _event_values(ev, batch.gateway, received_ms)
        event_id = session.execute(insert_event, values).scalar_one_or_none()
        if event_id is None:
            status = _duplicate_or_conflict(session, ev)
            if status == "conflict":
                log.error("conflict %s seq %d from %s: the store holds other content under "
                          "this identity; not stored", ev.device, ev.seq, batch.gateway)
            else:
                log.info("duplicate %s seq %d from %s ignored", ev.device, ev.seq,
                         batch.gateway)
            results.append(IngestResult(device=ev.device, seq=ev.seq, status=status))
            continue
        results.append(IngestResult(device=ev.device, seq=ev.seq, status="accepted"))
        values["id"] = event_id
        alarm, item = _desk(session, flood, values)
        hazards.on_event(session, values, alarm)  # opens or attaches to a hazard
        fresh.append(item)
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
SUPERVISION_ALARMS = ("offline", "gateway_offline", "link_lost", "seq_conflict",
                      "data_lost", "disk_low", "shedding")


def is_alarm(kind: str, typ: str) -> bool:
    """Events that open a desk alarm."""
    return kind == "alarm" or (kind == "supervision" and typ in SUPERVISION_ALARMS)


def _duplicate_or_conflict(session: Session, ev: EventCreate) -> Literal[
        "duplicate", "conflict"]:
    """The identity (device, seq) is stored: the same event again is a
    duplicate; other content (kind, type, device time, data) is a conflict,
    never silently taken for the stored one (docs/protocol.md, Identity)."""
    row = session.execute(
        select(Event.kind, Event.type, Event.device_time_ms, Event.data)
        .where(Event.device_id == ev.device, Event.seq == ev.seq)).one_or_none()
    if row is None or tuple(row) == (ev.kind, ev.type, ev.device_time_ms, ev.data):
        return "duplicate"
    return "conflict"


def _event_values(ev: EventCreate, gateway: str, received_ms: int) -> dict[str, Any]:
    values = ev.model_dump(exclude={"device"})
    values.update(device_id=ev.device, gateway=gateway, received_ms=received_ms)
    return values


def _desk(session: Session, flood: Flood, values: dict[str, Any]
          ) -> tuple[Alarm | None, LiveItem]:
    """The stored event's desk alarm (None: it opens none, or it was folded
    into an open one) and its live item."""
    if not is_alarm(values["kind"], values["type"]):
        return None, live_item(values, None)
    into = flood.fold_into(values)
    if into is not None:
        count, fault = flood.fold(into, values, PRIORITY[FLOODING])
        if fault is not None:
            log.warning("device %s is flooding: alarms over %d per %.0f s are folded into "
                        "its open alarms (flooding alarm %d)", values["device_id"],
                        flood.rule.alarms, flood.rule.window_ms / 1000, fault.id)
        return None, repeat_item(values, into, count, fault)
    alarm = _store_alarm(session, values)
    flood.opened(alarm)
    return alarm, live_item(values, alarm)


def _priority(values: dict[str, Any]) -> int:
    """The desk priority of a stored event's alarm: its type's; a gateway's
    `seq_conflict` fault that carries an alarm this centre answered `conflict`
    for (its kind, type and data: docs/centre.md) is as urgent as that alarm,
    so a refused fire is on the desk first, not behind the faults."""
    own = PRIORITY.get(values["type"], DEFAULT_PRIORITY)
    data = values["data"] or {}
    if values["type"] == "seq_conflict" and data.get("kind") == "alarm":
        return min(own, PRIORITY.get(str(data.get("type")), DEFAULT_PRIORITY))
    return own


def _store_alarm(session: Session, values: dict[str, Any]) -> Alarm:
    alarm = Alarm(
        event_id=values["id"], device_id=values["device_id"], type=values["type"],
        priority=_priority(values), state="received",
        created_ms=values["received_ms"],
    )
    session.add(alarm)
    session.flush()
    return alarm
