"""Operator accounts: argon2id password hashes, creation, password check,
and the first-run bootstrap of an admin."""

from __future__ import annotations

import functools
import logging
import re
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dashboard.models import User
from dashboard.roles import ROLES

log = logging.getLogger("homeguard.centre.users")

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$")
MIN_PASSWORD = 8
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Checked when the username is unknown, so both failures take as long;
    made at the first login, not at import (every centre start paid it)."""
    return _hasher.hash("not a password of anyone")


class UserError(ValueError):
    """A user could not be created or changed; the message says why."""


def check_new(username: str, password: str, role: str) -> None:
    if not USERNAME.match(username):
        raise UserError(
            f"username {username!r}: 2-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit")
    if role not in ROLES:
        raise UserError(f"role {role!r}: one of {', '.join(ROLES)}")
    check_password(password)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(session: Session, username: str, password: str, role: str,
                display_name: str = "") -> User:
    """Add a user (the caller commits); UserError when invalid or taken."""
    check_new(username, password, role)
    user = User(username=username, password_hash=hash_password(password), role=role,
                display_name=display_name or username, active=True,
                created_ms=time.time_ns() // 1_000_000)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise UserError(f"user {username!r} exists already") from None
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this password, else None (same work either way)."""
    user = session.scalar(select(User).where(User.username == username))
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def bootstrap_admin(session: Session, spec: str) -> User | None:
    """With no user at all, create admin from 'USER:PASSWORD'; else nothing.
    The centre's own (system) account, which restores alarms and cannot log
    in, is not a user here: a restore before the first start must not stop
    the admin from being made."""
    if session.scalar(select(func.count()).select_from(User).where(User.role != "system")):
        return None
    username, sep, password = spec.partition(":")
    if not sep:
        raise UserError("bootstrap admin must be given as USER:PASSWORD")
    user = create_user(session, username, password, "admin", "Administrator")
    session.commit()
    log.warning("no users yet: created admin %r from the bootstrap setting", username)
    return user
