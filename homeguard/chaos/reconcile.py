"""Reconciliation from outside, from journals that survive a kill -9:

- what the devices' apps sent and what the broker acknowledged to them: the
  fleet's report (homeguard simulate, written when its run ends);
- what the centre stored: its alarm store (`events` of kind alarm), read
  through its SQLAlchemy URL (SQLite or PostgreSQL);
- what the gateway kept of the telemetry: its store's `telemetry` table and
  the lane's durable shed counter (`counters`, committed with the points).

The counting is pure (`alarms`, `telemetry`, `latency`) so it can be checked
without servers.  The gateway's own supervision alarms (negative seqs) are
left out.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

from gateway.store import SHED_COUNTER
from homeguard.bench.report import percentiles
from homeguard.chaos.faults import Fault

Key = tuple[str, int]  # (device, seq): an event's identity
SAMPLE = 20  # identities listed in the result when some are lost or unexpected
# after another fault ends, boards take this long to be back on their links
# (the firmware's reconnect backoff with an alarm waiting is 4-8 s)
REJOIN_MS = 10_000


@dataclass(frozen=True)
class Stored:
    """One alarm event in the centre's store."""
    device: str
    seq: int
    event_time_ms: int  # the device's time of the event (else gateway time - age)
    received_ms: int  # the centre's clock when it arrived


def sent_alarms(report: dict) -> set[Key]:
    return {(dev, seq) for dev, rep in report["devices"].items() for seq in rep["alarms"]}


def acked_stored(report: dict) -> set[Key]:
    """Alarms the gateway acked `stored` to the device (it may drop them from flash)."""
    return {(dev, seq) for dev, rep in report["devices"].items() for seq in rep["stored"]}


def acked_telemetry(report: dict) -> set[Key]:
    return {(dev, seq) for dev, rep in report["devices"].items()
            for seq in rep["telemetry_seqs"]}


FLEET_ALARMS = "FROM events WHERE kind = 'alarm' AND seq > 0 AND device_id LIKE :p"


def centre_alarms(db_url: str, prefix: str) -> list[Stored]:
    """Every alarm event of the fleet's devices in the centre's store."""
    rows = _query(db_url, "SELECT device_id, seq, event_time_ms, received_ms " + FLEET_ALARMS,
                  prefix)
    return [Stored(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows]


def centre_alarm_count(db_url: str, prefix: str) -> int:
    return int(_query(db_url, "SELECT COUNT(*) " + FLEET_ALARMS, prefix)[0][0])


def _query(db_url: str, sql: str, prefix: str) -> list:
    engine = create_engine(db_url)
    try:
        with engine.connect() as db:
            return list(db.execute(text(sql), {"p": f"{prefix}-%"}))
    finally:
        engine.dispose()


def gateway_telemetry(db: Path) -> tuple[set[Key], int]:
    """(device, seq) of every point in the gateway's store, and its shed count."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        kept = {(d, int(s)) for d, s in conn.execute("SELECT device, seq FROM telemetry")}
        row = conn.execute("SELECT value FROM counters WHERE name = ?",
                           (SHED_COUNTER,)).fetchone()
    return kept, int(row[0]) if row else 0


def in_flash(report: dict) -> set[Key]:
    """Alarms still in a board's flash outbox when the fleet's run ended: not
    at the centre yet, not lost either (the board sends them when it runs)."""
    return {(dev, seq) for dev, rep in report["devices"].items()
            for seq in rep.get("in_flash_at_end", ())}


def alarms(sent: set[Key], stored: list[Stored], acked: set[Key],
           flash: frozenset[Key] | set[Key] = frozenset()) -> dict:
    """Sent vs stored: lost (sent, not at the centre and not in the board's
    flash; of which the gateway had acked `stored`), still in flash at the
    end, duplicates (an identity stored more than once) and unexpected (at
    the centre, never sent by an app)."""
    keys = Counter((s.device, s.seq) for s in stored)
    missing, unexpected = sent - set(keys), set(keys) - sent
    lost = missing - flash
    return {"pressed": len(sent), "at_centre": len(set(keys) & sent), "lost": len(lost),
            "in_flash_at_end": len(missing & flash),
            "lost_after_stored_ack": len(lost & acked),
            "duplicates": sum(n - 1 for n in keys.values()), "unexpected": len(unexpected),
            "lost_sample": sorted(lost)[:SAMPLE], "unexpected_sample": sorted(unexpected)[:SAMPLE]}


def telemetry(acked: set[Key], kept: set[Key], shed: int) -> dict:
    """Every point the broker acknowledged is in the gateway's store, unless
    the gateway counted it as shed: lost = missing beyond the shed count."""
    missing = len(acked - kept)
    return {"acked_by_broker": len(acked), "stored": len(acked & kept), "missing": missing,
            "shed": shed, "lost": max(0, missing - shed)}


def latency(sent: set[Key], stored: Iterable[Stored], faults: list[Fault]) -> dict:
    """Press (the event's time) -> centre (received) in ms, for alarms pressed
    while a fault was in force (from its start until the part was back) and
    for the others; and by the kind of fault in force (an alarm pressed
    while two were counts for both).

    `after_back`: for alarms pressed while one kind of fault was in force
    and no other was, nor had ended less than REJOIN_MS before (the boards
    would still be reconnecting from it), the ms from the moment that part
    was back (or the press, if later) to the centre: what a fault costs
    beyond the part's own down and restart time."""
    windows = [(f.kind, f.start_ms, f.end_ms if f.end_ms is not None else f.start_ms)
               for f in faults]
    inside: list[float] = []
    outside: list[float] = []
    by_kind: dict[str, list[float]] = {kind: [] for kind, _, _ in windows}
    after_back: dict[str, list[float]] = {kind: [] for kind, _, _ in windows}
    for s in stored:
        if (s.device, s.seq) in sent:
            ms = s.received_ms - s.event_time_ms
            covering = [(kind, b) for kind, a, b in windows if a <= s.event_time_ms <= b]
            kinds = {kind for kind, _ in covering}
            (inside if kinds else outside).append(ms)
            for kind in kinds:
                by_kind[kind].append(ms)
            if len(kinds) == 1:
                (kind,) = kinds
                others = any(k != kind and a <= s.event_time_ms <= b + REJOIN_MS
                             for k, a, b in windows)
                if not others:
                    back = max(b for _, b in covering)
                    after_back[kind].append(s.received_ms - max(back, s.event_time_ms))
    return {"inside_outages": percentiles(inside), "outside_outages": percentiles(outside),
            "all": percentiles(inside + outside),
            "by_fault": {kind: percentiles(v) for kind, v in sorted(by_kind.items())},
            "after_back": {kind: percentiles(v) for kind, v in sorted(after_back.items())}}


def faults_by_kind(faults: list[Fault], totals: dict, links_cut: int) -> dict:
    """Driver faults by kind, and what happened on the devices (the fleet's totals)."""
    out: dict = dict(Counter(f.kind for f in faults))
    out.update(device_reboots=totals.get("reboots", 0),
               events_in_flash_at_reboot=totals.get("in_flash_at_reboot", 0),
               device_link_losses=totals.get("outages", 0), proxy_cuts_with_links=links_cut)
    return out
