"""flow step counts: how often runs passed, waited, timed out, were handed off or failed at
each step; runs counted by flow and status

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flow_step_counts",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("flow", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name="fk_flow_step_counts_workspace_id_workspaces"),
        sa.PrimaryKeyConstraint("workspace_id", "flow", "step", "outcome", "shard", name="pk_flow_step_counts"),
    )
    op.create_index("ix_flow_runs_workspace_flow_status", "flow_runs", ["workspace_id", "flow", "status"])


def downgrade() -> None:
    op.drop_index("ix_flow_runs_workspace_flow_status", table_name="flow_runs")
    op.drop_table("flow_step_counts")
