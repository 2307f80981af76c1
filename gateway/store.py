"""The gateway's durable store: SQLite in WAL mode with synchronous=FULL.

A message is acknowledged (to the broker and to the device) only after its
row is committed here. UNIQUE(device, seq) makes `events` the de-duplication
record as well as the outbox; `deliveries` holds one row per (event, sink),
written in the same transaction as the event, that the sink marks when it is
done with it, so after a restart delivery resumes exactly where it stopped.

    events(id, device, seq, kind, type, event_time_ms, device_time_ms,
           gateway_time_ms, age_ms, skew_ms, data, created_ms)  UNIQUE(device, seq)
    deliveries(event_id, sink, delivered_at, outcome, attempts, last_error)
    counters(name, value)           e.g. the downlink seq block reserved
    telemetry(id, device, seq, kind, event_time_ms, gateway_time_ms, data)
                                    the telemetry lane: points for the time series

Sink threads call `relax()`: their bookkeeping (delivery marks, cursors)
commits without an fsync.  A power cut can then forget the last marks, and
the sink delivers those items again, which its receiver takes idempotently
(the centre on device+seq, the time series on the point's own timestamp).
Events and points themselves always commit with synchronous=FULL.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from gateway import salvage

log = logging.getLogger("homeguard.gateway.store")

VERSION = 3  # 3 added the telemetry table (nothing to migrate)
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
    created_ms INTEGER NOT NULL DEFAULT 0,
    UNIQUE (device, seq)
);
CREATE TABLE IF NOT EXISTS deliveries (
    event_id INTEGER NOT NULL REFERENCES events (id),
    sink TEXT NOT NULL,
    delivered_at INTEGER,          -- ms when the sink was done with it, NULL while pending
    outcome TEXT,                  -- accepted | duplicate | refused
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (sink, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (sink, event_id)
    WHERE delivered_at IS NULL;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS telemetry (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,            -- telemetry | heartbeat
    event_time_ms INTEGER NOT NULL,
    gateway_time_ms INTEGER NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (device, seq)
);
CREATE INDEX IF NOT EXISTS telemetry_time ON telemetry (device, event_time_ms);
"""
FAIR_SCAN = 20  # a fair batch is chosen among this many batches' worth of the oldest
FAIR_SCAN_MIN = 10_000  # ... and among at least this many (a burst of thousands fits;
#                         measured ~15-30 ms a batch on this project's 2-core machine)
WAL_LIMIT = 8 << 20  # bytes the WAL is truncated to after a checkpoint
SHED_COUNTER = "shed:telemetry"  # telemetry points the lane shed, ever
SUPERVISION = "supervision"  # events the gateway raises itself (supervision.py)
# version 1 kept one cursor per sink (last event id delivered) and a
# dead_letters table instead of a row per delivery
_FROM_V1 = """
INSERT INTO deliveries (event_id, sink, delivered_at, outcome, last_error)
SELECT e.id, ?1, CASE WHEN e.id <= ?2 THEN 0 END,
       CASE WHEN d.reason IS NOT NULL THEN 'refused' WHEN e.id <= ?2 THEN 'accepted' END,
       d.reason
FROM events e LEFT JOIN dead_letters d ON d.event_id = e.id AND d.sink = ?1
"""
# ids are given, not left to SQLite: a batch takes after+1 .. after+n in its
# order (json_each's key is the index), so the lane knows each point's id
# without reading it back; a (device, seq) stored already leaves its id unused
_INSERT_POINTS = (
    "INSERT OR IGNORE INTO telemetry "
    "(id, device, seq, kind, event_time_ms, gateway_time_ms, data) "
    "SELECT ?2 + key + 1, json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'), "
    "json_extract(value, '$[5]') FROM json_each(?1)")
_LAST_POINT_ID = ("SELECT max(coalesce((SELECT max(id) FROM telemetry), 0), coalesce((SELECT "
                  "max(value) FROM counters WHERE name LIKE 'cursor:%'), 0))")
DONE = ("accepted", "duplicate")  # outcomes that mean the sink has the event


class StoreError(Exception):
    """The store file cannot be used by this gateway; str() says why."""


# slots, not frozen: made for every message, and a frozen dataclass takes
# three times as long to build (treat them as values all the same)
@dataclass(slots=True)
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


