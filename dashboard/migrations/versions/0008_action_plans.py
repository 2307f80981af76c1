"""Action plans (issue 18): `action_plans`, an alarm type's checklist as a
supervisor edited it, and `alarm_steps`, each step recorded on an alarm
with its outcome, time and operator.  New tables only; IF NOT EXISTS as
in 0003."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "action_plans",
        sa.Column("alarm_type", sa.String(length=32), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("alarm_type"),
        if_not_exists=True,
    )
    op.create_table(
        "alarm_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=False),
        sa.Column("audit_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("label", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["alarm_id"], ["alarms.id"]),
        sa.ForeignKeyConstraint(["audit_id"], ["alarm_audit.id"]),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_alarm_steps_alarm_id", "alarm_steps", ["alarm_id"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_alarm_steps_alarm_id", table_name="alarm_steps")
    op.drop_table("alarm_steps")
    op.drop_table("action_plans")
