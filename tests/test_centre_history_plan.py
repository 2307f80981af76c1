"""History search's query plans on a real PostgreSQL: over 60,000 seeded
alarms (scripts/bench_history.py's seed, VACUUM ANALYZE), the page and the
COUNT of every main filter, over all time and the last 30 days, read along
an index: no Seq Scan on alarms; the event history's page over 60,000 other
events (nine in ten heartbeats) along its partial indexes.
HG_PRINT_PLANS=1 prints the plans."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import text

from dashboard import history, history_events
from dashboard.db import create_tables, make_engine
from scripts.bench_history import EVENT_FILTERS, FILTERS, seed

PRINT_PLANS = bool(os.environ.get("HG_PRINT_PLANS"))


def _plan(conn: Any, stmt: Any) -> str:
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    return "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + sql)))


def test_postgres_reads_every_main_filter_along_an_index(postgres: Any) -> None:
    engine = make_engine(postgres.fresh_database())
    try:
        create_tables(engine)  # migrated to head
        with engine.begin() as conn:
            t_end = seed(conn, 60_000)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE")
            month = t_end - 30 * 86_400_000
            for name, f in FILTERS.items():
                for since in (None, month):
                    ff = history.Filters(**{**vars(f), "since_ms": since})
                    for what, stmt in (("page", history.page_query(ff, None, 50)),
                                       ("count", history.count_query(ff))):
                        plan = _plan(conn, stmt)
                        if PRINT_PLANS:
                            print(name, since, what, plan, sep="\n")
                        assert "Seq Scan on alarms" not in plan, (name, since, what, plan)
                        assert "Index" in plan, (name, since, what, plan)
            for ef in EVENT_FILTERS.values():
                for since in (None, month):
                    fe = history_events.Filters(**{**vars(ef), "since_ms": since})
                    plan = _plan(conn, history_events.page_query(fe, None, 50))
                    if PRINT_PLANS:
                        print("events", fe, plan, sep="\n")
                    # along the partial indexes: the heartbeats are never read
                    assert "Seq Scan on events" not in plan, (fe, plan)
                    assert "ix_events_history" in plan, (fe, plan)
    finally:
        engine.dispose()
