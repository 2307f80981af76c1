"""Registry API models: grid cells, households with their contacts, devices,
device keys for gateways, status batches from gateways, and the `Site` an
alarm's detail shows (who and where the device protects).

Layers as elsewhere: *Create (what a client sends to add), *Update (every
field optional, for PATCH), *Public (what the API returns).  Households
point at grid cells and devices at households by their codes, never by
row ids, so a client can write what is printed on the paper record.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
    model_validator,
)

from hg import protocol

# codes as printed on records: G-01, H-0001, 3-2-501
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
# mainland mobiles and landlines, optionally +country code, with - or spaces
PHONE_PATTERN = r"^\+?[0-9][0-9 -]{3,28}[0-9]$"
# 16..64 bytes as hex (the gateway refuses keys under 16 bytes)
KEY_PATTERN = r"^(?:[0-9a-fA-F]{2}){16,64}$"
DEVICE_TYPES = ("button", "sensor")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _device_id(v: str) -> str:
    if not protocol.valid_id(v):
        raise ValueError(f"device id {v!r}: 3-32 of a-z, 0-9 and '-', not starting with '-'")
    return v


DeviceId = Annotated[str, AfterValidator(_device_id),
                     Field(min_length=3, max_length=32, examples=["hg-b-0001"])]
Code = Annotated[str, Field(pattern=CODE_PATTERN, examples=["H-0001"])]
Phone = Annotated[str, Field(pattern=PHONE_PATTERN, examples=["13800138000"])]
Name = Annotated[str, Field(min_length=1, max_length=64)]
Text128 = Annotated[str, Field(max_length=128)]
Millis = Annotated[StrictInt, Field(ge=0, le=protocol.MAX_INT)]
# WGS-84 degrees, as a phone's GPS or an online map gives them
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False, examples=[31.2304])]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False, examples=[121.4737])]
# a grid cell's outline: [lon, lat] points (GeoJSON order), the ring closed or not
Polygon = Annotated[list[tuple[Longitude, Latitude]], Field(
    min_length=3, max_length=1000, examples=[[[121.47, 31.23], [121.48, 31.23],
                                              [121.48, 31.24]]])]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_control_characters(cls, v: object) -> object:
        # PostgreSQL refuses NUL in text; none of these belongs on a record
        if isinstance(v, str) and _CONTROL.search(v):
            raise ValueError("control characters (such as NUL) are not allowed")
        return v


class _Placed(_In):
    """latitude and longitude: both or neither (on PATCH both null clears them)."""

    latitude: Latitude | None = None
    longitude: Longitude | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> _Placed:
        given = {"latitude", "longitude"} & self.model_fields_set
        if len(given) == 1 or (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude: give both or neither")
        return self

    def place_changes(self) -> dict[str, float | None]:
        """The coordinates to write: {} when the body left them out."""
        if "latitude" not in self.model_fields_set:
            return {}
        return {"latitude": self.latitude, "longitude": self.longitude}


# --- grid cells ---


class GridCellCreate(_In):
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=128)]
    community: Annotated[str, Field(min_length=1, max_length=128)]
    worker_name: Annotated[str, Field(max_length=64)] = ""
    worker_phone: Phone | Literal[""] = ""
    polygon: Polygon | None = None


class GridCellUpdate(_In):
    code: Code | None = None
    name: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    community: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    worker_name: Annotated[str, Field(max_length=64)] | None = None
    worker_phone: Phone | Literal[""] | None = None
    polygon: Polygon | None = Field(default=None, description="null clears it")


class GridCellPublic(BaseModel):
    code: str
    name: str
    community: str
    worker_name: str
    worker_phone: str
    polygon: list[tuple[float, float]] | None = None


# --- households and contacts ---


class ContactIn(_In):
    name: Name
    phone: Phone
    email: Annotated[str, Field(max_length=255, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    relation: Annotated[str, Field(max_length=32)] = ""
    # 1 is called first; left out, a contact ranks by its place in the list
    rank: Annotated[StrictInt, Field(ge=1, le=99)] | None = None


class ContactPublic(BaseModel):
    name: str
    phone: str
    email: str | None
    relation: str
    rank: int


def _ranked(contacts: list[ContactIn] | None) -> list[ContactIn] | None:
    """Missing ranks filled from list order; two contacts with one rank is an error."""
    if contacts is None:
        return None
    out = [c.model_copy(update={"rank": c.rank or i + 1}) for i, c in enumerate(contacts)]
    ranks = [c.rank for c in out]
    if len(set(ranks)) != len(ranks):
        raise ValueError(f"contacts: ranks must differ, got {ranks}")
    return sorted(out, key=lambda c: c.rank or 0)


class HouseholdCreate(_Placed):
    code: Code
    address: Annotated[str, Field(min_length=1, max_length=255)]
    compound: Text128 = ""
    community: Annotated[str, Field(min_length=1, max_length=128)]
    grid_cell: Code | None = Field(default=None, description="the grid cell's code")
    note: Annotated[str, Field(max_length=2000)] = ""
    contacts: list[ContactIn] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _rank_contacts(self) -> HouseholdCreate:
        self.contacts = _ranked(self.contacts) or []
        return self


class HouseholdUpdate(_Placed):
    """Fields left out stay; `contacts`, when given, replaces the whole list."""

    code: Code | None = None
    address: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    compound: Text128 | None = None
    community: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    grid_cell: Code | Literal[""] | None = Field(
        default=None, description="the grid cell's code; \"\" unassigns it")
    note: Annotated[str, Field(max_length=2000)] | None = None
    contacts: list[ContactIn] | None = Field(default=None, max_length=10)

    @model_validator(mode="after")
    def _rank_contacts(self) -> HouseholdUpdate:
        self.contacts = _ranked(self.contacts)
        return self


class HouseholdPublic(BaseModel):
    code: str
    address: str
    compound: str
    community: str
    grid_cell: str | None
    note: str
    contacts: list[ContactPublic]
    devices: list[str]
    latitude: float | None = None
    longitude: float | None = None


# --- devices ---


class DeviceCreate(_Placed):
    device_id: DeviceId
    type: Literal["button", "sensor"]
    board: Annotated[str, Field(max_length=32)] = ""
    firmware: Annotated[str, Field(max_length=32)] = ""
    household: Code | None = Field(default=None, description="the household's code")
    key_ref: Annotated[str, Field(min_length=1, max_length=64)] = "centre"


class DeviceUpdate(_Placed):
    type: Literal["button", "sensor"] | None = None
    board: Annotated[str, Field(max_length=32)] | None = None
    firmware: Annotated[str, Field(max_length=32)] | None = None
    household: Code | Literal[""] | None = Field(
        default=None, description="the household's code; \"\" unassigns it")
    key_ref: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class DevicePublic(BaseModel):
    device_id: str
    type: str
    board: str
    firmware: str
    household: str | None
    key_ref: str
    has_key: bool
    created_ms: int
    # status, read-only: from gateways' status batches
    online: bool | None
    last_seen_ms: int | None
    last_heartbeat_ms: int | None
    battery_mv: int | None
    rssi: int | None
    outbox_depth: int | None
    # types of the device's alarms still open on the desk (supervision included)
    open_alarms: list[str] = Field(default_factory=list)
    latitude: float | None = None
    longitude: float | None = None


class KeyBody(_In):
    key_hex: Annotated[str, Field(pattern=KEY_PATTERN, description="16-64 bytes as hex")]


class KeySet(BaseModel):
    device_id: str
    updated_ms: int


class KeyExport(BaseModel):
    """Keys changed after `after_ms`; `updated_ms` is the value to pass next time."""

    keys: dict[str, str] = Field(description="device id -> key as hex, set after after_ms")
    updated_ms: int
    device_ids: list[str] = Field(
        description="every device that has a key now: a gateway drops keys of others "
                    "(deleted devices)")


# --- status from gateways ---


class StatusItem(_In):
    device: DeviceId
    at_ms: Millis
    online: bool | None = None
    battery_mv: Annotated[StrictInt, Field(ge=0, le=100_000)] | None = None
    rssi: Annotated[StrictInt, Field(ge=-200, le=0)] | None = None
    outbox: Annotated[StrictInt, Field(ge=0, le=10_000_000)] | None = None
    fw: Annotated[str, Field(max_length=32)] | None = None

    @field_validator("fw", mode="before")
    @classmethod
    def _printable_fw(cls, v: object) -> object:
        # a device's own string, also taken from ingested heartbeats: control
        # characters become "?" rather than failing the gateway's whole batch
        return _CONTROL.sub("?", v) if isinstance(v, str) else v

    def heartbeat(self) -> bool:
        return any(v is not None for v in (self.battery_mv, self.rssi, self.outbox, self.fw))


class StatusBatch(_In):
    gateway: Annotated[str, Field(min_length=3, max_length=32)] = "gateway"
    items: list[StatusItem] = Field(max_length=1000)


class StatusResult(BaseModel):
    updated: list[str]
    stale: list[str] = Field(description="an item older than what the centre holds")
    unknown: list[str] = Field(description="not registered: nothing was created")


# --- an alarm's site, for its detail ---


class SiteCell(BaseModel):
    code: str
    name: str
    worker_name: str
    worker_phone: str


class Site(BaseModel):
    """Who and where an alarm's device protects; registered=False when the
    device is not in the registry (the alarm still shows)."""

    registered: bool
    device_type: str | None = None
    household: str | None = None
    address: str | None = None
    compound: str | None = None
    community: str | None = None
    grid_cell: SiteCell | None = None
    contacts: list[ContactPublic] = Field(default_factory=list)
