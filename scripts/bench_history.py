"""Benchmark: history search on a PostgreSQL store of N alarms (default
1,000,000).  Seeds the store in SQL (generate_series: households, devices,
events, alarms over two years, two audit rows per closed alarm), then
prints, for each main filter, the time of the first page (50 rows) and of
the true total (COUNT), over all time and over the last 30 days; the same
for the event history over as many other events (nine in ten heartbeats).

    .venv/bin/python scripts/bench_history.py --db postgresql+psycopg://hg@127.0.0.1:5432/bench

The database should be empty (it is migrated to head first); figures go in
docs/benchmarks.md.  A benchmark prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboard import history, history_events  # noqa: E402
from dashboard.db import create_tables, make_engine, make_sessions  # noqa: E402

T_END = 1_795_000_000_000  # the newest alarm's created_ms
SPAN_MS = 730 * 86_400_000
TYPES = ("fire", "medical", "security", "panic", "tamper", "low_battery", "offline",
         "residual_current")
OPERATORS = 10

# the main filters (the benchmark and the query-plan test read these)
FILTERS = {
    "none": history.Filters(),
    "type": history.Filters(types=("fire",)),
    "device": history.Filters(device="hg-b-00042"),
    "outcome": history.Filters(outcomes=("false",)),
    "closed": history.Filters(status="closed"),
    "open": history.Filters(status="open"),
    "community": history.Filters(community="社区1"),
    "grid cell": history.Filters(grid_cell="G07"),
    "household": history.Filters(household="H00042"),
    "operator": history.Filters(operator="op3"),
    "type+community+closed": history.Filters(types=("fire",), community="社区2",
                                             status="closed"),
}

SEED = [
    """INSERT INTO users (username, password_hash, role, display_name, active, created_ms)
       SELECT 'op' || g, 'x', 'operator', '', TRUE, 0 FROM generate_series(0, :ops - 1) g""",
    """INSERT INTO grid_cells (code, name, community, worker_name, worker_phone)
       SELECT 'G' || lpad(g::text, 2, '0'), 'cell ' || g, '社区' || (g % 5), '', ''
       FROM generate_series(0, 19) g""",
    """INSERT INTO households (code, address, compound, community, grid_cell_id, note)
       SELECT 'H' || lpad(g::text, 5, '0'), g || ' 号', '小区' || (g % 50), c.community, c.id, ''
       FROM generate_series(0, :households - 1) g
       JOIN grid_cells c ON c.code = 'G' || lpad((g % 20)::text, 2, '0')""",
    """INSERT INTO devices (device_id, type, board, firmware, household_id, key_ref, created_ms)
       SELECT 'hg-b-' || lpad(g::text, 5, '0'), 'button', '', '', h.id, 'centre', 0
       FROM generate_series(0, :devices - 1) g
       JOIN households h ON h.code = 'H' || lpad((g % :households)::text, 5, '0')""",
    """INSERT INTO events (id, device_id, seq, kind, type, event_time_ms, device_time_ms,
         gateway_time_ms, received_ms, age_ms, skew_ms, data, gateway)
       SELECT g, 'hg-b-' || lpad((g % :devices)::text, 5, '0'), g, 'alarm',
         (CAST(:types AS text[]))[g % 8 + 1], :t0 + g * :step, :t0 + g * :step,
         :t0 + g * :step + 500, :t0 + g * :step + 700, 500, 0, '{}', 'gw-1'
       FROM generate_series(CAST(1 AS bigint), CAST(:n AS bigint)) g""",
    """INSERT INTO alarms (id, event_id, device_id, type, priority, state, created_ms, outcome,
         acked_ms, verified_ms, resolved_ms)
       SELECT g, g, 'hg-b-' || lpad((g % :devices)::text, 5, '0'),
         (CAST(:types AS text[]))[g % 8 + 1], g % 4 + 1, s.state, s.t,
         CASE WHEN s.state IN ('received', 'acknowledged') OR g % 20 = 19 THEN NULL
              WHEN g % 10 < 3 THEN 'false' WHEN g % 10 = 3 THEN 'test' ELSE 'genuine' END,
         CASE WHEN s.state = 'received' THEN NULL ELSE s.t + 5000 + (g % 60) * 1000 END,
         CASE WHEN s.state IN ('received', 'acknowledged') THEN NULL
              ELSE s.t + 35000 + (g % 60) * 1000 END,
         CASE WHEN s.state = 'resolved' THEN s.t + 600000 END
       FROM generate_series(CAST(1 AS bigint), CAST(:n AS bigint)) g,
         LATERAL (SELECT :t0 + g * :step + 700 AS t,
                  CASE WHEN g <= :n - :n / 100 THEN 'resolved'
                       ELSE (ARRAY['received', 'acknowledged', 'verified',
                                   'dispatched'])[g % 4 + 1] END AS state) s""",
    """INSERT INTO alarm_audit (alarm_id, at_ms, user_id, username, action, from_state,
         to_state, note)
       SELECT a.id, a.acked_ms, u.id, u.username, 'ack', 'received', 'acknowledged', ''
       FROM alarms a JOIN users u ON u.username = 'op' || (a.id % :ops)
       WHERE a.acked_ms IS NOT NULL""",
    """INSERT INTO alarm_audit (alarm_id, at_ms, user_id, username, action, from_state,
         to_state, note)
       SELECT a.id, a.resolved_ms, u.id, u.username, 'resolve', 'verified', 'resolved', ''
       FROM alarms a JOIN users u ON u.username = 'op' || ((a.id + 1) % :ops)
       WHERE a.resolved_ms IS NOT NULL""",
    # as many events that are not alarms, nine in ten heartbeats (which the
    # event history never shows), one in ten of its kinds in turn
    """INSERT INTO events (id, device_id, seq, kind, type, event_time_ms, device_time_ms,
         gateway_time_ms, received_ms, age_ms, skew_ms, data, gateway)
       SELECT :n + g, 'hg-b-' || lpad((g / 10 % :devices)::text, 5, '0'), :n + g,
         CASE WHEN g % 10 = 0 THEN (CAST(:kinds AS text[]))[g / 10 % 5 + 1]
              ELSE 'heartbeat' END,
         'periodic', :t0 + g * :step, :t0 + g * :step, :t0 + g * :step + 500,
         :t0 + g * :step + 700, 500, 0, '{}', 'gw-1'
       FROM generate_series(CAST(1 AS bigint), CAST(:n AS bigint)) g""",
    "SELECT setval(pg_get_serial_sequence('events', 'id'), 2 * :n)",
    "SELECT setval(pg_get_serial_sequence('alarms', 'id'), :n)",
]
# the event history's main filters (the benchmark and the query-plan test)
EVENT_FILTERS = {
    "none": history_events.Filters(),
    "kind": history_events.Filters(kinds=("restore",)),
    "device": history_events.Filters(device="hg-b-00042"),
    "community": history_events.Filters(community="社区1"),
    "kind+grid cell": history_events.Filters(kinds=("fault", "test"), grid_cell="G07"),
}


def seed(conn: Connection, n: int) -> int:
    """Fill an empty, migrated PostgreSQL store with n alarms (and their
    events, places and audit rows) and n other events over two years;
    returns the newest alarm's created_ms."""
    step = SPAN_MS // n
    devices = max(10, min(4000, n // 10))
    params: dict[str, Any] = {
        "n": n, "step": step, "t0": T_END - n * step - 700, "types": list(TYPES),
        "ops": OPERATORS, "devices": devices, "households": max(5, devices // 2),
        "kinds": list(history_events.KINDS),
    }
    for sql in SEED:
        conn.execute(text(sql), params)
    return T_END


def timed(fn: Any, repeat: int = 5) -> float:
    """The median of `repeat` runs, in ms (the first run warms the cache)."""
    fn()
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t) * 1000)
    return statistics.median(runs)


def figures(session: Any, search: Any, filters: dict[str, Any], month: int) -> None:
    """One line per filter and range: the total, the page's and the COUNT's
    time; `search` is history or history_events (their total and page)."""
    for name, f in filters.items():
        for label, since in (("all", None), ("30 d", month)):
            ff = type(f)(**{**vars(f), "since_ms": since})
            found = search.total(session, ff)
            page_ms = timed(lambda ff=ff: search.page(session, ff, None, 50))
            count_ms = timed(lambda ff=ff: search.total(session, ff))
            print(f"{name:<24}{label:>8}{found:>10,}{page_ms:>10.1f}{count_ms:>10.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True, help="an empty PostgreSQL database's URL")
    ap.add_argument("--alarms", type=int, default=1_000_000)
    args = ap.parse_args()
    engine = make_engine(args.db)
    create_tables(engine)
    t = time.perf_counter()
    with engine.begin() as conn:
        t_end = seed(conn, args.alarms)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    print(f"seeded {args.alarms:,} alarms in {time.perf_counter() - t:.0f} s")
    sessions = make_sessions(engine)
    month = t_end - 30 * 86_400_000
    print(f"{'filter':<24}{'range':>8}{'total':>10}{'page ms':>10}{'count ms':>10}")
    with sessions() as session:
        figures(session, history, FILTERS, month)
        print("events (history_events.py):")
        figures(session, history_events, EVENT_FILTERS, month)
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
