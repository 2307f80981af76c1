"""The alarm store's tables.

`events` holds every event a gateway delivered, once: (device_id, seq) is
unique and ingest relies on that constraint, never on a read-then-write.
`alarms` holds one row per alarm event with its workflow state;
`alarm_audit` one row per transition (who, what, when, from, to, note)
and per change of who holds the alarm (claims.py);
`feedback` one row per transition the device should hear about (the
gateway fetches them to send `ack` messages).  `users` and
`user_sessions` are the operators and their logins; `rate_limits`,
`login_locks` and `auth_audit` throttle, lock and record access;
`gateway_credentials` are the gateways' bearer tokens (hashed).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# states in which an alarm still needs an operator (see workflow.py)
OPEN_STATES = ("received", "acknowledged", "verified", "dispatched")


class Base(DeclarativeBase):
    pass


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("device_id", "seq", name="uq_events_device_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(32))
    # best estimate of when it happened (device clock, else gateway - age)
    event_time_ms: Mapped[int] = mapped_column(BigInteger)
    # the device's own clock; None when it was not synced
    device_time_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gateway_time_ms: Mapped[int] = mapped_column(BigInteger)
    # centre clock when the batch carrying it arrived
    received_ms: Mapped[int] = mapped_column(BigInteger)
    age_ms: Mapped[int] = mapped_column(BigInteger)
    skew_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    gateway: Mapped[str] = mapped_column(String(32))

    alarm: Mapped[Alarm | None] = relationship(back_populates="event")


class Alarm(Base):
    __tablename__ = "alarms"
    # the desk's order within one state (queries.desk_page reads it state by
    # state); migrate.add_missing_indexes adds it to stores made before it
    __table_args__ = (Index("ix_alarms_desk", "state", "priority", "created_ms", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("events.id", ondelete="RESTRICT"), unique=True
    )
    device_id: Mapped[str] = mapped_column(String(32), index=True)
    type: Mapped[str] = mapped_column(String(32))
    # 1 is the most urgent
    priority: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="received", index=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    # columns added by the workflow (nullable: migrate.py adds them to old stores)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    dispatched_to: Mapped[str | None] = mapped_column(String(16), nullable=True)
    acked_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    verified_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    resolved_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # the operator working the alarm (username; claims.py): taken by the
    # first action, released on logout, after claim_idle_s or by a supervisor
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # the holder's last action on it: the idle release counts from here
    claim_seen_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    # the grid worker (username) it was dispatched to, their step on it
    # (dashboard/worker.py: assigned, overdue, accepted, arrived, reported)
    # and when that step was taken; read with state = dispatched (its index)
    worker: Mapped[str | None] = mapped_column(String(64), nullable=True)
    worker_step: Mapped[str | None] = mapped_column(String(16), nullable=True)
    worker_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    event: Mapped[Event] = relationship(back_populates="alarm")


class AlarmAudit(Base):
    """One workflow transition: who did what to which alarm, when."""

    __tablename__ = "alarm_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id"), index=True)
    at_ms: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    dispatched_to: Mapped[str | None] = mapped_column(String(16), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    # who holds the alarm after this row (None: nobody); claims.py
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the grid worker a dispatch named (dashboard/worker.py)
    worker: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Feedback(Base):
    """A transition the alarm's device should show (LED/buzzer): the gateway
    that delivered the event fetches these and sends `ack` messages."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id"), index=True)
    device_id: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(BigInteger)
    gateway: Mapped[str] = mapped_column(String(32), index=True)
    type: Mapped[str] = mapped_column(String(16))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    delivered_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    # a grid worker's grid cell (its code): dispatching an alarm of that
    # cell to the grid worker sends it to this user's phone (worker.py)
    grid_cell: Mapped[str | None] = mapped_column(String(32), nullable=True)


class UserSession(Base):
    """A login: the cookie carries the id, so logout (deleting the row) and
    deactivating the user end it at once."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    expires_ms: Mapped[int] = mapped_column(BigInteger)


# --- security: login throttling and lockouts, the auth audit (docs/security.md) ---


class RateLimit(Base):
    """One `limits` fixed-window counter (dashboard/ratestore.py): how many
    hits its key took in the window that ends at expires_ms."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    expires_ms: Mapped[int] = mapped_column(BigInteger, index=True)


