"""Login throttling and lockout, decided before a password is checked.

A login attempt is refused (`Throttled`: 429 with Retry-After) without
running argon2 when

- its username is locked: `login_lockout_failures` failed logins in a row
  locked it for `login_lockout_s` (an admin may unlock it earlier);
- its address, or its username, used up its failed logins for the current
  window (`login_limit_per_address`, `login_limit_per_account`; counted by
  `limits`' fixed-window strategy in the centre's store, see ratestore.py);
- `login_concurrency` password checks are running in this process and none
  ends within BUSY_WAIT_S.

Only failures are counted, so operators behind one address do not use up
each other's logins.  The lock and the counters live in the store (or a
shared `limits` storage), so every centre process on it sees them.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, RateLimitItemPerMinute, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from pydantic import BaseModel
from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from dashboard.authaudit import Action, now_ms, record
from dashboard.db import begin_write
from dashboard.models import LoginLock
from dashboard.ratestore import DatabaseStorage
from dashboard.settings import Settings

log = logging.getLogger("homeguard.centre.logins")

BUSY_WAIT_S = 2.0
# stale login_locks rows are deleted by a failed login at most this often (per process)
PRUNE_EVERY_S = 60.0
# one audit row per throttled key and minute, however many attempts
AUDIT_THROTTLED = RateLimitItemPerMinute(1)


@dataclass
class Throttled(Exception):
    """A login refused before its password was checked."""

    reason: str  # "locked", "address", "account" or "busy"
    retry_after: int  # seconds

    def __str__(self) -> str:
        return f"login refused ({self.reason}); retry after {self.retry_after} s"


class LockPublic(BaseModel):
    username: str
    failures: int
    locked_until_ms: int | None
    last_failure_ms: int
    last_address: str


def address_key(host: str | None) -> str:
    """The address a limit counts by: IPv4 as is, IPv6 by its /64 (one
    household or host has a whole /64)."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def make_storage(settings: Settings, sessions: sessionmaker[Session]) -> Storage:
    if settings.login_limits_storage == "database":
        return DatabaseStorage(sessions)
    storage = storage_from_string(settings.login_limits_storage)
    if not isinstance(storage, Storage):
        raise ValueError(f"{settings.login_limits_storage}: an async storage cannot serve here")
    return storage


