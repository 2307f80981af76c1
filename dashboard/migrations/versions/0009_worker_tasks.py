"""The grid worker's phone (issue 19): a grid worker's grid cell on their
account (users.grid_cell, a grid cell code), the worker an alarm was
dispatched to with their step and its time (alarms.worker, worker_step,
worker_ms; read with state = dispatched, along its index), and the worker a dispatch named
(alarm_audit.worker).  Nullable columns only, each added unless there (a
store main made with create_all, see 0005)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = (
    ("users", sa.Column("grid_cell", sa.String(length=32), nullable=True)),
    ("alarms", sa.Column("worker", sa.String(length=64), nullable=True)),
    ("alarms", sa.Column("worker_step", sa.String(length=16), nullable=True)),
    ("alarms", sa.Column("worker_ms", sa.BigInteger(), nullable=True)),
    ("alarm_audit", sa.Column("worker", sa.String(length=64), nullable=True)),
)


def upgrade() -> None:
    for table, column in COLUMNS:
        have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
        if column.name not in have:
            op.add_column(table, column)


def downgrade() -> None:
    for table in ("alarm_audit", "alarms", "users"):
        with op.batch_alter_table(table) as batch:
            for t, column in reversed(COLUMNS):
                if t == table:
                    batch.drop_column(column.name)
