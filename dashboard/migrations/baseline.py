"""The store's schema as release c5f2424 made it, frozen: revision 0001
creates exactly these tables, and a store made before migrations existed
is recognised by them.  Never edit this file: change the schema with a new
revision instead.

Written from that release's models (dashboard/models.py, hazards.py,
notify/models.py) as plain tables, so later changes to the models cannot
reach back into the baseline.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

RELEASE = "c5f2424"

METADATA = MetaData()


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True, autoincrement=True)


def _ms(name: str, nullable: bool = False) -> Column[int]:
    return Column(name, BigInteger, nullable=nullable)


def _s(name: str, length: int, nullable: bool = False, index: bool = False,
       unique: bool = False) -> Column[str]:
    return Column(name, String(length), nullable=nullable, index=index, unique=unique)


Table(
    "events", METADATA, _id(),
    _s("device_id", 32, index=True), Column("seq", BigInteger, nullable=False),
    _s("kind", 16), _s("type", 32), _ms("event_time_ms"), _ms("device_time_ms", True),
    _ms("gateway_time_ms"), _ms("received_ms"), _ms("age_ms"), _ms("skew_ms", True),
    Column("data", JSON, nullable=False), _s("gateway", 32),
    UniqueConstraint("device_id", "seq", name="uq_events_device_seq"),
)
Table(
    "alarms", METADATA, _id(),
    Column("event_id", ForeignKey("events.id", ondelete="RESTRICT"), nullable=False,
           unique=True),
    _s("device_id", 32, index=True), _s("type", 32),
    Column("priority", Integer, nullable=False), _s("state", 16, index=True),
    _ms("created_ms"), _s("outcome", 16, True), _s("dispatched_to", 16, True),
    _ms("acked_ms", True), _ms("verified_ms", True), _ms("resolved_ms", True),
)
Table(
    "alarm_audit", METADATA, _id(),
    Column("alarm_id", ForeignKey("alarms.id"), nullable=False, index=True),
    _ms("at_ms"), Column("user_id", ForeignKey("users.id"), nullable=False),
    _s("username", 64), _s("action", 16), _s("from_state", 16), _s("to_state", 16),
    _s("outcome", 16, True), _s("dispatched_to", 16, True),
    Column("note", Text, nullable=False),
)
Table(
    "feedback", METADATA, _id(),
    Column("alarm_id", ForeignKey("alarms.id"), nullable=False, index=True),
    _s("device_id", 32), Column("seq", BigInteger, nullable=False),
    _s("gateway", 32, index=True), _s("type", 16), _ms("created_ms"),
    Column("delivered", Boolean, nullable=False), _ms("delivered_ms", True),
)
Table(
    "users", METADATA, _id(),
    _s("username", 64, unique=True), _s("password_hash", 255), _s("role", 16),
    _s("display_name", 128), Column("active", Boolean, nullable=False), _ms("created_ms"),
)
Table(
    "user_sessions", METADATA,
    Column("id", String(64), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    _ms("created_ms"), _ms("expires_ms"),
)
Table(
    "grid_cells", METADATA, _id(),
    _s("code", 32, unique=True), _s("name", 128), _s("community", 128, index=True),
    _s("worker_name", 64), _s("worker_phone", 32),
)
Table(
    "households", METADATA, _id(),
    _s("code", 32, unique=True), _s("address", 255), _s("compound", 128),
    _s("community", 128, index=True),
    Column("grid_cell_id", ForeignKey("grid_cells.id", ondelete="SET NULL"), nullable=True,
           index=True),
    Column("note", Text, nullable=False),
)
Table(
    "contacts", METADATA, _id(),
    Column("household_id", ForeignKey("households.id", ondelete="CASCADE"), nullable=False,
           index=True),
    _s("name", 64), _s("phone", 32), _s("email", 255, True), _s("relation", 32),
    Column("rank", Integer, nullable=False),
)
Table(
    "devices", METADATA,
    Column("device_id", String(32), primary_key=True),
    _s("type", 16), _s("board", 32), _s("firmware", 32),
    Column("household_id", ForeignKey("households.id", ondelete="SET NULL"), nullable=True,
           index=True),
    _s("key_ref", 64), _ms("created_ms"), Column("online", Boolean, nullable=True),
    _ms("last_seen_ms", True), _ms("last_heartbeat_ms", True),
    Column("battery_mv", Integer, nullable=True), Column("rssi", Integer, nullable=True),
    Column("outbox_depth", Integer, nullable=True),
)
Table(
    "device_keys", METADATA,
    Column("device_id", ForeignKey("devices.device_id", ondelete="CASCADE"), primary_key=True),
    _s("key_hex", 128), _ms("updated_ms"),
)
Table(
    "hazards", METADATA, _id(),
    Column("alarm_id", ForeignKey("alarms.id"), nullable=False, unique=True),
    _s("device_id", 32, index=True), _s("type", 32), _ms("opened_ms"),
    _s("state", 16, index=True), _ms("rectified_ms", True), _s("rectified_by", 64, True),
    Column("rectify_note", Text, nullable=False),
)
Table(
    "hazard_restores", METADATA, _id(),
    Column("hazard_id", ForeignKey("hazards.id"), nullable=False, index=True),
    Column("event_id", ForeignKey("events.id"), nullable=False, unique=True),
    _ms("event_time_ms"),
)
Table(
    "notifications", METADATA, _id(),
    Column("alarm_id", ForeignKey("alarms.id"), nullable=False, index=True),
    Column("step", Integer, nullable=False), _s("role", 16), _s("name", 64),
    _s("channel", 16), _s("target", 255), Column("attempt", Integer, nullable=False),
    _s("status", 16), Column("error", Text, nullable=True), _ms("at_ms"),
    _ms("done_ms", True),
    UniqueConstraint("alarm_id", "step", "channel", "attempt", name="uq_notifications_attempt"),
)
