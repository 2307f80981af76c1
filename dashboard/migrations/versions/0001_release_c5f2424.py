"""The schema of release c5f2424, the last one before migrations.

Its tables are frozen in dashboard/migrations/baseline.py.  A store that
release made has them already: dashboard/migrate.py stamps it with this
revision instead of running it.
"""

from __future__ import annotations

from alembic import op

from dashboard.migrations.baseline import METADATA

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    METADATA.create_all(op.get_bind(), checkfirst=False)


def downgrade() -> None:
    METADATA.drop_all(op.get_bind(), checkfirst=False)
