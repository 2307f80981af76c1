"""The centre's schema migrations (Alembic, dashboard/migrate.py), on SQLite
and on a real PostgreSQL: a store made by the previous release (c5f2424,
its DDL kept in tests/schemas/) upgrades with its rows kept; fresh and
upgraded stores both equal the models (no autogenerate difference);
`homeguard centre` refuses a store that needs migrating with one line, and
`homeguard centre migrate` migrates it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

from dashboard import migrate
from dashboard.app import create_app
from dashboard.db import make_engine, schema_change
from dashboard.migrations import baseline
from dashboard.settings import Settings
from dashboard.users import hash_password
from tests.harness.proc import LOOPBACK, Proc, free_port

HOMEGUARD = Path(sys.executable).parent / "homeguard"
SCHEMAS = Path(__file__).parent / "schemas"
TOKEN = "gw-migrate-token-1"
OPERATOR, PASSWORD = "olga", "olga-password-1"
HEAD = "0010"
# what the revisions after 0002 add as tables (0003: login throttling, 0004: gateway
# credentials; 0005 adds columns only: alarm claims)
TABLES_AFTER_0002 = ("auth_audit", "login_locks", "rate_limits", "gateway_credentials")
# what 0008 (action plans) adds as tables, dependents first
TABLES_AFTER_0007 = ("alarm_steps", "action_plans")
# what 0005 (alarm claims), 0007 (registry places) and 0009 (grid workers'
# tasks) add to existing tables
COLUMNS_AFTER_0004 = {"alarms": ("claimed_by", "claimed_ms", "claim_seen_ms",
                                 "worker", "worker_step", "worker_ms"),
                      "alarm_audit": ("claimed_by", "worker"),
                      "households": ("latitude", "longitude"),
                      "devices": ("latitude", "longitude"), "grid_cells": ("polygon",),
                      "users": ("grid_cell",)}

# one row in each of the previous release's tables, ids left to the database
ROWS = [
    "INSERT INTO users (username, password_hash, role, display_name, active, created_ms)"
    " VALUES ('olga', :pw, 'operator', 'Olga', TRUE, 10)",
    "INSERT INTO events (device_id, seq, kind, type, event_time_ms, device_time_ms,"
    " gateway_time_ms, received_ms, age_ms, skew_ms, data, gateway) VALUES"
    " ('hg-b-0001', 7, 'alarm', 'fire', 100, 100, 1300, 1400, 1200, -15, '{\"btn\": \"a\"}',"
    " 'gw-1')",
    "INSERT INTO alarms (event_id, device_id, type, priority, state, created_ms, outcome,"
    " acked_ms) VALUES (1, 'hg-b-0001', 'fire', 1, 'acknowledged', 1400, NULL, 1500)",
    "INSERT INTO alarm_audit (alarm_id, at_ms, user_id, username, action, from_state,"
    " to_state, note) VALUES (1, 1500, 1, 'olga', 'ack', 'received', 'acknowledged', 'on it')",
    "INSERT INTO feedback (alarm_id, device_id, seq, gateway, type, created_ms, delivered)"
    " VALUES (1, 'hg-b-0001', 7, 'gw-1', 'acknowledged', 1500, FALSE)",
    "INSERT INTO user_sessions (id, user_id, created_ms, expires_ms) VALUES ('s1', 1, 10, 99)",
    "INSERT INTO grid_cells (code, name, community, worker_name, worker_phone) VALUES"
    " ('G1', 'Cell 1', 'Riverside', 'Wang', '555')",
    "INSERT INTO households (code, address, compound, community, grid_cell_id, note) VALUES"
    " ('H1', '1 Main St', 'Garden', 'Riverside', 1, '')",
    "INSERT INTO contacts (household_id, name, phone, email, relation, rank) VALUES"
    " (1, 'Li', '123', NULL, 'son', 1)",
    "INSERT INTO devices (device_id, type, board, firmware, household_id, key_ref,"
    " created_ms) VALUES ('hg-b-0001', 'button', 'esp32', '1.0', 1, 'centre', 5)",
    "INSERT INTO device_keys (device_id, key_hex, updated_ms) VALUES ('hg-b-0001', 'ab', 5)",
    "INSERT INTO hazards (alarm_id, device_id, type, opened_ms, state, rectify_note) VALUES"
    " (1, 'hg-b-0001', 'over_temp', 1400, 'open', '')",
    "INSERT INTO hazard_restores (hazard_id, event_id, event_time_ms) VALUES (1, 1, 100)",
    "INSERT INTO notifications (alarm_id, step, role, name, channel, target, attempt,"
    " status, at_ms) VALUES (1, 0, 'contact', 'Li', 'log', '123', 1, 'sent', 1450)",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres").fresh_database())
    return f"sqlite:///{tmp_path / 'centre.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def make_old_store(engine: Engine, rows: bool = True) -> None:
    """The tables release c5f2424 made (its own DDL), with one row in each."""
    ddl = (SCHEMAS / f"centre-c5f2424.{engine.dialect.name}.sql").read_text()
    ddl = "\n".join(line for line in ddl.splitlines() if not line.startswith("--"))
    with engine.begin() as conn:
        for statement in filter(str.strip, ddl.split(";")):
            conn.exec_driver_sql(statement)
        for insert in ROWS if rows else []:
            conn.execute(text(insert), {"pw": hash_password(PASSWORD)} if ":pw" in insert else {})


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of the release's tables, in the release's columns (later
    revisions add nullable ones)."""
    with engine.connect() as conn:
        return {name: sorted(map(tuple, conn.execute(
                    text(f"SELECT {', '.join(table.columns.keys())} FROM {name}"))), key=repr)
                for name, table in baseline.METADATA.tables.items()}


