"""Device status from what gateways deliver: a registered device's row
(online, last heartbeat, battery, RSSI, outbox depth, firmware) follows its
heartbeats, its status messages (online / last-will offline) and the
gateway's supervision events, in the same transaction that stores them.
Events of unregistered devices change nothing here (the desk still shows
them as unregistered)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard import registry
from dashboard.models import Device
from dashboard.registry_schemas import StatusItem
from dashboard.schemas import EventCreate


def _item(ev: EventCreate) -> StatusItem | None:
    d: dict[str, Any] = ev.data
    if ev.kind == "heartbeat":
        return StatusItem(device=ev.device, at_ms=ev.event_time_ms, online=True,
                          battery_mv=_int(d.get("bat_mv"), 0, 100_000),
                          rssi=_int(d.get("rssi"), -200, 0),
                          outbox=_int(d.get("obx"), 0, 10_000_000),
                          fw=str(d["fw"])[:32] if isinstance(d.get("fw"), str) else None)
    if ev.kind in ("status", "supervision") and ev.type in ("online", "offline"):
        return StatusItem(device=ev.device, at_ms=ev.event_time_ms,
                          online=ev.type == "online")
    return None


def _int(v: Any, lo: int, hi: int) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi else None


def apply(session: Session, events: list[EventCreate], gateway: str) -> None:
    """Update the registered devices' status rows from a stored batch."""
    items = [i for i in map(_item, events) if i is not None]
    if not items:
        return
    known = set(session.scalars(select(Device.device_id).where(
        Device.device_id.in_({i.device for i in items}))))
    items = [i for i in items if i.device in known]
    if items:
        registry.apply_status(session, items, gateway)
