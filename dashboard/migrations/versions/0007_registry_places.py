"""Registry places for the map (issue 19): households.latitude/longitude and
devices.latitude/longitude (WGS-84 degrees) and grid_cells.polygon (JSON
text of [lon, lat] points).  Nullable columns only, each added unless
there (a store main made with create_all, see 0005)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = (
    ("households", "latitude", sa.Float),
    ("households", "longitude", sa.Float),
    ("devices", "latitude", sa.Float),
    ("devices", "longitude", sa.Float),
    ("grid_cells", "polygon", sa.Text),
)


def upgrade() -> None:
    bind = op.get_bind()
    for table, name, kind in COLUMNS:
        have = {c["name"] for c in sa.inspect(bind).get_columns(table)}
        if name not in have:
            op.add_column(table, sa.Column(name, kind(), nullable=True))


def downgrade() -> None:
    for table in ("grid_cells", "devices", "households"):
        with op.batch_alter_table(table) as batch:
            for t, name, _kind in reversed(COLUMNS):
                if t == table:
                    batch.drop_column(name)