@dataclass(slots=True)
class Point:
    """One telemetry or heartbeat message in the telemetry lane."""

    device: str
    seq: int
    kind: str
    event_time_ms: int
    gateway_time_ms: int
    data: dict
    id: int | None = None


@dataclass(slots=True)
class PointBatch:
    """Points one transaction committed, with their ids: it used the ids
    after+1 .. last, and those not among `points` are unused (a (device,
    seq) stored already). Every point with an id up to `after` was
    committed before it, so a reader that has written everything up to
    `after` can go on with `points` without reading the store."""

    after: int
    last: int
    points: list[Point]


_COLUMNS = ("device, seq, kind, type, event_time_ms, device_time_ms, gateway_time_ms, "
            "age_ms, skew_ms, data")


def _now_ms() -> int:
    return int(time.time() * 1000)


class Store:
    """One connection per thread; every write is one committed transaction.

    `sinks` names the sinks every stored event is queued for."""

    def __init__(self, path: Path, sinks: Iterable[str]) -> None:
        self.path = Path(path)
        self.sinks = tuple(sinks)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.salvaged: salvage.Report | None = None  # set when a corrupt store was replaced
        problem = salvage.check(self.path) if self.path.exists() else None
        if problem is None:
            try:
                self._open_schema()
            except sqlite3.DatabaseError as exc:
                if not salvage.is_corruption(exc):
                    raise
                problem = str(exc)
        if problem is not None:
            self._replace_corrupt(problem)

    def _replace_corrupt(self, problem: str) -> None:
        """Move the corrupt file aside, start fresh, copy in what can be read."""
        self.close()
        log.error("store %s is corrupt (%s): moving it aside and salvaging", self.path, problem)
        report = salvage.Report(salvage.quarantine(self.path))
        self._open_schema()
        with self._tx() as db:
            for table, cols in salvage.TABLES.items():
                marks = ",".join("?" * len(cols))
                db.executemany(f"INSERT OR IGNORE INTO {table} ({', '.join(cols)}) "
                               f"VALUES ({marks})", salvage.rows(report.moved_to, table, report))
            # an event whose delivery rows were lost is delivered again (idempotent)
            for sink in self.sinks:
                db.execute("INSERT OR IGNORE INTO deliveries (event_id, sink) SELECT id, ? "
                           "FROM events WHERE id NOT IN (SELECT event_id FROM deliveries "
                           "WHERE sink = ?)", (sink, sink))
            # downlink seqs never go back: if the counter is lost, restart above
            # anything a device can have seen from this gateway
            db.execute("INSERT OR IGNORE INTO counters (name, value) VALUES ('downlink_seq', ?)",
                       (int(time.time()) - 1_735_689_600,))
        self.salvaged = report
        log.error("store %s replaced: %s", self.path, report)

    def relax(self) -> None:
        """This thread's commits skip the fsync (sinks' bookkeeping only)."""
        self._db().execute("PRAGMA synchronous=NORMAL")

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            # the WAL is checkpointed every ~4 MB (SQLite's default) and cut back
            # to this size after, so recovering from a full disk needs only that
            db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
            self._local.db = db
        return db

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT) on this thread's connection."""
        return self._tx()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _open_schema(self) -> None:
        db = self._db()
        if db.execute("PRAGMA user_version").fetchone()[0] == VERSION:
            return  # up to date: start without a write (the disk may be full)
        with self._tx() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            old = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'cursors'").fetchone()
            if version > VERSION:
                raise StoreError(f"{self.path}: store version {version} is newer than this "
                                 f"gateway ({VERSION}); use a newer gateway or another data_dir")
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            if old:
                self._from_v1(db)
            db.execute(f"PRAGMA user_version = {VERSION}")

    def _from_v1(self, db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE events ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0")
        for sink in self.sinks:
            row = db.execute("SELECT last_id FROM cursors WHERE sink = ?", (sink,)).fetchone()
            db.execute(_FROM_V1, (sink, row[0] if row else 0))
        db.execute("DROP TABLE cursors")
        db.execute("DROP TABLE dead_letters")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def insert(self, e: Event, point: Point | None = None) -> bool:
        """Store a new event and queue it for every sink, in one transaction
        (with its point in the telemetry lane, when given);
        False when (device, seq) is already stored."""
        return self.insert_many([(e, point)])[0]

    def insert_many(self, items: Sequence[tuple[Event, Point | None]]) -> list[bool]:
        """insert() for a batch in one transaction (one fsync): True per new event."""
        with self._tx() as db:
            return [self._insert(db, e, point) for e, point in items]

    def _insert(self, db: sqlite3.Connection, e: Event, point: Point | None) -> bool:
        if point is not None:
            self._insert_points(db, [point])
        cur = db.execute(
            f"INSERT OR IGNORE INTO events ({_COLUMNS}, created_ms) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (e.device, e.seq, e.kind, e.type, e.event_time_ms, e.device_time_ms,
             e.gateway_time_ms, e.age_ms, e.skew_ms, json.dumps(e.data, sort_keys=True),
             _now_ms()),
        )
        if cur.rowcount != 1:
            return False
        db.executemany("INSERT INTO deliveries (event_id, sink) VALUES (?, ?)",
                       [(cur.lastrowid, sink) for sink in self.sinks])
        return True

    def recent_seqs(self, window: int) -> Iterator[tuple[str, int]]:
        """(device, seq) of every stored seq within `window` of its device's highest."""
        return self._db().execute(
            "WITH s AS (SELECT device, seq FROM events WHERE kind != ? "
            "UNION SELECT device, seq FROM telemetry) "
            "SELECT s.device, s.seq FROM s JOIN "
            "(SELECT device, max(seq) AS top FROM s GROUP BY device) h "
            "ON h.device = s.device WHERE s.seq > h.top - ?", (SUPERVISION, window))

    def content_of(self, device: str, seq: int
                   ) -> tuple[str, str, int | None, dict, int] | None:
        """(kind, type, ts, data, event_time_ms) of what is stored under the
        device's (device, seq), an event or a telemetry point; None when nothing is."""
        db = self._db()
        row = db.execute("SELECT kind, type, device_time_ms, data, event_time_ms FROM events "
                         "WHERE device = ? AND seq = ?", (device, seq)).fetchone()
        if row is None:
            # the lane keeps points without their type (always `periodic`) or ts
            row = db.execute("SELECT kind, 'periodic', NULL, data, event_time_ms FROM telemetry "
                             "WHERE device = ? AND seq = ?", (device, seq)).fetchone()
        if row is None:
            return None
        return row[0], row[1], row[2], json.loads(row[3]), row[4]

    def recent_events(self, window: int, kinds: Iterable[str]
                      ) -> Iterator[tuple[str, int, str, str, int | None, dict]]:
        """(device, seq, kind, type, ts, data) of the stored events of `kinds`
        within `window` of their device's highest seq (to refill shared de-dup)."""
        kinds = tuple(kinds)
        marks = ",".join("?" * len(kinds))
        rows = self._db().execute(
            "WITH h AS (SELECT device, max(seq) AS top FROM events WHERE kind != ? "
            "GROUP BY device) "
            "SELECT e.device, e.seq, e.kind, e.type, e.device_time_ms, e.data FROM events e "
            f"JOIN h ON h.device = e.device WHERE e.kind IN ({marks}) AND e.seq > h.top - ?",
            (SUPERVISION, *kinds, window))
        for device, seq, kind, typ, ts, data in rows:
            yield device, seq, kind, typ, ts, json.loads(data)

    def pending(self, sink: str, limit: int, per_device: int = 0,
                first: Iterable[str] = (), skip: Collection[str] = ()) -> list[Event]:
        """Events `sink` has not finished with, oldest first; each device's
        own events always in store order.

        With per_device, the batch is fair: among the oldest FAIR_SCAN x limit
        (at least FAIR_SCAN_MIN) pending events, every device's first, then
        every device's second, ... up to per_device each (kinds in `first`
        ahead of the rest at each step), then the batch fills up in store
        order. So a device flooding thousands of events delays another
        device's alarm by one batch, not by its whole backlog. Devices in
        `skip` (with per_device only) are left out: another request has them."""
        if not per_device:
            rows = self._db().execute(
                f"SELECT e.id, {_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id "
                "WHERE d.sink = ? AND d.delivered_at IS NULL ORDER BY d.event_id LIMIT ?",
                (sink, limit))
        else:
            kinds, skipped = tuple(first), tuple(skip)
            marks = ",".join("?" * len(kinds)) or "NULL"
            # (NOT IN of an empty list is not SQL; NOT IN (NULL) would drop every row)
            others = f"WHERE e.device NOT IN ({','.join('?' * len(skipped))})" if skipped else ""
            rows = self._db().execute(
                f"WITH p AS (SELECT d.event_id FROM deliveries d WHERE d.sink = ? "
                f"AND d.delivered_at IS NULL ORDER BY d.event_id LIMIT ?), "
                f"r AS (SELECT e.id, {_COLUMNS}, ROW_NUMBER() OVER "
                f"(PARTITION BY e.device ORDER BY e.id) AS rn FROM p JOIN events e "
                f"ON e.id = p.event_id {others}) "
                f"SELECT id, {_COLUMNS} FROM r ORDER BY rn > ?, rn, kind NOT IN ({marks}), "
                f"id LIMIT ?",
                (sink, max(FAIR_SCAN * limit, FAIR_SCAN_MIN), *skipped, per_device, *kinds,
                 limit))
        return [Event(id=r[0], device=r[1], seq=r[2], kind=r[3], type=r[4],
                      event_time_ms=r[5], device_time_ms=r[6], gateway_time_ms=r[7],
                      age_ms=r[8], skew_ms=r[9], data=json.loads(r[10])) for r in rows]

    def mark_done(self, sink: str, outcomes: Iterable[tuple[int, str]],
                  error: str | None = None) -> None:
        """Record (event id, outcome) pairs as finished by `sink`, in one transaction."""
        with self._tx() as db:
            db.executemany(
                "UPDATE deliveries SET delivered_at = ?, outcome = ?, attempts = attempts + 1, "
                "last_error = coalesce(?, last_error) WHERE sink = ? AND event_id = ?",
                [(_now_ms(), outcome, error, sink, eid) for eid, outcome in outcomes])

    def mark_failed(self, sink: str, event_ids: Iterable[int], error: str) -> None:
        """Count a failed attempt on events still pending for `sink`."""
        with self._tx() as db:
            db.executemany(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ? "
                "WHERE sink = ? AND event_id = ? AND delivered_at IS NULL",
                [(error[:500], sink, eid) for eid in event_ids])

    def delivery(self, sink: str, device: str, seq: int) -> dict | None:
        """The delivery row of (device, seq) for `sink`, or None."""
        row = self._db().execute(
            "SELECT d.delivered_at, d.outcome, d.attempts, d.last_error FROM deliveries d "
            "JOIN events e ON e.id = d.event_id WHERE d.sink = ? AND e.device = ? AND e.seq = ?",
            (sink, device, seq)).fetchone()
        if row is None:
            return None
        return dict(zip(("delivered_at", "outcome", "attempts", "last_error"), row, strict=True))

    def delivered(self, sink: str, device: str, seq: int) -> bool:
        """True when `sink` has (device, seq): accepted, or reported a duplicate."""
        d = self.delivery(sink, device, seq)
        return d is not None and d["outcome"] in DONE

    def backlog(self, sink: str) -> tuple[int, int | None]:
        """(events not yet delivered by sink, gateway time of the oldest)."""
        row = self._db().execute(
            "SELECT count(*), min(e.gateway_time_ms) FROM deliveries d "
            "JOIN events e ON e.id = d.event_id WHERE d.sink = ? AND d.delivered_at IS NULL",
            (sink,)).fetchone()
        return int(row[0]), row[1]

    def reserve(self, name: str, block: int) -> int:
        """Reserve the next block of a persisted counter; returns its first value."""
        with self._tx() as db:
            row = db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
            start = int(row[0]) if row else 1
            db.execute("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)",
                       (name, start + block))
        return start

    # --- the telemetry lane -----------------------------------------------------

    @staticmethod
    def _insert_points(db: sqlite3.Connection, points: list[Point]) -> PointBatch:
        # the whole batch as one JSON parameter and one statement: SQLite walks
        # it in C, where executemany() would drop and retake the GIL per row
        # (and wait for the MQTT thread each time)
        # data comes from verified messages, whose keys are sorted (canonical)
        # never below a saved cursor: had retention deleted the newest rows,
        # SQLite would give their ids again, and a sink would skip them
        after = db.execute(_LAST_POINT_ID).fetchone()[0]
        rows = json.dumps([[p.device, p.seq, p.kind, p.event_time_ms, p.gateway_time_ms,
                            p.data] for p in points], separators=(",", ":"))
        new = db.execute(_INSERT_POINTS, (rows, after)).rowcount
        n = len(points)
        for i, p in enumerate(points, after + 1):
            p.id = i
        if new != n:  # some were stored already: the batch is the new ones
            ids = {r[0] for r in db.execute("SELECT id FROM telemetry WHERE id > ?", (after,))}
            points = [p for p in points if p.id in ids]
        return PointBatch(after, after + n, points)

    def insert_points(self, points: list[Point], shed: int = 0) -> PointBatch:
        """Commit a batch of points in one transaction, adding `shed` to the
        durable count of points shed on purpose; the new points, with their ids."""
        with self._tx() as db:
            if shed:
                db.execute("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) "
                           "DO UPDATE SET value = value + excluded.value", (SHED_COUNTER, shed))
            return self._insert_points(db, points)

    def counter(self, name: str) -> int:
        row = self._db().execute("SELECT value FROM counters WHERE name = ?",
                                 (name,)).fetchone()
        return int(row[0]) if row else 0

    def points_after(self, after_id: int, limit: int, upto: int | None = None) -> list[Point]:
        """Points of the lane with after_id < id (<= upto, when given), in id order."""
        rows = self._db().execute(
            "SELECT id, device, seq, kind, event_time_ms, gateway_time_ms, data FROM telemetry "
            "WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
            (after_id, 2**63 - 1 if upto is None else upto, limit))
        return [Point(id=r[0], device=r[1], seq=r[2], kind=r[3], event_time_ms=r[4],
                      gateway_time_ms=r[5], data=json.loads(r[6])) for r in rows]

    def points_of(self, device: str, since_ms: int, limit: int) -> list[dict]:
        """A device's points from since_ms on, oldest first (for charts).

        Runs on a short-lived read-only connection: HTTP threads come and go."""
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            rows = db.execute(
                "SELECT event_time_ms, kind, data FROM telemetry WHERE device = ? "
                "AND event_time_ms >= ? ORDER BY event_time_ms LIMIT ?",
                (device, since_ms, limit)).fetchall()
        finally:
            db.close()
        return [{"t": r[0], "kind": r[1], "data": json.loads(r[2])} for r in rows]

    def cursor(self, sink: str) -> int:
        """Last lane id `sink` has written (0 before the first)."""
        row = self._db().execute("SELECT value FROM counters WHERE name = ?",
                                 ("cursor:" + sink,)).fetchone()
        return int(row[0]) if row else 0

    def set_cursor(self, sink: str, last_id: int) -> None:
        """Save the cursor (sink threads save without an fsync: relax())."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)",
                       ("cursor:" + sink, last_id))

    def points_backlog(self, after_id: int) -> tuple[int, int | None]:
        """(points after after_id, e.g. a sink's cursor; gateway time of the oldest)."""
        row = self._db().execute(
            "SELECT count(*), min(gateway_time_ms) FROM telemetry WHERE id > ?",
            (after_id,)).fetchone()
        return int(row[0]), row[1]

    def last_supervision(self) -> Iterator[tuple[str, str, int]]:
        """(device, type, seq) of the latest supervision event of every device
        (by store order: the gateway's own seqs are negative, docs/gateway.md)."""
        return self._db().execute(
            "SELECT device, type, seq FROM events WHERE id IN "
            "(SELECT max(id) FROM events WHERE kind = ? GROUP BY device)",
            (SUPERVISION,))

    def last_alive_ms(self) -> int | None:
        """The gateway time of the newest thing this store holds (an event, a
        point, a health check): the last moment its gateway is known to
        have consumed its broker session."""
        db = self._db()
        times = [r[0] for r in (
            db.execute("SELECT gateway_time_ms FROM events WHERE kind != ? "
                       "ORDER BY id DESC LIMIT 1", (SUPERVISION,)).fetchone(),
            db.execute("SELECT gateway_time_ms FROM telemetry ORDER BY id DESC LIMIT 1"
                       ).fetchone(),
            db.execute("SELECT value FROM counters WHERE name = 'health_ms'").fetchone(),
        ) if r is not None]
        return max(times, default=None)

    def touch(self) -> None:
        """Commit a small write (the /health check that the store is writable)."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO counters (name, value) VALUES ('health_ms', ?)",
                       (_now_ms(),))
