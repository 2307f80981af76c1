"""The gateway's durable store: SQLite in WAL mode with synchronous=FULL.

A message is acknowledged (to the broker and to the device) only after its
row is committed here. UNIQUE(device, seq) is both the outbox and the
de-duplication record; each sink keeps a cursor (the last event id it has
delivered), so after a restart delivery resumes exactly where it stopped.

    events(id, device, seq, kind, type, event_time_ms, device_time_ms,
           gateway_time_ms, age_ms, skew_ms, data)       UNIQUE(device, seq)
    cursors(sink, last_id)          last event id each sink has delivered
    dead_letters(event_id, sink, reason, at_ms)   refused for good by a sink
    counters(name, value)           e.g. the downlink seq block reserved
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    type TEXT NOT NULL,
    event_time_ms INTEGER NOT NULL,
    device_time_ms INTEGER,
    gateway_time_ms INTEGER NOT NULL,
    age_ms INTEGER NOT NULL,
    skew_ms INTEGER,
    data TEXT NOT NULL,
    UNIQUE (device, seq)
);
CREATE TABLE IF NOT EXISTS cursors (sink TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    event_id INTEGER NOT NULL, sink TEXT NOT NULL, reason TEXT NOT NULL, at_ms INTEGER NOT NULL,
    PRIMARY KEY (event_id, sink)
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Event:
    """One verified, timestamped device message, as stored and forwarded."""

    device: str
    seq: int
    kind: str
    type: str
    event_time_ms: int
    device_time_ms: int | None
    gateway_time_ms: int
    age_ms: int
    skew_ms: int | None
    data: dict
    id: int | None = None

    def to_centre(self) -> dict:
        return {
            "device": self.device, "seq": self.seq, "kind": self.kind, "type": self.type,
            "event_time_ms": self.event_time_ms, "device_time_ms": self.device_time_ms,
            "gateway_time_ms": self.gateway_time_ms, "age_ms": self.age_ms,
            "skew_ms": self.skew_ms, "data": self.data,
        }


_COLUMNS = ("device, seq, kind, type, event_time_ms, device_time_ms, gateway_time_ms, "
            "age_ms, skew_ms, data")


class Store:
    """One connection per thread; every write is its own committed transaction."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._db() as db:
            db.executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def insert(self, e: Event) -> bool:
        """Store a new event; False when (device, seq) is already stored."""
        cur = self._db().execute(
            f"INSERT OR IGNORE INTO events ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (e.device, e.seq, e.kind, e.type, e.event_time_ms, e.device_time_ms,
             e.gateway_time_ms, e.age_ms, e.skew_ms, json.dumps(e.data, sort_keys=True)),
        )
        return cur.rowcount == 1

    def highest_seqs(self) -> dict[str, int]:
        rows = self._db().execute("SELECT device, max(seq) FROM events GROUP BY device")
        return {dev: seq for dev, seq in rows}

    def pending(self, sink: str, limit: int) -> list[Event]:
        rows = self._db().execute(
            f"SELECT id, {_COLUMNS} FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (self.cursor(sink), limit),
        )
        return [Event(id=r[0], device=r[1], seq=r[2], kind=r[3], type=r[4],
                      event_time_ms=r[5], device_time_ms=r[6], gateway_time_ms=r[7],
                      age_ms=r[8], skew_ms=r[9], data=json.loads(r[10])) for r in rows]

    def cursor(self, sink: str) -> int:
        row = self._db().execute("SELECT last_id FROM cursors WHERE sink = ?", (sink,)).fetchone()
        return int(row[0]) if row else 0

    def advance(self, sink: str, last_id: int) -> None:
        self._db().execute(
            "INSERT INTO cursors (sink, last_id) VALUES (?, ?) "
            "ON CONFLICT(sink) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
            (sink, last_id),
        )

    def delivered(self, sink: str, device: str, seq: int) -> bool:
        """True when sink has delivered (device, seq): at or below its cursor and
        not set aside as a dead letter."""
        row = self._db().execute(
            "SELECT 1 FROM events e WHERE device = ? AND seq = ? AND id <= ? AND NOT EXISTS "
            "(SELECT 1 FROM dead_letters d WHERE d.event_id = e.id AND d.sink = ?)",
            (device, seq, self.cursor(sink), sink),
        ).fetchone()
        return row is not None

    def dead_letter(self, event_id: int, sink: str, reason: str, at_ms: int) -> None:
        self._db().execute(
            "INSERT OR REPLACE INTO dead_letters (event_id, sink, reason, at_ms) VALUES (?,?,?,?)",
            (event_id, sink, reason, at_ms),
        )

    def backlog(self, sink: str) -> tuple[int, int | None]:
        """(events not yet delivered by sink, gateway time of the oldest)."""
        row = self._db().execute(
            "SELECT count(*), min(gateway_time_ms) FROM events WHERE id > ?", (self.cursor(sink),)
        ).fetchone()
        return int(row[0]), row[1]

    def reserve(self, name: str, block: int) -> int:
        """Reserve the next block of a persisted counter; returns its first value."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
            start = int(row[0]) if row else 1
            db.execute("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)",
                       (name, start + block))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return start
