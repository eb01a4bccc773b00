"""stats: what sent each message (messages.flow, messages.trigger), the dashboard's indexes,
its hourly and daily counts (stats_hours, stats_days), what followed each text (message_outcomes), queue samples
and the stats loop's marks

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

from empathic.store.schema import Instant, MessageId

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_DEFERRED = sa.text("status = 'deferred'")


def upgrade() -> None:
    # On PostgreSQL `messages` and `message_events` are partitioned (0011): a column or an
    # index made on the parent is made on every partition, and on those made later.
    op.add_column("messages", sa.Column("flow", sa.String(length=64), nullable=True))
    op.add_column("messages", sa.Column("trigger", sa.String(length=200), nullable=True))
    op.create_index("ix_messages_workspace_created", "messages", ["workspace_id", "created_at"])
    op.create_index("ix_messages_updated", "messages", ["updated_at", "workspace_id", "created_at"])
    op.create_index("ix_message_events_deferred", "message_events", ["workspace_id", "at", "reason", "message_id"],
                    sqlite_where=_DEFERRED, postgresql_where=_DEFERRED)
    op.create_index("ix_consent_ledger_workspace_at", "consent_ledger", ["workspace_id", "at"])
    op.create_table(
        "stats_hours",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("measure", sa.String(length=16), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("flow", sa.String(length=64), nullable=False),
        sa.Column("trigger", sa.String(length=200), nullable=False),
        sa.Column("template", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_stats_hours_workspace_hour", "stats_hours", ["workspace_id", "hour"])
    op.create_table(
        "stats_days",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("measure", sa.String(length=16), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("flow", sa.String(length=64), nullable=False),
        sa.Column("trigger", sa.String(length=200), nullable=False),
        sa.Column("template", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_stats_days_workspace_day", "stats_days", ["workspace_id", "day"])
    op.create_table(
        "message_outcomes",
        sa.Column("message_id", MessageId, nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("message_created_at", Instant(), nullable=False),
        sa.Column("flow", sa.String(length=64), nullable=True),
        sa.Column("trigger", sa.String(length=200), nullable=True),
        sa.Column("template", sa.String(length=200), nullable=True),
        sa.Column("topic", sa.String(length=64), nullable=True),
        sa.Column("at", Instant(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name="fk_message_outcomes_workspace_id_workspaces"),
        sa.PrimaryKeyConstraint("message_id", "outcome", name="pk_message_outcomes"),
    )
    op.create_index("ix_message_outcomes_workspace_created", "message_outcomes", ["workspace_id", "message_created_at"])
    op.create_table(
        "queue_samples",
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("at", Instant(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("deferred", sa.Integer(), nullable=False),
        sa.Column("sending", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "at", name="pk_queue_samples"),
    )
    op.create_table(
        "stats_marks",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_stats_marks"),
    )


def downgrade() -> None:
    op.drop_table("stats_marks")
    op.drop_table("queue_samples")
    op.drop_index("ix_message_outcomes_workspace_created", table_name="message_outcomes")
    op.drop_table("message_outcomes")
    op.drop_index("ix_stats_days_workspace_day", table_name="stats_days")
    op.drop_table("stats_days")
    op.drop_index("ix_stats_hours_workspace_hour", table_name="stats_hours")
    op.drop_table("stats_hours")
    op.drop_index("ix_consent_ledger_workspace_at", table_name="consent_ledger")
    op.drop_index("ix_message_events_deferred", table_name="message_events")
    op.drop_index("ix_messages_updated", table_name="messages")
    op.drop_index("ix_messages_workspace_created", table_name="messages")
    op.execute("ALTER TABLE messages DROP COLUMN trigger")
    op.execute("ALTER TABLE messages DROP COLUMN flow")
