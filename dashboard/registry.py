"""The device registry: grid cells, households with their contacts, devices
and their keys, and an alarm's site (the status gateways report is applied
in devstatus.py).

Functions take an open Session and leave the commit to the caller (the
route).  Adding a code or id that exists raises `Duplicate`, naming an
unknown one raises `NotFound`; both carry what they are about.  Rows are
returned as the API's Public models (registry_schemas.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard.models import (
    OPEN_STATES,
    Alarm,
    Contact,
    Device,
    DeviceKey,
    GridCell,
    Household,
)
from dashboard.registry_schemas import (
    ContactIn,
    ContactPublic,
    DeviceCreate,
    DevicePublic,
    DeviceUpdate,
    GridCellCreate,
    GridCellPublic,
    GridCellUpdate,
    HouseholdCreate,
    HouseholdPublic,
    HouseholdUpdate,
    KeyExport,
    Site,
    SiteCell,
)


class RegistryError(Exception):
    """Something the registry refused; str() is the message for the client."""


class NotFound(RegistryError):
    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"no {kind} {key!r}")
        self.kind, self.key = kind, key


class Duplicate(RegistryError):
    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} exists already")
        self.kind, self.key = kind, key


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- grid cells ---


def cell_public(c: GridCell) -> GridCellPublic:
    return GridCellPublic(code=c.code, name=c.name, community=c.community,
                          worker_name=c.worker_name, worker_phone=c.worker_phone,
                          polygon=json.loads(c.polygon) if c.polygon else None)


def polygon_text(points: list[tuple[float, float]] | None) -> str | None:
    """A grid cell's outline as stored: compact JSON, the ring left open."""
    if not points:
        return None
    ring = [[lon, lat] for lon, lat in points]
    if len(ring) > 3 and ring[0] == ring[-1]:
        ring.pop()
    return json.dumps(ring, separators=(",", ":"))


def _cell(session: Session, code: str) -> GridCell:
    cell = session.scalar(select(GridCell).where(GridCell.code == code))
    if cell is None:
        raise NotFound("grid cell", code)
    return cell


def list_cells(session: Session) -> list[GridCellPublic]:
    return [cell_public(c) for c in session.scalars(select(GridCell).order_by(GridCell.code))]


def add_cell(session: Session, body: GridCellCreate) -> GridCellPublic:
    if session.scalar(select(GridCell.id).where(GridCell.code == body.code)) is not None:
        raise Duplicate("grid cell", body.code)
    cell = GridCell(**body.model_dump(exclude={"polygon"}), polygon=polygon_text(body.polygon))
    session.add(cell)
    session.flush()
    return cell_public(cell)


def update_cell(session: Session, code: str, body: GridCellUpdate) -> GridCellPublic:
    cell = _cell(session, code)
    changes = body.model_dump(exclude_none=True)
    if changes.get("code", code) != code and session.scalar(
            select(GridCell.id).where(GridCell.code == changes["code"])) is not None:
        raise Duplicate("grid cell", changes["code"])
    if "polygon" in body.model_fields_set:
        changes["polygon"] = polygon_text(body.polygon)
    _assign(cell, changes)
    session.flush()
    return cell_public(cell)


def delete_cell(session: Session, code: str) -> None:
    """Its households stay, without a grid cell."""
    session.delete(_cell(session, code))
    session.flush()


# --- households ---


def _contacts(rows: Iterable[Contact]) -> list[ContactPublic]:
    return [ContactPublic(name=c.name, phone=c.phone, email=c.email, relation=c.relation,
                          rank=c.rank) for c in sorted(rows, key=lambda c: c.rank)]


def household_public(session: Session, h: Household) -> HouseholdPublic:
    cell = session.get(GridCell, h.grid_cell_id) if h.grid_cell_id is not None else None
    devices = session.scalars(select(Device.device_id).where(Device.household_id == h.id)
                              .order_by(Device.device_id))
    return HouseholdPublic(
        code=h.code, address=h.address, compound=h.compound, community=h.community,
        grid_cell=cell.code if cell else None, note=h.note,
        contacts=_contacts(h.contacts), devices=list(devices),
        latitude=h.latitude, longitude=h.longitude)


