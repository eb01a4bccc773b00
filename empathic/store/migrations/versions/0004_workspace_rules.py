"""workspace_rules: a workspace's own sending rules, set over the API

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

import empathic.store.schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspace_rules",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", empathic.store.schema.Instant(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_workspace_rules_workspace_id_workspaces")),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_workspace_rules")),
    )


def downgrade() -> None:
    op.drop_table("workspace_rules")
