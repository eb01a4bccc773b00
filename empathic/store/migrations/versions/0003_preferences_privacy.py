"""preferences per contact; privacy: suppression list, workspace salt, message redaction

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

import empathic.store.schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "preferences",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("contact_id", sa.String(length=40), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", empathic.store.schema.Instant(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_preferences_workspace_id_workspaces")),
        sa.PrimaryKeyConstraint("workspace_id", "contact_id", name=op.f("pk_preferences")),
    )
    op.create_table(
        "suppressions",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("opt_outs", sa.JSON(), nullable=False),
        sa.Column("created_at", empathic.store.schema.Instant(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_suppressions_workspace_id_workspaces")),
        sa.PrimaryKeyConstraint("workspace_id", "phone_hash", name=op.f("pk_suppressions")),
    )
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("privacy_salt", sa.String(length=64), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("redacted_at", empathic.store.schema.Instant(), nullable=True))
        batch.create_index("ix_messages_retention", ["redacted_at", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_retention")
        batch.drop_column("redacted_at")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("privacy_salt")
    op.drop_table("suppressions")
    op.drop_table("preferences")
