"""A corrupted store: move it aside, salvage what can be read, start fresh.

Events in the store were acked `stored` to their devices, which then dropped
them from flash: losing the file would lose them. When the store cannot be
opened or fails SQLite's quick_check, the gateway moves the file (and its
WAL) aside as `<name>.corrupt-<time>`, reads every row it still can from it,
table by table in id ranges (a range that fails is read again row by row, so
one bad page costs only its own rows), and writes them into a fresh store:
events with their delivery state (an event whose delivery rows are lost is
delivered again: the centre takes it idempotently), telemetry points and
counters. The downlink seq counter never goes back: if it is unreadable it
restarts above anything the devices can have seen (time-based). What could
not be read is counted and logged; the corrupt file stays for inspection.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("homeguard.gateway.salvage")
CHUNK = 1000
CORRUPT = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB
TABLES = {  # table -> columns, in the order they are copied
    "events": ("id", "device", "seq", "kind", "type", "event_time_ms", "device_time_ms",
               "gateway_time_ms", "age_ms", "skew_ms", "data", "created_ms"),
    "deliveries": ("event_id", "sink", "delivered_at", "outcome", "attempts", "last_error"),
    "telemetry": ("id", "device", "seq", "kind", "event_time_ms", "gateway_time_ms", "data"),
    "counters": ("name", "value"),
}
KEYS = {"deliveries": "event_id", "counters": "rowid"}


@dataclass
class Report:
    moved_to: Path
    rows: dict[str, int] = field(default_factory=dict)  # salvaged per table
    unreadable: dict[str, int] = field(default_factory=dict)  # ranges/rows lost per table

    def __str__(self) -> str:
        got = ", ".join(f"{t} {n}" for t, n in self.rows.items())
        lost = ", ".join(f"{t} {n}" for t, n in self.unreadable.items() if n) or "none"
        return f"salvaged {got}; unreadable: {lost}; corrupt file kept as {self.moved_to}"


def is_corruption(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and \
        getattr(exc, "sqlite_errorcode", None) in CORRUPT


def check(path: Path) -> str | None:
    """None when the file passes quick_check, else what is wrong."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        rows = [r[0] for r in db.execute("PRAGMA quick_check(5)")]
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
        return str(exc)
    finally:
        db.close()
    return None if rows == ["ok"] else "; ".join(rows)


def quarantine(path: Path) -> Path:
    """Move the store and its WAL/shm aside; the new name of the main file."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    moved = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            src.rename(moved.with_name(moved.name + suffix))
    return moved


def _read(db: sqlite3.Connection, table: str, cols: tuple[str, ...], key: str,
          lo: int, hi: int) -> list[tuple]:
    return db.execute(f"SELECT {', '.join(cols)} FROM {table} "
                      f"WHERE {key} >= ? AND {key} < ? ORDER BY {key}", (lo, hi)).fetchall()


def rows(path: Path, table: str, report: Report) -> Iterator[tuple]:
    """Every row of `table` still readable in the corrupt file at `path`."""
    cols, key = TABLES[table], KEYS.get(table, "id")
    report.rows.setdefault(table, 0)
    report.unreadable.setdefault(table, 0)
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error:
        report.unreadable[table] += 1
        return
    try:
        try:
            lo_hi = db.execute(f"SELECT min({key}), max({key}) FROM {table}").fetchone()
        except sqlite3.Error:
            lo_hi = (1, 0)
            report.unreadable[table] += 1
        lo, hi = lo_hi if lo_hi and lo_hi[0] is not None else (1, 0)
        for start in range(lo, hi + 1, CHUNK):
            try:
                chunk = _read(db, table, cols, key, start, start + CHUNK)
            except sqlite3.Error:  # a bad page in the range: row by row
                chunk = []
                for one in range(start, min(start + CHUNK, hi + 1)):
                    try:
                        chunk += _read(db, table, cols, key, one, one + 1)
                    except sqlite3.Error:
                        report.unreadable[table] += 1
            report.rows[table] += len(chunk)
            yield from chunk
    finally:
        db.close()
