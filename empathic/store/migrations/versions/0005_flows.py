"""flows: flow versions, current flows per workspace, runs; inbox threads name their flow run

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

import empathic.store.schema

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Instant = empathic.store.schema.Instant


def upgrade() -> None:
    op.create_table(
        "flow_versions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", Instant(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_versions")),
    )
    op.create_index(
        "ix_flow_versions_workspace_name_version", "flow_versions", ["workspace_id", "name", "version"], unique=True
    )
    op.create_table(
        "flows",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.String(length=40), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("updated_at", Instant(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "name", name=op.f("pk_flows")),
    )
    op.create_table(
        "flow_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("contact_id", sa.String(length=40), nullable=False),
        sa.Column("flow", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("waiting", sa.String(length=16), nullable=True),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("trigger", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=40), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", Instant(), nullable=False),
        sa.Column("updated_at", Instant(), nullable=False),
        sa.Column("ended_at", Instant(), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_flow_runs_workspace_id_workspaces")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_runs")),
    )
    op.create_index("ix_flow_runs_workspace_contact_status", "flow_runs", ["workspace_id", "contact_id", "status"])
    op.create_index("ix_flow_runs_workspace_status", "flow_runs", ["workspace_id", "status", "id"])
    op.create_index(
        "ix_flow_runs_workspace_idempotency_key", "flow_runs", ["workspace_id", "idempotency_key"], unique=True
    )
    with op.batch_alter_table("threads") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("run_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("threads") as batch:
        batch.drop_column("run_id")
        batch.drop_column("note")
    op.drop_table("flow_runs")
    op.drop_table("flows")
    op.drop_table("flow_versions")
