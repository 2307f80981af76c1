"""Alarm claims (issue 18): the operator holding an alarm (alarms.claimed_by,
claimed_ms, claim_seen_ms with its index for the idle release) and who holds
it after each audit row (alarm_audit.claimed_by).  Nullable columns only,
each added unless there (a store main made with create_all, see 0002;
SQLite has no ADD COLUMN IF NOT EXISTS)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _add(table: str, column: sa.Column[object]) -> None:
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
    if column.name not in have:
        op.add_column(table, column)


def upgrade() -> None:
    _add("alarms", sa.Column("claimed_by", sa.String(length=64), nullable=True))
    _add("alarms", sa.Column("claimed_ms", sa.BigInteger(), nullable=True))
    _add("alarms", sa.Column("claim_seen_ms", sa.BigInteger(), nullable=True))
    op.create_index("ix_alarms_claim_seen_ms", "alarms", ["claim_seen_ms"], if_not_exists=True)
    _add("alarm_audit", sa.Column("claimed_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alarm_audit") as batch:
        batch.drop_column("claimed_by")
    op.drop_index("ix_alarms_claim_seen_ms", table_name="alarms")
    with op.batch_alter_table("alarms") as batch:
        batch.drop_column("claim_seen_ms")
        batch.drop_column("claimed_ms")
        batch.drop_column("claimed_by")
