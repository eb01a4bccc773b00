"""the web app: users and their sessions, inbox assignment, read marks and notes, what was
understood of each inbound text, and until when a deferred message waits

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

from empathic.store.schema import Instant, MessageId

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("failed_signins", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("locked_until", Instant(), nullable=True),
        sa.Column("disabled_at", Instant(), nullable=True),
        sa.Column("created_at", Instant(), nullable=False),
        sa.Column("updated_at", Instant(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name="fk_users_workspace_id_workspaces"),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
    )
    op.create_index("ix_users_email", "users", ["email"], unique=True)
    op.create_index("ix_users_workspace", "users", ["workspace_id", "email"])
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", Instant(), nullable=False),
        sa.Column("seen_at", Instant(), nullable=False),
        sa.Column("expires_at", Instant(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_web_sessions_user_id_users"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name="fk_web_sessions_workspace_id_workspaces"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_web_sessions"),
    )
    op.create_index("ix_web_sessions_user", "web_sessions", ["user_id"])
    op.create_table(
        "thread_reads",
        sa.Column("thread_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("read_at", Instant(), nullable=False),
        sa.PrimaryKeyConstraint("thread_id", "user_id", name="pk_thread_reads"),
    )
    op.create_table(
        "thread_notes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("thread_id", sa.String(length=40), nullable=False),
        sa.Column("author_id", sa.String(length=40), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", Instant(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name="fk_thread_notes_workspace_id_workspaces"),
        sa.PrimaryKeyConstraint("id", name="pk_thread_notes"),
    )
    op.create_index("ix_thread_notes_thread", "thread_notes", ["thread_id", "id"])
    op.create_table(
        "message_readings",
        sa.Column("message_id", MessageId, nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("keyword", sa.String(length=32), nullable=True),
        sa.Column("intent", sa.String(length=16), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("proposed_start", Instant(), nullable=True),
        sa.Column("proposed_end", Instant(), nullable=True),
        sa.Column("option", sa.String(length=200), nullable=True),
        sa.Column("created_at", Instant(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name="fk_message_readings_workspace_id_workspaces"),
        sa.PrimaryKeyConstraint("message_id", name="pk_message_readings"),
    )
    op.add_column("threads", sa.Column("assigned_to", sa.String(length=40), nullable=True))
    # On PostgreSQL `message_events` is partitioned (0011): a column added to the parent is
    # added to every partition, and to those made later (LIKE the parent).
    op.add_column("message_events", sa.Column("until", Instant(), nullable=True))
    op.create_index("ix_message_events_workspace", "message_events", ["workspace_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_message_events_workspace", table_name="message_events")
    op.execute("ALTER TABLE message_events DROP COLUMN until")
    op.execute("ALTER TABLE threads DROP COLUMN assigned_to")
    op.drop_table("message_readings")
    op.drop_index("ix_thread_notes_thread", table_name="thread_notes")
    op.drop_table("thread_notes")
    op.drop_table("thread_reads")
    op.drop_index("ix_web_sessions_user", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index("ix_users_workspace", table_name="users")
    op.drop_index("ix_users_email", table_name="users")
    op.drop_table("users")
