"""What the /map page draws (docs/map.md): grid cells with an outline,
households and devices with coordinates, and open alarms placed at their
device (its own coordinates, else its household's).

An open alarm whose device has no place is counted (`unplaced`), never
dropped silently; past MAX_ALARMS the most urgent are placed and the rest
counted (`not_shown`), so `open` is always the true number.
"""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard.models import OPEN_STATES, Alarm, Device, GridCell, Household
from dashboard.registry import cell_public

MAX_ALARMS = 2000


class MapCell(BaseModel):
    code: str
    name: str
    community: str
    worker_name: str
    worker_phone: str
    polygon: list[tuple[float, float]]


class MapHousehold(BaseModel):
    code: str
    address: str
    compound: str
    community: str
    grid_cell: str | None
    latitude: float
    longitude: float
    devices: list[str]


class MapDevice(BaseModel):
    """A device with coordinates of its own (one without is at its household)."""

    device_id: str
    type: str
    household: str | None
    online: bool | None
    latitude: float
    longitude: float


class MapAlarm(BaseModel):
    id: int
    device_id: str
    type: str
    priority: int
    state: str
    created_ms: int
    household: str | None
    address: str | None
    latitude: float
    longitude: float


class MapAlarms(BaseModel):
    alarms: list[MapAlarm]
    open: int
    unplaced: int
    not_shown: int


class MapData(BaseModel):
    cells: list[MapCell]
    households: list[MapHousehold]
    devices: list[MapDevice]
    alarms: MapAlarms


def cells(session: Session) -> list[MapCell]:
    rows = session.scalars(select(GridCell).where(GridCell.polygon.is_not(None))
                           .order_by(GridCell.code))
    return [MapCell.model_validate(cell_public(c).model_dump()) for c in rows]


def households(session: Session) -> list[MapHousehold]:
    rows = session.execute(
        select(Household, GridCell.code).outerjoin(GridCell, Household.grid_cell_id == GridCell.id)
        .where(Household.latitude.is_not(None)).order_by(Household.code)).all()
    devices: dict[int | None, list[str]] = {}
    for hid, dev in session.execute(select(Device.household_id, Device.device_id)
                                    .where(Device.household_id.is_not(None))
                                    .order_by(Device.device_id)):
        devices.setdefault(hid, []).append(dev)
    return [MapHousehold(code=h.code, address=h.address, compound=h.compound,
                         community=h.community, grid_cell=cell, latitude=h.latitude,
                         longitude=h.longitude, devices=devices.get(h.id, []))
            for h, cell in rows]


def devices(session: Session) -> list[MapDevice]:
    rows = session.execute(
        select(Device, Household.code).outerjoin(Household, Device.household_id == Household.id)
        .where(Device.latitude.is_not(None)).order_by(Device.device_id)).all()
    return [MapDevice(device_id=d.device_id, type=d.type, household=code, online=d.online,
                      latitude=d.latitude, longitude=d.longitude) for d, code in rows]


def open_alarms(session: Session) -> MapAlarms:
    """Open alarms with a place, most urgent first."""
    lat = func.coalesce(Device.latitude, Household.latitude)
    lon = func.coalesce(Device.longitude, Household.longitude)
    base = (select(Alarm.id).outerjoin(Device, Device.device_id == Alarm.device_id)
            .outerjoin(Household, Device.household_id == Household.id)
            .where(Alarm.state.in_(OPEN_STATES)))
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    placed = base.where(lat.is_not(None))
    n_placed = session.scalar(select(func.count()).select_from(placed.subquery())) or 0
    rows = session.execute(
        placed.add_columns(Alarm.device_id, Alarm.type, Alarm.priority, Alarm.state,
                           Alarm.created_ms, Household.code, Household.address, lat, lon)
        .order_by(Alarm.priority, Alarm.created_ms.desc(), Alarm.id.desc())
        .limit(MAX_ALARMS)).all()
    alarms = [MapAlarm(id=r[0], device_id=r[1], type=r[2], priority=r[3], state=r[4],
                       created_ms=r[5], household=r[6], address=r[7], latitude=r[8],
                       longitude=r[9]) for r in rows]
    return MapAlarms(alarms=alarms, open=total, unplaced=total - n_placed,
                     not_shown=n_placed - len(alarms))


def everything(session: Session) -> MapData:
    return MapData(cells=cells(session), households=households(session),
                   devices=devices(session), alarms=open_alarms(session))