class LoginGuard:
    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.per_address: RateLimitItem = parse(settings.login_limit_per_address)
        self.per_account: RateLimitItem = parse(settings.login_limit_per_account)
        self.lock_after = settings.login_lockout_failures
        self.lock_ms = int(settings.login_lockout_s * 1000)
        self.limiter = FixedWindowRateLimiter(storage)
        self.checks = threading.BoundedSemaphore(settings.login_concurrency)
        self._pruned = 0.0

    def admit(self, session: Session, username: str, address: str) -> None:
        """Raise Throttled when this attempt must not reach the password check."""
        try:
            self._admit(session, username, address)
        except Throttled as exc:
            key = username if exc.reason in ("locked", "account") else address
            if self.limiter.hit(AUDIT_THROTTLED, "audit", exc.reason, key):
                log.warning("login of %r from %s refused: %s", username, address, exc)
                detail = f"{exc.reason}: retry after {exc.retry_after} s (one row a minute)"
                self._write(session, lambda: record(
                    session, Action.THROTTLED, username, username, address, detail))
            raise

    def _admit(self, session: Session, username: str, address: str) -> None:
        row = session.get(LoginLock, username)
        now = now_ms()
        if row is not None and row.locked_until_ms is not None and row.locked_until_ms > now:
            raise Throttled("locked", math.ceil((row.locked_until_ms - now) / 1000))
        for reason, item, key in (("address", self.per_address, address),
                                  ("account", self.per_account, username)):
            if not self.limiter.test(item, "login", reason, key):
                reset = self.limiter.get_window_stats(item, "login", reason, key).reset_time
                raise Throttled(reason, max(1, math.ceil(reset - time.time())))

    @contextmanager
    def checking(self) -> Iterator[None]:
        """Hold one of this process's password-check slots."""
        if not self.checks.acquire(timeout=BUSY_WAIT_S):
            raise Throttled("busy", math.ceil(BUSY_WAIT_S))
        try:
            yield
        finally:
            self.checks.release()

    def failed(self, session: Session, username: str, address: str) -> None:
        """Count a failed login; lock the username at the threshold; audit."""
        self.limiter.hit(self.per_address, "login", "address", address)
        self.limiter.hit(self.per_account, "login", "account", username)
        self._write(session, lambda: self._count_failure(session, username, address))

    def _count_failure(self, session: Session, username: str, address: str) -> None:
        now = now_ms()
        if time.monotonic() - self._pruned > PRUNE_EVERY_S:
            # rows of names guessed long ago (unlocked, failures too old to add up)
            self._pruned = time.monotonic()
            session.execute(delete(LoginLock).where(
                LoginLock.last_failure_ms < now - self.lock_ms,
                or_(LoginLock.locked_until_ms.is_(None), LoginLock.locked_until_ms <= now)))
        row = _locked_row(session, username, now, address)
        expired = row.locked_until_ms is not None and row.locked_until_ms <= now
        if expired or now - row.last_failure_ms > self.lock_ms:
            row.failures, row.locked_until_ms = 0, None
        row.failures += 1
        row.last_failure_ms, row.last_address = now, address[:64]
        record(session, Action.LOGIN_FAILED, username, username, address,
               f"{row.failures} in a row")
        if self.lock_after and row.failures >= self.lock_after and row.locked_until_ms is None:
            row.locked_until_ms = now + self.lock_ms
            record(session, Action.LOCKED, username, "(system)", address,
                   f"after {row.failures} failed logins in a row, for "
                   f"{self.lock_ms // 1000} s or until an admin unlocks it")
            log.warning("login %r locked after %d failed logins (last from %s)",
                        username, row.failures, address)

    def succeeded(self, session: Session, username: str, address: str) -> None:
        """A good login: its failures are forgotten; audited."""
        def forget() -> None:
            session.execute(delete(LoginLock).where(LoginLock.username == username))
            record(session, Action.LOGIN, username, username, address)
        self._write(session, forget)

    def unlock(self, session: Session, username: str, actor: str, address: str = "") -> bool:
        """Lift a lock and the username's failure count (an admin's act);
        True when it was locked."""
        now = now_ms()
        was_locked = False

        def lift() -> None:
            nonlocal was_locked
            row = session.get(LoginLock, username)
            was_locked = bool(row and row.locked_until_ms and row.locked_until_ms > now)
            session.execute(delete(LoginLock).where(LoginLock.username == username))
            record(session, Action.UNLOCKED, username, actor, address,
                   "was locked" if was_locked else "was not locked")

        self._write(session, lift)
        self.limiter.clear(self.per_account, "login", "account", username)
        return was_locked

    @staticmethod
    def _write(session: Session, change: Any) -> None:
        session.commit()  # end the read: the write begins holding the lock
        begin_write(session)
        change()
        session.commit()


def _locked_row(session: Session, username: str, now: int, address: str) -> LoginLock:
    """The username's row, created when missing, locked for this transaction."""
    module: Any = {"sqlite": sqlite, "postgresql": postgresql}[session.get_bind().dialect.name]
    session.execute(module.insert(LoginLock).values(
        username=username, failures=0, last_failure_ms=now, last_address=address[:64])
        .on_conflict_do_nothing(index_elements=["username"]))
    row = session.scalar(select(LoginLock).where(LoginLock.username == username)
                         .with_for_update().execution_options(populate_existing=True))
    assert row is not None
    return row


def locks(session: Session, now: int | None = None) -> list[LockPublic]:
    """Usernames locked now, soonest unlocked first."""
    now = now_ms() if now is None else now
    rows = session.scalars(select(LoginLock).where(LoginLock.locked_until_ms > now)
                           .order_by(LoginLock.locked_until_ms))
    return [LockPublic(username=r.username, failures=r.failures,
                       locked_until_ms=r.locked_until_ms, last_failure_ms=r.last_failure_ms,
                       last_address=r.last_address) for r in rows]
