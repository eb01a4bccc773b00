"""messages: valid_until (freshness) and in_reply_to (conversation replies)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

import empathic.store.schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("valid_until", empathic.store.schema.Instant(), nullable=True))
        batch.add_column(sa.Column("in_reply_to", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("in_reply_to")
        batch.drop_column("valid_until")
