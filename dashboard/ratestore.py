"""A `limits` storage in the centre's own database (table `rate_limits`), so
every centre process on one store counts the same hits: two centres behind
a load balancer on PostgreSQL throttle an address as one.

It serves the fixed-window strategy (`limits.FixedWindowRateLimiter`): each
key is a counter with the end of its window.  `incr` is one atomic
INSERT ... ON CONFLICT DO UPDATE ... RETURNING, so racing hits from several
processes are all counted; a window that has ended starts again at the hit.
"""

from __future__ import annotations

import time
from typing import Any

from limits.storage import Storage
from sqlalchemy import case, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from dashboard.db import begin_write
from dashboard.models import RateLimit

# expired rows are deleted by an incr at most this often (per process)
PRUNE_EVERY_S = 60.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class DatabaseStorage(Storage):
    """Fixed-window counters in `rate_limits`; built from the centre's
    sessions, not from a URI (STORAGE_SCHEME is left empty)."""

    STORAGE_SCHEME = None

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        super().__init__(None, wrap_exceptions=False)
        self.sessions = sessions
        self._pruned = 0.0

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = _now_ms()
        end = now + int(expiry * 1000)
        expired = RateLimit.expires_ms <= now
        with self.sessions() as session:
            begin_write(session)
            module: Any = {"sqlite": sqlite, "postgresql": postgresql}[
                session.get_bind().dialect.name]
            stmt = module.insert(RateLimit).values(key=key, count=amount, expires_ms=end)
            stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={
                "count": case((expired, amount), else_=RateLimit.count + amount),
                "expires_ms": case((expired, end), else_=RateLimit.expires_ms),
            }).returning(RateLimit.count)
            count = int(session.execute(stmt).scalar_one())
            if time.monotonic() - self._pruned > PRUNE_EVERY_S:
                self._pruned = time.monotonic()
                session.execute(delete(RateLimit).where(RateLimit.expires_ms <= now))
            session.commit()
        return count

    def _row(self, key: str) -> RateLimit | None:
        with self.sessions() as session:
            return session.scalar(select(RateLimit).where(
                RateLimit.key == key, RateLimit.expires_ms > _now_ms()))

    def get(self, key: str) -> int:
        row = self._row(key)
        return row.count if row is not None else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row.expires_ms / 1000 if row is not None else time.time()

    def check(self) -> bool:
        try:
            with self.sessions() as session:
                session.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.sessions() as session:
            begin_write(session)
            count = session.scalar(select(func.count()).select_from(RateLimit))
            session.execute(delete(RateLimit))
            session.commit()
        return int(count or 0)

    def clear(self, key: str) -> None:
        with self.sessions() as session:
            begin_write(session)
            session.execute(delete(RateLimit).where(RateLimit.key == key))
            session.commit()
