"""Device status from what gateways deliver: a registered device's row
(online, last heartbeat, battery, RSSI, outbox depth, firmware) follows its
heartbeats, its status messages (online / last-will offline) and the
gateway's supervision events, in the same transaction that stores them.
Events of unregistered devices change nothing here (the desk still shows
them as unregistered)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.models import Device
from dashboard.registry_schemas import StatusItem, StatusResult
from dashboard.schemas import EventCreate

log = logging.getLogger("homeguard.centre.devstatus")


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
        apply_status(session, items, gateway)


def apply_status(session: Session, items: list[StatusItem], gateway: str) -> StatusResult:
    """Apply each item in time order unless the device holds a newer one;
    unknown devices are reported, never created."""
    ids = {i.device for i in items}
    devices = {d.device_id: d for d in
               session.scalars(select(Device).where(Device.device_id.in_(ids)))}
    updated: dict[str, None] = {}
    stale: dict[str, None] = {}
    unknown: dict[str, None] = {}
    for item in sorted(items, key=lambda i: i.at_ms):
        d = devices.get(item.device)
        if d is None:
            unknown[item.device] = None
        elif d.last_seen_ms is not None and item.at_ms < d.last_seen_ms:
            stale[item.device] = None
        else:
            _apply(d, item)
            updated[item.device] = None
    session.flush()
    if unknown or stale:
        log.warning("status from %s: %d unknown devices %s, %d stale items ignored",
                    gateway, len(unknown), sorted(unknown)[:10], len(stale))
    return StatusResult(updated=list(updated), stale=[s for s in stale if s not in updated],
                        unknown=list(unknown))


def _apply(d: Device, item: StatusItem) -> None:
    d.last_seen_ms = item.at_ms
    if item.heartbeat():
        d.last_heartbeat_ms = item.at_ms
    # a heartbeat is a sign of life unless the item says otherwise
    online = item.online if item.online is not None else (True if item.heartbeat() else None)
    if online is not None:
        d.online = online
    for field, value in (("battery_mv", item.battery_mv), ("rssi", item.rssi),
                         ("outbox_depth", item.outbox), ("firmware", item.fw)):
        if value is not None:
            setattr(d, field, value)
