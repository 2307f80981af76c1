"""Gateway credentials (issue 15): one bearer token per gateway id, kept as
its SHA-256, revocable.  A new table only; IF NOT EXISTS as in 0003."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_credentials",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("gateway_id", sa.String(length=32), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
        if_not_exists=True,
    )
    op.create_index("ix_gateway_credentials_gateway_id", "gateway_credentials", ["gateway_id"],
                    if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_gateway_credentials_gateway_id", table_name="gateway_credentials")
    op.drop_table("gateway_credentials")
