"""The `notifications` table: one row per attempt to tell someone about an
alarm.  (alarm, step, channel, attempt) is unique: a worker claims an
attempt by inserting its row before sending, so no attempt is made twice,
also across a restart or by two centre processes on one database."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.models import Base

# an attempt is "sending" from its claim until it ends "sent" or "failed"
STATUSES = ("sending", "sent", "failed")


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("alarm_id", "step", "channel", "attempt",
                                       name="uq_notifications_attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id"), index=True)
    # 0 = the first contact; each escalation is the next step
    step: Mapped[int] = mapped_column(Integer)
    # contact | grid_worker | supervisor
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64), default="")
    channel: Mapped[str] = mapped_column(String(16))
    # phone number or e-mail address the attempt went to
    target: Mapped[str] = mapped_column(String(255))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="sending")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    at_ms: Mapped[int] = mapped_column(BigInteger)
    done_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
