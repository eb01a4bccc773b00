"""fallbacks: the email a text becomes if it fails for good, and the email it became

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from empathic.store.schema import Instant

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fallbacks",
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=998), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("email_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", Instant(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name="fk_fallbacks_workspace_id_workspaces"),
        sa.PrimaryKeyConstraint("message_id", name="pk_fallbacks"),
    )
    op.create_index("ix_fallbacks_email", "fallbacks", ["email_id"])
    op.create_index("ix_fallbacks_created", "fallbacks", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_fallbacks_created", table_name="fallbacks")
    op.drop_index("ix_fallbacks_email", table_name="fallbacks")
    op.drop_table("fallbacks")