def _household(session: Session, code: str) -> Household:
    h = session.scalar(select(Household).where(Household.code == code))
    if h is None:
        raise NotFound("household", code)
    return h


def list_households(session: Session) -> list[HouseholdPublic]:
    rows = session.scalars(select(Household).order_by(Household.code))
    return [household_public(session, h) for h in rows]


def get_household(session: Session, code: str) -> HouseholdPublic:
    return household_public(session, _household(session, code))


def _new_contacts(contacts: list[ContactIn]) -> list[Contact]:
    return [Contact(name=c.name, phone=c.phone, email=c.email, relation=c.relation,
                    rank=c.rank) for c in contacts]


def add_household(session: Session, body: HouseholdCreate) -> HouseholdPublic:
    if session.scalar(select(Household.id).where(Household.code == body.code)) is not None:
        raise Duplicate("household", body.code)
    fields = body.model_dump(exclude={"contacts", "grid_cell"})
    h = Household(**fields, contacts=_new_contacts(body.contacts))
    h.grid_cell_id = _cell(session, body.grid_cell).id if body.grid_cell else None
    session.add(h)
    session.flush()
    return household_public(session, h)


def update_household(session: Session, code: str, body: HouseholdUpdate) -> HouseholdPublic:
    h = _household(session, code)
    changes = body.model_dump(exclude_none=True, exclude={"contacts", "grid_cell"})
    changes.update(body.place_changes())
    if changes.get("code", code) != code and session.scalar(
            select(Household.id).where(Household.code == changes["code"])) is not None:
        raise Duplicate("household", changes["code"])
    if body.grid_cell is not None:
        h.grid_cell_id = _cell(session, body.grid_cell).id if body.grid_cell else None
    if body.contacts is not None:
        h.contacts.clear()
        session.flush()  # the old rows go before new ones take their ranks
        h.contacts.extend(_new_contacts(body.contacts))
    _assign(h, changes)
    session.flush()
    return household_public(session, h)


def delete_household(session: Session, code: str) -> None:
    """Its contacts go with it; its devices stay, unassigned."""
    session.delete(_household(session, code))
    session.flush()


# --- devices and keys ---


def _device_rows(session: Session, device_id: str | None = None) -> list[Any]:
    stmt = (select(Device, Household.code, DeviceKey.device_id)
            .outerjoin(Household, Device.household_id == Household.id)
            .outerjoin(DeviceKey, DeviceKey.device_id == Device.device_id)
            .order_by(Device.device_id))
    if device_id is not None:
        stmt = stmt.where(Device.device_id == device_id)
    return list(session.execute(stmt).all())


def _device_public(d: Device, household: str | None, key: str | None,
                   open_alarms: list[str]) -> DevicePublic:
    return DevicePublic(
        device_id=d.device_id, type=d.type, board=d.board, firmware=d.firmware,
        household=household, key_ref=d.key_ref, has_key=key is not None,
        created_ms=d.created_ms, online=d.online, last_seen_ms=d.last_seen_ms,
        last_heartbeat_ms=d.last_heartbeat_ms, battery_mv=d.battery_mv, rssi=d.rssi,
        outbox_depth=d.outbox_depth, open_alarms=open_alarms,
        latitude=d.latitude, longitude=d.longitude)


def _open_alarms(session: Session, device_id: str | None = None) -> dict[str, list[str]]:
    """device id -> types of its open alarms, oldest first."""
    stmt = (select(Alarm.device_id, Alarm.type).where(Alarm.state.in_(OPEN_STATES))
            .order_by(Alarm.id))
    if device_id is not None:
        stmt = stmt.where(Alarm.device_id == device_id)
    out: dict[str, list[str]] = {}
    for dev, typ in session.execute(stmt):
        out.setdefault(dev, []).append(typ)
    return out