def test_a_store_of_the_previous_release_upgrades_with_its_rows(
        engine: Engine, db_url: str) -> None:
    make_old_store(engine)
    assert migrate.differences(engine, baseline.METADATA) == []  # 0001 is that release's
    before = dump(engine)
    assert migrate.status(engine).stand is migrate.Stand.UNVERSIONED
    done = migrate.upgrade(engine)
    assert (done.before.stand, done.adopted) == (migrate.Stand.UNVERSIONED, [])
    assert migrate.status(engine) == migrate.Status(migrate.Stand.CURRENT, HEAD, HEAD)
    assert dump(engine) == before
    assert migrate.differences(engine) == []
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("alarms")}
    assert indexes["ix_alarms_desk"] == ["state", "priority", "created_ms", "id"]
    # the centre works on it: the old login, the old alarm, a new event after it
    app = create_app(Settings(database_url=db_url, gateway_tokens=[TOKEN]))
    with TestClient(app) as client:
        page = client.get("/login").text
        csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
        r = client.post("/login", data={"username": OPERATOR, "password": PASSWORD,
                                        "csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303, r.text
        [alarm] = client.get("/api/v1/alarms").json()
        assert (alarm["id"], alarm["state"], alarm["acked_ms"]) == (1, "acknowledged", 1500)
        new = {"device": "hg-b-0001", "seq": 8, "kind": "alarm", "type": "fire",
               "event_time_ms": 200, "gateway_time_ms": 300, "age_ms": 100, "data": {}}
        r = client.post("/api/v1/ingest", headers={"Authorization": f"Bearer {TOKEN}"},
                        json={"gateway": "gw-1", "events": [new]})
        assert r.json()["results"][0]["status"] == "accepted", r.text
        assert [a["id"] for a in client.get("/api/v1/alarms").json()] == [2, 1]


def test_a_fresh_store_comes_up_at_head_equal_to_the_models(engine: Engine) -> None:
    assert migrate.status(engine).stand is migrate.Stand.EMPTY
    assert str(migrate.upgrade(engine)) == f"Created the store's tables at schema revision {HEAD}."
    assert migrate.status(engine).stand is migrate.Stand.CURRENT
    assert migrate.differences(engine) == []
    assert set(inspect(engine).get_table_names()) == {
        *migrate.metadata().tables, "alembic_version"}
    assert str(migrate.upgrade(engine)).endswith("nothing to do.")


def test_a_store_made_by_main_before_migrations_is_adopted(engine: Engine) -> None:
    """create_all of today's models (ix_alarms_desk included): what main made
    between the release and Alembic; 0002 finds its index there."""
    migrate.metadata().create_all(engine)
    with schema_change(engine) as conn:  # columns today's models have and main's had not
        conn.exec_driver_sql("DROP INDEX ix_alarms_claim_seen_ms")
        for table, columns in COLUMNS_AFTER_0004.items():
            for column in columns:
                conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
    done = migrate.upgrade(engine)
    assert (done.before.stand, done.adopted) == (migrate.Stand.UNVERSIONED, [])
    assert migrate.differences(engine) == []


def test_a_partial_old_store_gains_tables_columns_and_indexes(engine: Engine) -> None:
    """As every start of the releases before did: missing tables and nullable
    columns are added, rows untouched."""
    make_old_store(engine, rows=False)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE notifications")
        conn.exec_driver_sql("DROP INDEX ix_feedback_gateway")
    with schema_change(engine) as conn:  # the skeleton's alarms lacked these
        for column in ("outcome", "dispatched_to", "acked_ms", "verified_ms", "resolved_ms"):
            conn.exec_driver_sql(f"ALTER TABLE alarms DROP COLUMN {column}")
    done = migrate.upgrade(engine)
    assert done.adopted == ["alarms.outcome", "alarms.dispatched_to", "alarms.acked_ms",
                            "alarms.verified_ms", "alarms.resolved_ms", "ix_feedback_gateway",
                            "notifications"]
    assert migrate.differences(engine) == []


def test_a_store_that_is_not_the_previous_release_is_refused_untouched(
        engine: Engine) -> None:
    make_old_store(engine, rows=False)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE alarms ADD COLUMN colour VARCHAR(8)")
        conn.exec_driver_sql("DROP TABLE hazard_restores")
    with pytest.raises(migrate.UnrecognisedStore, match="alarms.colour is not that release's"):
        migrate.upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert "hazard_restores" not in tables and "alembic_version" not in tables  # rolled back


def test_a_store_migrated_by_a_newer_release_is_refused(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(migrate.UnknownRevision, match="revision 0099, which this release"):
        migrate.status(engine)



def test_sqlite_foreign_keys_are_checked_before_the_commit(tmp_path: Path) -> None:
    """Foreign keys are off while SQLite migrates (a table copy must not
    cascade): a migration that leaves a row pointing nowhere is rolled back."""
    engine = make_engine(f"sqlite:///{tmp_path / 'centre.db'}")
    try:
        make_old_store(engine, rows=False)
        with schema_change(engine) as conn:  # as a broken batch copy would leave it
            conn.exec_driver_sql("INSERT INTO alarms (event_id, device_id, type, priority, "
                                 "state, created_ms) VALUES (42, 'hg-b-0001', 'fire', 1, "
                                 "'received', 1)")
        with pytest.raises(migrate.MigrationError, match=r"alarms row 1 -> events"):
            migrate.upgrade(engine)
        assert migrate.status(engine).stand is migrate.Stand.UNVERSIONED
    finally:
        engine.dispose()

def run(*argv: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HOMEGUARD), *map(str, argv)], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL,
                          env={**{k: v for k, v in os.environ.items()
                                  if not k.startswith("HG_CENTRE_")},
                               "HG_CENTRE_GATEWAY_TOKENS": TOKEN, **(env or {})})


def start_centre(db_url: str, tmp_path: Path, *flags: str) -> Proc:
    port = free_port()
    proc = Proc("centre", [HOMEGUARD, "centre", "--host", LOOPBACK, "--port", port,
                           "--db", db_url, "--gateway-token", TOKEN, *flags], tmp_path)
    proc.start()
    proc.wait_ready(lambda: _healthy(port))
    return proc


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://{LOOPBACK}:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_homeguard_centre_refuses_an_old_store_and_centre_migrate_upgrades_it(
        engine: Engine, db_url: str, tmp_path: Path) -> None:
    make_old_store(engine)
    shown = make_url(db_url).render_as_string(hide_password=True)
    refused = run("centre", "--port", free_port(), "--db", db_url)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.splitlines() == [
        f"homeguard centre: the store {shown} is from before migrations (release c5f2424's "
        f"schema, 0001) and needs migrating to {HEAD}: back it up, then run "
        f"`homeguard centre migrate --db {shown}` (or start with --migrate)"]
    assert "alarm desk at" not in refused.stdout
    assert migrate.status(engine).stand is migrate.Stand.UNVERSIONED  # untouched
    done = run("centre", "migrate", env={"HG_CENTRE_DATABASE_URL": db_url})
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        f"Recognised a store made before migrations as revision 0001; migrated it to {HEAD}."]
    again = run("centre", "migrate", "--db", db_url)
    assert again.stdout.splitlines() == [
        f"The store is at schema revision {HEAD}, this release's: nothing to do."]
    proc = start_centre(db_url, tmp_path)  # now it starts
    proc.stop()
    assert migrate.differences(engine) == []


