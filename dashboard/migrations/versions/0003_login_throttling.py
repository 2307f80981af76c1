"""Login throttling and the auth audit (issue 15): rate_limits (the `limits`
counters in the store), login_locks (failed logins in a row, locks),
auth_audit (who did what to whose access, when, from where).  New tables
only: nothing existing changes.  A store that main made with create_all
before migrations (see 0002) may have them already: IF NOT EXISTS."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_auth_audit_at_ms", "auth_audit", ["at_ms"], if_not_exists=True)
    op.create_index("ix_auth_audit_subject", "auth_audit", ["subject"], if_not_exists=True)
    op.create_table(
        "login_locks",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_address", sa.String(length=64), nullable=False),
        sa.Column("locked_until_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("username"),
        if_not_exists=True,
    )
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
        if_not_exists=True,
    )
    op.create_index("ix_rate_limits_expires_ms", "rate_limits", ["expires_ms"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_rate_limits_expires_ms", table_name="rate_limits")
    op.drop_table("rate_limits")
    op.drop_table("login_locks")
    op.drop_index("ix_auth_audit_subject", table_name="auth_audit")
    op.drop_index("ix_auth_audit_at_ms", table_name="auth_audit")
    op.drop_table("auth_audit")