def list_devices(session: Session) -> list[DevicePublic]:
    alarms = _open_alarms(session)
    return [_device_public(d, household, key, alarms.get(d.device_id, []))
            for d, household, key in _device_rows(session)]


def get_device(session: Session, device_id: str) -> DevicePublic:
    rows = _device_rows(session, device_id)
    if not rows:
        raise NotFound("device", device_id)
    d, household, key = rows[0]
    return _device_public(d, household, key, _open_alarms(session, device_id).get(device_id, []))


def _device(session: Session, device_id: str) -> Device:
    d = session.get(Device, device_id)
    if d is None:
        raise NotFound("device", device_id)
    return d


def add_device(session: Session, body: DeviceCreate) -> DevicePublic:
    if session.get(Device, body.device_id) is not None:
        raise Duplicate("device", body.device_id)
    d = Device(**body.model_dump(exclude={"household"}), created_ms=now_ms())
    d.household_id = _household(session, body.household).id if body.household else None
    session.add(d)
    session.flush()
    return get_device(session, d.device_id)


def update_device(session: Session, device_id: str, body: DeviceUpdate) -> DevicePublic:
    d = _device(session, device_id)
    if body.household is not None:
        d.household_id = _household(session, body.household).id if body.household else None
    _assign(d, body.model_dump(exclude_none=True, exclude={"household"}) | body.place_changes())
    session.flush()
    return get_device(session, device_id)


def delete_device(session: Session, device_id: str) -> None:
    """Its key goes with it (the next full key export no longer has it)."""
    key = session.get(DeviceKey, device_id)
    if key is not None:
        session.delete(key)
    session.delete(_device(session, device_id))
    session.flush()


def set_key(session: Session, device_id: str, key_hex: str) -> int:
    """Store the device's HMAC key; returns its updated_ms, which is later
    than every other key's, so an export after any earlier one includes it."""
    _device(session, device_id)
    newest = session.scalar(select(func.max(DeviceKey.updated_ms))) or 0
    at = max(now_ms(), newest + 1)
    row = session.get(DeviceKey, device_id)
    if row is None:
        session.add(DeviceKey(device_id=device_id, key_hex=key_hex.lower(), updated_ms=at))
    else:
        row.key_hex, row.updated_ms = key_hex.lower(), at
    session.flush()
    return at


def export_keys(session: Session, after_ms: int) -> KeyExport:
    """Keys set after after_ms; updated_ms is the newest (after_ms when none)."""
    rows = session.execute(select(DeviceKey.device_id, DeviceKey.key_hex)
                           .where(DeviceKey.updated_ms > after_ms)
                           .order_by(DeviceKey.device_id)).all()
    newest = session.scalar(select(func.max(DeviceKey.updated_ms))
                            .where(DeviceKey.updated_ms > after_ms))
    ids = session.scalars(select(DeviceKey.device_id).order_by(DeviceKey.device_id))
    return KeyExport(keys={d: k for d, k in rows}, updated_ms=int(newest or after_ms),
                     device_ids=list(ids))


# --- an alarm's site ---


def site_of(session: Session, device_id: str) -> Site:
    """The household, grid cell and contacts behind a device (joined through
    Device.household_id); registered=False for a device not in the registry."""
    row = session.execute(
        select(Device, Household, GridCell)
        .outerjoin(Household, Device.household_id == Household.id)
        .outerjoin(GridCell, Household.grid_cell_id == GridCell.id)
        .where(Device.device_id == device_id)).first()
    if row is None:
        return Site(registered=False)
    device, h, cell = row
    site = Site(registered=True, device_type=device.type)
    if h is None:
        return site
    site.household, site.address, site.compound = h.code, h.address, h.compound
    site.community, site.contacts = h.community, _contacts(h.contacts)
    if cell is not None:
        site.grid_cell = SiteCell(code=cell.code, name=cell.name, worker_name=cell.worker_name,
                                  worker_phone=cell.worker_phone)
    return site


def _assign(row: Any, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(row, name, value)
