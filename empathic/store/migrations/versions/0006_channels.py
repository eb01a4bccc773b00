"""channels: a contact's sticky channel; each channel claims its own queue; email subject and HTML

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=64), nullable=True))
    op.drop_index("ix_messages_claim", table_name="messages")
    op.create_index("ix_messages_claim", "messages", ["status", "channel", "priority", "id"])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("subject", sa.String(length=998), nullable=True))
        batch.add_column(sa.Column("html", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("html")
        batch.drop_column("subject")
    op.drop_index("ix_messages_claim", table_name="messages")
    op.create_index("ix_messages_claim", "messages", ["status", "priority", "next_attempt_at"])
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("channel")
