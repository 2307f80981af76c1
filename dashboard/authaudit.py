"""The auth audit: one row per thing that changed or used someone's access
(a login, a failed or refused one, a lock, an unlock, a gateway credential
issued or revoked, a key export), and an operator's alarm sound turned off
or on, with who, when and from where.  Rows are
added in the caller's transaction and never changed."""

from __future__ import annotations

import time
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.db import begin_write
from dashboard.models import AuthAudit


class Action(StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    THROTTLED = "login_throttled"  # at most one row per key and minute
    LOCKED = "locked"
    UNLOCKED = "unlocked"
    GATEWAY_ISSUED = "gateway_issued"
    GATEWAY_REVOKED = "gateway_revoked"
    GATEWAY_REFUSED = "gateway_refused"  # a credential used for another gateway
    KEYS_EXPORTED = "keys_exported"
    # an operator turned the desk's alarm sound off or on (routes/desk.py)
    SOUND_OFF = "sound_off"
    SOUND_ON = "sound_on"
    # a registry file imported (dashboard/registry_import.py): what it changed
    REGISTRY_IMPORTED = "registry_imported"
    # an alarm type's action plan edited or set back to the shipped one (plans.py)
    PLAN_CHANGED = "plan_changed"
    PLAN_RESET = "plan_reset"


class AuditPublic(BaseModel):
    id: int
    at_ms: int
    action: str
    subject: str
    actor: str
    address: str
    detail: str


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def record(session: Session, action: Action, subject: str, actor: str,
           address: str = "", detail: str = "") -> None:
    """Add a row to the session (the caller commits)."""
    session.add(AuthAudit(at_ms=now_ms(), action=str(action), subject=subject[:64],
                          actor=actor[:64], address=address[:64], detail=detail))


def write(session: Session, action: Action, subject: str, actor: str,
          address: str = "", detail: str = "") -> None:
    """Record a row in a transaction of its own (ending the session's read)."""
    session.commit()
    begin_write(session)
    record(session, action, subject, actor, address, detail)
    session.commit()


def recent(session: Session, subject: str | None = None, limit: int = 100,
           before: int | None = None) -> list[AuditPublic]:
    """Rows newest first, optionally about one subject, with ids below `before`."""
    stmt = select(AuthAudit).order_by(AuthAudit.id.desc()).limit(limit)
    if subject is not None:
        stmt = stmt.where(AuthAudit.subject == subject)
    if before is not None:
        stmt = stmt.where(AuthAudit.id < before)
    return [AuditPublic(id=r.id, at_ms=r.at_ms, action=r.action, subject=r.subject,
                        actor=r.actor, address=r.address, detail=r.detail)
            for r in session.scalars(stmt)]
