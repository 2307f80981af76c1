"""History and reports (issue 19): the indexes their filters read along,
newest first (dashboard/history.py INDEXES): the time range alone, and
type, device, outcome or state each with the time; the operator filter's
(username, alarm_id) on the audit trail.  Indexes only, no row changes."""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_alarms_created", "alarms", ["created_ms", "id"]),
    ("ix_alarms_type_created", "alarms", ["type", "created_ms", "id"]),
    ("ix_alarms_device_created", "alarms", ["device_id", "created_ms", "id"]),
    ("ix_alarms_outcome_created", "alarms", ["outcome", "created_ms", "id"]),
    ("ix_alarms_state_created", "alarms", ["state", "created_ms", "id"]),
    ("ix_alarm_audit_username", "alarm_audit", ["username", "alarm_id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, if_not_exists=True)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
