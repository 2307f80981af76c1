"""The desk's order within one state: ix_alarms_desk (issue 12).

Main gained this index before migrations did, through the hand-rolled
CREATE INDEX IF NOT EXISTS at start, so a store may have it already.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_alarms_desk", "alarms", ["state", "priority", "created_ms", "id"],
                    if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_alarms_desk", table_name="alarms")
