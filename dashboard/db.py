"""Engine and sessions for the alarm store.

SQLite runs in WAL mode with foreign keys on and synchronous=FULL: a 200 to
a gateway lets it drop the batch from its outbox, so a commit must survive
a power cut.  Writers open their transaction with BEGIN IMMEDIATE (see
`begin_write`) so two writers queue on the busy timeout instead of one
failing on a stale read snapshot.

The schema comes from the migrations (dashboard/migrate.py); a schema
change runs in `schema_change`, one transaction holding the database's lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_MS = 10000
_BEGIN = "sqlite_begin"
# pg_advisory_xact_lock key serialising schema changes ("hgsc")
SCHEMA_LOCK = 0x68677363


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


@contextmanager
def schema_change(engine: Engine) -> Iterator[Connection]:
    """One connection in one transaction for changing the schema, holding the
    database's lock, so two centres never change it at once.

    SQLite: BEGIN IMMEDIATE, with foreign keys off while it runs (a batch
    ALTER copies a table and drops the old one, which with them on would
    delete or refuse the rows pointing at it); check them before the end
    (`foreign_key_violations`).  PostgreSQL: a transaction-scoped advisory
    lock; its DDL is transactional, so a failure leaves nothing behind."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            _foreign_keys(conn, "OFF")
        try:
            with conn.execution_options(**{_BEGIN: "IMMEDIATE"}).begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
                yield conn
        finally:
            if sqlite:
                _foreign_keys(conn, "ON")


def _foreign_keys(conn: Connection, state: str) -> None:
    # on the driver's connection, outside any transaction: inside one
    # SQLite ignores this pragma
    conn.connection.dbapi_connection.execute(f"PRAGMA foreign_keys={state}")  # type: ignore[union-attr]


def foreign_key_violations(conn: Connection) -> list[str]:
    """SQLite's `PRAGMA foreign_key_check` as 'table row N -> parent' lines
    (other backends enforce foreign keys during the change itself)."""
    if conn.dialect.name != "sqlite":
        return []
    rows = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    return [f"{table} row {rowid} -> {parent}" for table, rowid, parent, _fk in rows]


def create_tables(engine: Engine) -> None:
    """Bring the store to the models' schema: an empty one is created and an
    older one migrated (dashboard/migrate.py).  `homeguard centre` asks the
    operator before it migrates a store that has data (cli.py)."""
    from dashboard.migrate import upgrade

    upgrade(engine)
