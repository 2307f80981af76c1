"""Server-side login sessions.  The signed cookie carries a random login id;
the table keeps only its SHA-256, the user and the expiry, so logout and
deactivating a user end a login at once, and a copy of the table opens no
session."""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dashboard.db import begin_write
from dashboard.models import User, UserSession


def _key(login_id: str) -> str:
    return hashlib.sha256(login_id.encode()).hexdigest()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def start(session: Session, user: User, hours: float) -> str:
    """A new login for user (committed); returns the id for the cookie."""
    login_id = secrets.token_urlsafe(32)
    # end the read transaction the password check opened, then take the write
    # lock: upgrading a stale SQLite read snapshot fails at once ("database is
    # locked") when another writer committed in between
    session.commit()
    begin_write(session)
    now = _now_ms()
    session.execute(delete(UserSession).where(UserSession.expires_ms < now))
    session.add(UserSession(id=_key(login_id), user_id=user.id, created_ms=now,
                            expires_ms=now + int(hours * 3_600_000)))
    session.commit()
    return login_id


def user_of(session: Session, login_id: str) -> User | None:
    """The active user of an unexpired login, else None."""
    return session.scalar(
        select(User).join(UserSession, UserSession.user_id == User.id)
        .where(UserSession.id == _key(login_id), UserSession.expires_ms > _now_ms(),
               User.active.is_(True)))


def end(session: Session, login_id: str) -> None:
    session.execute(delete(UserSession).where(UserSession.id == _key(login_id)))
    session.commit()


def end_all(session: Session, user_id: int) -> None:
    """End every login of a user (deactivated, or a new password)."""
    session.execute(delete(UserSession).where(UserSession.user_id == user_id))
