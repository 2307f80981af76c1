"""API models in layers: *Base (shared fields), *Create (what a gateway
sends), *Public (what the API and the live stream return)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from dashboard.registry_schemas import Site
from hg import protocol

# types a gateway raises itself: device and gateway liveness, and device faults
SUPERVISION_TYPES = ("offline", "online", "gateway_offline", "link_lost", "seq_conflict",
                     # a gateway's own warnings (docs/gateway.md "Warnings")
                     "data_lost", "disk_low", "shedding")
# kind -> allowed types: the protocol's uplink kinds plus supervision
KIND_TYPES: dict[str, tuple[str, ...]] = {
    kind: protocol.TYPES[kind]
    for kind, leaf in protocol.TOPIC_OF.items()
    if leaf in protocol.UPLINK
}
KIND_TYPES["supervision"] = SUPERVISION_TYPES

MAX_BATCH = 500
ID_PATTERN = r"^[a-z0-9][a-z0-9-]{2,31}$"

Millis = Annotated[StrictInt, Field(ge=0, le=protocol.MAX_INT)]
# database row ids are signed 64-bit: anything larger is a 422, not a 500
ROW_ID_MAX = 2**63 - 1
RowId = Annotated[StrictInt, Field(ge=1, le=ROW_ID_MAX)]
Scalar = (StrictBool | StrictInt | Annotated[float, Field(allow_inf_nan=False)]
          | Annotated[str, Field(max_length=256)] | None)


class EventBase(BaseModel):
    device: str = Field(pattern=ID_PATTERN)
    # a device's seqs are 1..2**31-1; the gateway's own events (kind
    # supervision) use negative ones, so the two never share an identity
    seq: StrictInt = Field(ge=-protocol.MAX_INT, le=protocol.MAX_SEQ)
    kind: str
    type: str
    event_time_ms: Millis
    device_time_ms: Millis | None = None
    gateway_time_ms: Millis
    age_ms: StrictInt = Field(ge=0, le=protocol.MAX_AGE)
    skew_ms: Annotated[StrictInt, Field(ge=-protocol.MAX_INT, le=protocol.MAX_INT)] | None = None
    data: dict[str, Scalar] = Field(default_factory=dict, max_length=protocol.MAX_DATA_KEYS)


class EventCreate(EventBase):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _known_kind_and_type(self) -> EventCreate:
        allowed = KIND_TYPES.get(self.kind)
        if allowed is None:
            raise ValueError(f"unknown kind {self.kind!r}; one of {', '.join(KIND_TYPES)}")
        if self.type not in allowed:
            raise ValueError(
                f"type {self.type!r} is not allowed for kind {self.kind!r}; "
                f"one of {', '.join(allowed)}"
            )
        if (self.kind == "supervision") != (self.seq < 0):
            raise ValueError("seq must be negative for the gateway's own (supervision) "
                             "events and 1..2**31-1 for a device's")
        return self

    @field_validator("seq")
    @classmethod
    def _not_zero(cls, seq: int) -> int:
        if seq == 0:
            raise ValueError("seq 0 is nobody's: a device's are 1..2**31-1, the gateway's "
                             "own events' negative")
        return seq


class IngestBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gateway: str = Field(pattern=ID_PATTERN)
    events: list[EventCreate] = Field(max_length=MAX_BATCH)


class IngestResult(BaseModel):
    device: str
    seq: int
    # conflict: the identity is stored with other content; nothing was stored
    status: Literal["accepted", "duplicate", "conflict"]


class IngestResponse(BaseModel):
    results: list[IngestResult]


class EventPublic(EventBase):
    id: int
    received_ms: int
    gateway: str


class AlarmPublic(BaseModel):
    id: int
    event_id: int
    device: str
    seq: int
    type: str
    priority: int
    state: str
    # alarm events the row stands for: its own and those folded into it by
    # flood control (dashboard/flood.py); 1 for most
    count: int = 1
    created_ms: int
    event_time_ms: int
    device_time_ms: int | None
    gateway_time_ms: int
    received_ms: int
    age_ms: int
    skew_ms: int | None
    gateway: str
    data: dict[str, Scalar]
    outcome: str | None = None
    dispatched_to: str | None = None
    acked_ms: int | None = None
    verified_ms: int | None = None
    resolved_ms: int | None = None
    # workflow actions that apply in this state (roles aside)
    actions: list[str] = Field(default_factory=list)
    # the operator handling it (dashboard/claims.py), since claimed_ms
    claimed_by: str | None = None
    claimed_ms: int | None = None
    # the grid worker it was dispatched to (username) and their step on it
    # (dashboard/worker.py: assigned, overdue, accepted, arrived, reported), since worker_ms
    worker: str | None = None
    worker_step: str | None = None
    worker_ms: int | None = None


class AuditPublic(BaseModel):
    id: int
    alarm_id: int
    at_ms: int
    username: str
    action: str
    from_state: str
    to_state: str
    outcome: str | None
    dispatched_to: str | None
    note: str
    # who holds the alarm after this row (None: nobody)
    claimed_by: str | None = None
    # the grid worker a dispatch named (dashboard/worker.py)
    worker: str | None = None


class AlarmDetail(BaseModel):
    alarm: AlarmPublic
    audit: list[AuditPublic]
    # the household, grid cell and contacts behind the device (registry)
    site: Site | None = None
    # an electrical alarm's hazard: open/rectified and the sensor's restores
    hazard: HazardState | None = None


class HazardState(BaseModel):
    id: int
    state: str
    restores_ms: list[int] = Field(description="event times of the sensor's restores")
    rectified_ms: int | None = None
    rectified_by: str | None = None


class Transition(BaseModel):
    """A live `transition` message: the alarm after it, and its audit row."""

    alarm: AlarmPublic
    audit: AuditPublic


class Repeat(BaseModel):
    """A live `repeat` message: an alarm event folded into an open alarm by
    flood control, that alarm with its count now, and the flooding fault the
    fold raised (null when the device has one open)."""

    alarm: AlarmPublic
    event: EventPublic
    flooding: AlarmPublic | None = None


class FoldedPage(BaseModel):
    """The alarm events folded into an alarm, newest first, a page at a time."""

    count: int = Field(description="alarm events the alarm stands for, its own included")
    events: list[EventPublic]
    next: int | None = Field(description="`before` for the following page; null at the end")


class DeskCounts(BaseModel):
    """Open alarms in the store, in all and per state (never a page's length)."""

    open: int
    received: int
    acknowledged: int
    verified: int
    dispatched: int
    # dispatched to a grid worker who did not accept in time (worker.py)
    worker_overdue: int = 0


# a place in the desk's order: "group.priority.created_ms.id" of a row
DESK_CURSOR = r"^[0-9]\.[0-9]{1,9}\.[0-9]{1,18}\.[0-9]{1,18}$"


class DeskSite(BaseModel):
    """Where a desk row's device is (registry): household, address, grid cell."""

    registered: bool
    household: str | None = None
    address: str | None = None
    community: str | None = None
    grid_cell: str | None = None
    grid_name: str | None = None


class DeskPage(BaseModel):
    """One page of the desk: open alarms in desk order after a cursor."""

    alarms: list[AlarmPublic]
    sites: dict[str, DeskSite] = Field(
        default_factory=dict, description="device id -> its site, for the page's devices")
    next: str | None = Field(description="the cursor of the following page; null at the end")
    after: str = Field(description="the stream's 'E:A' at this read: live messages with "
                                   "higher ids may be newer than the page")


Note = Annotated[str, Field(max_length=2000)]


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Note = ""


class VerifyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["genuine", "false", "test"]
    note: Note = ""


class DispatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Literal["grid_worker", "patrol"]
    note: Note = ""
    # to the grid worker: this worker's phone (username); none: the worker
    # account of the alarm's grid cell, if it has one (dashboard/worker.py)
    worker: str | None = Field(default=None, max_length=64)


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Note = ""
    # the result the alarm closes with; omitted: verify's outcome stands
    outcome: Literal["genuine", "false", "test"] | None = None


class ReassignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str | None = Field(description="the username to hand the alarm to; null: nobody")
    note: Note = ""


class ReleaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Note = ""


class FeedbackPublic(BaseModel):
    id: int
    alarm_id: int
    device: str
    seq: int
    gateway: str
    type: Literal["acknowledged", "dispatched", "resolved"]
    created_ms: int
    delivered: bool


class FeedbackDelivered(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[RowId] = Field(max_length=1000)


class UserPublic(BaseModel):
    username: str
    role: str
    display_name: str
    active: bool
    # a grid worker's grid cell (code)
    grid_cell: str | None = None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str
    password: str
    role: str
    display_name: str = ""
    grid_cell: str | None = Field(default=None, max_length=32)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str | None = None
    display_name: str | None = None
    active: bool | None = None
    password: str | None = None
    # a grid cell code; "" clears it
    grid_cell: str | None = Field(default=None, max_length=32)


class Me(UserPublic):
    permissions: list[str]
    csrf_token: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
