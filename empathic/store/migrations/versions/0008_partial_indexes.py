"""partial indexes: the claim index holds only queued messages, a new one only sent messages
(for the receipt time-out sweep, which replaces one timer row per sent message)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_QUEUED = sa.text("status = 'queued'")
_SENT = sa.text("status = 'sent'")


def upgrade() -> None:
    op.drop_index("ix_messages_claim", table_name="messages")
    op.create_index("ix_messages_claim", "messages", ["channel", "priority", "id"],
                    sqlite_where=_QUEUED, postgresql_where=_QUEUED)
    op.create_index("ix_messages_sent", "messages", ["updated_at"], sqlite_where=_SENT, postgresql_where=_SENT)
    # Sent messages now expire by sweep (engine/scheduler.py), not by a timer each.
    op.execute("DELETE FROM timers WHERE kind = 'message.receipt_timeout'")


def downgrade() -> None:
    # Give each sent message its time-out timer back (72 h after it was sent, the default).
    op.execute(
        "INSERT INTO timers (workspace_id, kind, ref, due_at, payload) "
        "SELECT workspace_id, 'message.receipt_timeout', id, updated_at + 259200000, '{}' "
        "FROM messages WHERE status = 'sent'"
    )
    op.drop_index("ix_messages_sent", table_name="messages")
    op.drop_index("ix_messages_claim", table_name="messages")
    op.create_index("ix_messages_claim", "messages", ["status", "channel", "priority", "id"])
