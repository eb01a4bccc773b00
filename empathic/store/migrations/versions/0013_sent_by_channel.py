"""sent texts by channel: an index on (channel, updated_at, id) of `sent` rows, for a
channel's receipt time-out sweep and its overdue receipt queries (a range of one channel,
not a scan of every channel's sent rows); messages.raw_carrier_id, the id as the carrier
gave it where carrier_id holds another form of it (SMPP receipt_id), which query_sm asks by

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_SENT = sa.text("status = 'sent'")


def upgrade() -> None:
    # On PostgreSQL `messages` is partitioned (0011): a column or an index made on the parent
    # is made on every partition, and partitions made later (store/partitions.py, LIKE the
    # parent, then attached) get both.
    op.add_column("messages", sa.Column("raw_carrier_id", sa.String(length=100), nullable=True))
    op.create_index("ix_messages_sent_channel", "messages", ["channel", "updated_at", "id"],
                    sqlite_where=_SENT, postgresql_where=_SENT)


def downgrade() -> None:
    op.drop_index("ix_messages_sent_channel", table_name="messages")
    op.execute("ALTER TABLE messages DROP COLUMN raw_carrier_id")
