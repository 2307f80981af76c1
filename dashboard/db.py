"""Engine and sessions for the alarm store.

SQLite runs in WAL mode with foreign keys on and synchronous=FULL: a 200 to
a gateway lets it drop the batch from its outbox, so a commit must survive
a power cut.  Writers open their transaction with BEGIN IMMEDIATE (see
`begin_write`) so two writers queue on the busy timeout instead of one
failing on a stale read snapshot.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from dashboard.models import Base

BUSY_TIMEOUT_MS = 10000
_BEGIN = "sqlite_begin"


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
    )
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # take transaction control from the driver: _sqlite_begin emits BEGIN
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    for pragma in (
        "journal_mode=WAL",
        "foreign_keys=ON",
        "synchronous=FULL",
        f"busy_timeout={BUSY_TIMEOUT_MS}",
    ):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get(_BEGIN, "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def begin_write(session: Session) -> None:
    """Start the session's transaction holding the database's write lock.

    Call it before the session's first statement; other backends ignore it."""
    session.connection(execution_options={_BEGIN: "IMMEDIATE"})


def create_tables(engine: Engine) -> None:
    from dashboard.migrate import add_missing_columns, add_missing_indexes

    Base.metadata.create_all(engine)
    add_missing_columns(engine)
    add_missing_indexes(engine)
