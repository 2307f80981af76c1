"""Event history (issue 19): the two partial indexes the search of events
that are not alarms reads along, newest first by receipt
(dashboard/history_events.py INDEXES): over restores, cancels, tests,
faults and supervision events only, so the heartbeats and telemetry in the
same table are not indexed again.  Indexes only, no row changes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# as history_events.KINDS_SQL (a revision keeps its own copy: it must not
# change when the module does)
KINDS_SQL = "kind IN ('restore', 'cancel', 'test', 'fault', 'supervision')"
INDEXES = (
    ("ix_events_history", ["received_ms", "id"]),
    ("ix_events_history_device", ["device_id", "received_ms", "id"]),
)


def upgrade() -> None:
    for name, columns in INDEXES:
        op.create_index(name, "events", columns, if_not_exists=True,
                        sqlite_where=sa.text(KINDS_SQL), postgresql_where=sa.text(KINDS_SQL))


def downgrade() -> None:
    for name, _columns in reversed(INDEXES):
        op.drop_index(name, table_name="events")
