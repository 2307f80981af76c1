"""The alarm store's tables.

`events` holds every event a gateway delivered, once: (device_id, seq) is
unique and ingest relies on that constraint, never on a read-then-write.
`alarms` holds one row per alarm event for the operators; later work adds
workflow states and an audit trail beside it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# states in which an alarm still needs an operator; the workflow adds more
OPEN_STATES = ("received",)


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

    event: Mapped[Event] = relationship(back_populates="alarm")
