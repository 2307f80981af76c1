"""Bringing an older alarm store up to the current tables.

`create_all` makes missing tables but never touches existing ones.  The
workflow added nullable columns to `alarms`; a store made by the walking
skeleton gets them here with ALTER TABLE ADD COLUMN (no data changes).
Indexes declared on a model since (the desk's `ix_alarms_desk`) are
created when missing (CREATE INDEX IF NOT EXISTS).
A change that needs more than added nullable columns gets a real
migration tool, not another branch here.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, inspect
from sqlalchemy.schema import CreateColumn, CreateIndex

from dashboard.models import Base

log = logging.getLogger("homeguard.centre.migrate")


def add_missing_columns(engine: Engine) -> list[str]:
    """Add every nullable model column the database lacks; returns 'table.column's."""
    insp = inspect(engine)
    added: list[str] = []
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if not insp.has_table(table.name):
                continue
            present = {c["name"] for c in insp.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                if not column.nullable:
                    raise RuntimeError(
                        f"store lacks {table.name}.{column.name}, which is NOT NULL: "
                        "this store needs a manual migration"
                    )
                ddl = CreateColumn(column).compile(dialect=engine.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")
                added.append(f"{table.name}.{column.name}")
    for name in added:
        log.info("migrated the store: added column %s", name)
    return added


def add_missing_indexes(engine: Engine) -> list[str]:
    """Create every model index an existing table lacks; returns their names."""
    insp = inspect(engine)
    added: list[str] = []
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if not insp.has_table(table.name):
                continue
            present = {ix["name"] for ix in insp.get_indexes(table.name)}
            for index in table.indexes:
                if index.name in present:
                    continue
                conn.execute(CreateIndex(index, if_not_exists=True))
                added.append(str(index.name))
    for name in added:
        log.info("migrated the store: added index %s", name)
    return added