def test_homeguard_centre_creates_an_empty_store_and_migrates_with_the_flag(
        engine: Engine, db_url: str, tmp_path: Path) -> None:
    proc = start_centre(db_url, tmp_path)
    proc.stop()
    assert f"Created the store's tables at schema revision {HEAD}." in proc.logs()
    with engine.begin() as conn:  # back to before 0002, as a store of the last release is
        conn.exec_driver_sql("DROP INDEX ix_alarms_desk")
        for table in (*TABLES_AFTER_0007, *TABLES_AFTER_0002):
            conn.exec_driver_sql(f"DROP TABLE {table}")
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    refused = run("centre", "--port", free_port(), "--db", db_url)
    assert refused.returncode == 2 and "is at schema revision 0001 and needs migrating to " \
        f"{HEAD}" in refused.stderr, refused.stderr
    proc = start_centre(db_url, tmp_path, "--migrate")
    proc.stop()
    assert f"Migrated the store from schema revision 0001 to {HEAD}." in proc.logs()
    assert migrate.differences(engine) == []


def test_centre_migrate_new_writes_nothing_while_the_models_match_head() -> None:
    r = run("centre", "migrate", "--new", "nothing changed")
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "homeguard centre migrate: the models match the head revision: nothing to write"]


def test_an_unreachable_store_is_one_line() -> None:
    url = f"postgresql+psycopg://hg@{LOOPBACK}:{free_port()}/nowhere"
    for argv in (("centre", "--port", free_port(), "--db", url),
                 ("centre", "migrate", "--db", url)):
        r = run(*argv)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        [line] = r.stderr.splitlines()
        assert line.endswith("Connection refused") and f"cannot open the store {url}" in line
