"""time partitions: on PostgreSQL, messages and message_events partitioned by month of the
message id; what must be unique across all time (idempotency keys, carrier ids) moves to
tables of its own, on both backends

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from empathic.core.ids import made_at_ms
from empathic.store import partitions

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_MESSAGE_INDEXES = {  # name: (columns, only rows in this status)
    "ix_messages_claim": ("channel, priority, id", "queued"),
    "ix_messages_sent": ("updated_at", "sent"),
    "ix_messages_workspace_contact": ("workspace_id, contact_id, id", None),
    "ix_messages_workspace_status": ("workspace_id, status, id", None),
    "ix_messages_retention": ("redacted_at, created_at", None),
}


def upgrade() -> None:
    op.create_table(
        "message_keys",
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("message_id", sa.String(40).with_variant(sa.String(40, collation="C"), "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", "workspace_id", name="pk_message_keys"),
    )
    op.create_table(
        "carrier_ids",
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("carrier_id", sa.String(100), nullable=False),
        sa.Column("message_id", sa.String(40).with_variant(sa.String(40, collation="C"), "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("carrier_id", "channel", name="pk_carrier_ids"),
    )
    op.execute("INSERT INTO message_keys SELECT workspace_id, idempotency_key, id FROM messages "
               "WHERE idempotency_key IS NOT NULL")
    op.execute("INSERT INTO carrier_ids SELECT channel, carrier_id, id FROM messages "
               "WHERE channel IS NOT NULL AND carrier_id IS NOT NULL")
    op.drop_index("ix_messages_workspace_idempotency", table_name="messages")
    op.drop_index("ix_messages_channel_carrier", table_name="messages")
    if op.get_bind().dialect.name == "postgresql":
        _partition()


def _partition() -> None:
    conn = op.get_bind()
    # The tables as they were, under other names, their ids compared byte by byte ("C") and
    # event ids 64-bit, so that the new tables made LIKE them have both.
    for table in ("messages", "message_events"):
        op.execute(f"ALTER TABLE {table} RENAME TO {table}_0010")
        op.execute(f"ALTER TABLE {table}_0010 RENAME CONSTRAINT pk_{table} TO pk_{table}_0010")
    for index in (*_MESSAGE_INDEXES, "ix_message_events_message"):
        op.execute(f"DROP INDEX {index}")
    op.execute('ALTER TABLE messages_0010 ALTER COLUMN id TYPE varchar(40) COLLATE "C"')
    op.execute('ALTER TABLE message_events_0010 ALTER COLUMN message_id TYPE varchar(40) COLLATE "C", '
               "ALTER COLUMN id TYPE bigint")
    op.execute("ALTER SEQUENCE message_events_id_seq AS bigint OWNED BY NONE")

    op.execute("CREATE TABLE messages (LIKE messages_0010 INCLUDING DEFAULTS) PARTITION BY RANGE (id)")
    op.execute("CREATE TABLE message_events (LIKE message_events_0010 INCLUDING DEFAULTS) PARTITION BY RANGE (message_id)")
    op.execute("ALTER SEQUENCE message_events_id_seq OWNED BY message_events.id")
    op.execute("ALTER TABLE messages ADD CONSTRAINT pk_messages PRIMARY KEY (id)")
    op.execute("ALTER TABLE message_events ADD CONSTRAINT pk_message_events PRIMARY KEY (message_id, id)")
    for table in ("messages", "message_events"):
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_workspace_id_workspaces "
                   "FOREIGN KEY (workspace_id) REFERENCES workspaces (id)")
    for index, (columns, status) in _MESSAGE_INDEXES.items():
        where = f" WHERE status = '{status}'" if status else ""
        op.execute(f"CREATE INDEX {index} ON messages ({columns}){where}")
    for table in ("messages", "message_events"):
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")

    # A partition for every month from the first message's to the months ahead, then the rows.
    first = conn.execute(sa.text("SELECT min(id) FROM messages_0010 WHERE id LIKE 'msg\\_%'")).scalar()
    first_ms = made_at_ms(first) if first else None
    now = datetime.now(UTC)
    since = partitions.month_of(datetime.fromtimestamp(first_ms / 1000, UTC)) if first_ms is not None else None
    partitions.ensure_sync(conn, now, since=min(since, partitions.month_of(now)) if since else None)
    for table in ("messages", "message_events"):
        op.execute(f"INSERT INTO {table} SELECT * FROM {table}_0010")
        op.execute(f"DROP TABLE {table}_0010")
        op.execute(f"ANALYZE {table}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _unpartition()
    op.create_index("ix_messages_channel_carrier", "messages", ["channel", "carrier_id"], unique=True)
    op.create_index("ix_messages_workspace_idempotency", "messages", ["workspace_id", "idempotency_key"], unique=True)
    op.drop_table("carrier_ids")
    op.drop_table("message_keys")


def _unpartition() -> None:
    for table in ("messages", "message_events"):
        op.execute(f"CREATE TABLE {table}_0011 (LIKE {table} INCLUDING DEFAULTS)")
        op.execute(f"INSERT INTO {table}_0011 SELECT * FROM {table}")
    op.execute("ALTER SEQUENCE message_events_id_seq OWNED BY NONE")
    for table in ("messages", "message_events"):
        op.execute(f"DROP TABLE {table} CASCADE")  # its partitions with it
        op.execute(f"ALTER TABLE {table}_0011 RENAME TO {table}")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_workspace_id_workspaces "
                   "FOREIGN KEY (workspace_id) REFERENCES workspaces (id)")
    op.execute("ALTER TABLE messages ALTER COLUMN id TYPE varchar(40) COLLATE \"default\"")
    op.execute("ALTER TABLE message_events ALTER COLUMN message_id TYPE varchar(40) COLLATE \"default\", "
               "ALTER COLUMN id TYPE integer")
    op.execute("ALTER SEQUENCE message_events_id_seq AS integer OWNED BY message_events.id")
    op.execute("ALTER TABLE messages ADD CONSTRAINT pk_messages PRIMARY KEY (id)")
    op.execute("ALTER TABLE message_events ADD CONSTRAINT pk_message_events PRIMARY KEY (id)")
    for index, (columns, status) in _MESSAGE_INDEXES.items():
        where = f" WHERE status = '{status}'" if status else ""
        op.execute(f"CREATE INDEX {index} ON messages ({columns}){where}")
    op.execute("CREATE INDEX ix_message_events_message ON message_events (message_id, id)")