class LoginLock(Base):
    """Failed logins in a row of a username as it was typed (an unknown one
    too, so a lock tells nothing of who exists), and the lock they caused."""

    __tablename__ = "login_locks"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_ms: Mapped[int] = mapped_column(BigInteger)
    last_address: Mapped[str] = mapped_column(String(64))
    locked_until_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class AuthAudit(Base):
    """Who did what to whose access, when and from where: logins, failures,
    throttling, locks and unlocks (subject: the username), and gateway
    credentials and key exports (subject: the gateway id).  Never changed."""

    __tablename__ = "auth_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    action: Mapped[str] = mapped_column(String(24))
    subject: Mapped[str] = mapped_column(String(64), index=True)
    # the username, admin or gateway acting; "cli" for the command line
    actor: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class GatewayCredential(Base):
    """A gateway's bearer token, bound to its gateway id (dashboard/gateways.py):
    only the token's SHA-256 is kept.  Revoked rows stay, for the audit."""

    __tablename__ = "gateway_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gateway_id: Mapped[str] = mapped_column(String(32), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(64))
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


# --- registry: who and where every device protects (see docs/centre.md) ---


class GridCell(Base):
    """A grid cell (网格) of a community, with its grid worker."""

    __tablename__ = "grid_cells"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    community: Mapped[str] = mapped_column(String(128), index=True)
    worker_name: Mapped[str] = mapped_column(String(64), default="")
    worker_phone: Mapped[str] = mapped_column(String(32), default="")
    # its outline for the map: JSON text of [[lon, lat], ...] (WGS-84), or none
    polygon: Mapped[str | None] = mapped_column(Text, nullable=True)


class Household(Base):
    __tablename__ = "households"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    address: Mapped[str] = mapped_column(String(255))
    # 小区 (compound) and 社区 (community) as written on the household's record
    compound: Mapped[str] = mapped_column(String(128), default="")
    community: Mapped[str] = mapped_column(String(128), index=True)
    grid_cell_id: Mapped[int | None] = mapped_column(
        ForeignKey("grid_cells.id", ondelete="SET NULL"), nullable=True, index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    # where it is on the map (WGS-84 degrees), both or neither
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="household", order_by="Contact.rank", cascade="all, delete-orphan")


class Contact(Base):
    """A person bound to a household; notified in `rank` order (1 first)."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    relation: Mapped[str] = mapped_column(String(32), default="")
    rank: Mapped[int] = mapped_column(Integer, default=1)

    household: Mapped[Household] = relationship(back_populates="contacts")


class Device(Base):
    """A registered device and the last state the centre heard of it."""

    __tablename__ = "devices"

    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))  # button | sensor
    board: Mapped[str] = mapped_column(String(32), default="")
    firmware: Mapped[str] = mapped_column(String(32), default="")
    household_id: Mapped[int | None] = mapped_column(
        ForeignKey("households.id", ondelete="SET NULL"), nullable=True, index=True)
    # where the HMAC key lives: "centre" = the device_keys row, else an
    # external reference the gateway resolves itself
    key_ref: Mapped[str] = mapped_column(String(64), default="centre")
    created_ms: Mapped[int] = mapped_column(BigInteger)
    # status, updated from the events and heartbeats gateways deliver
    online: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    last_seen_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_heartbeat_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    battery_mv: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rssi: Mapped[int | None] = mapped_column(Integer, nullable=True)
    outbox_depth: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # where it is mounted (WGS-84 degrees), both or neither; the map falls
    # back to its household's place
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)


class DeviceKey(Base):
    """A device's HMAC key (hex); readable by gateways' tokens and admins only."""

    __tablename__ = "device_keys"

    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.device_id", ondelete="CASCADE"), primary_key=True)
    key_hex: Mapped[str] = mapped_column(String(128))
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class ActionPlan(Base):
    """An alarm type's action plan as a supervisor edited it (plans.py): its
    steps in order, each {"key", "zh-CN", "en"}.  A type without a row follows
    the plan shipped in plan_defaults.py."""

    __tablename__ = "action_plans"

    alarm_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    steps: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(64))


class AlarmStep(Base):
    """One action-plan step recorded on an alarm: its outcome, when, who;
    `audit_id` is the alarm_audit row (action `step`) that carried it to
    every desk.  `label` keeps the step's words as they were then
    ({"zh-CN", "en"}): the plan may be edited later."""

    __tablename__ = "alarm_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id"), index=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("alarm_audit.id"))
    step: Mapped[str] = mapped_column(String(32))
    label: Mapped[dict[str, str]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(16))
    at_ms: Mapped[int] = mapped_column(BigInteger)
    username: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
