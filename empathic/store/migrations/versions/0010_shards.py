"""messages.shard: which of a channel's dispatchers claimed a message (its reconcile settles
only its own)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("shard", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Both backends drop a column in place (SQLite since 3.35): no copy of the table, whose
    # partial indexes a batch rebuild might not carry over.
    op.execute("ALTER TABLE messages DROP COLUMN shard")
