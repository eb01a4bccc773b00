"""The database schema: every table Empathic stores, as SQLAlchemy Core metadata.

One schema serves SQLite (embedded) and PostgreSQL (scaled out). Every hot table carries
`workspace_id` and every hot query is keyed by it, so sharding by workspace later needs no
rewrite. Instants are stored as integer milliseconds since the Unix epoch (`Instant`), which
compare, index and partition the same way on both backends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_millis(value: datetime | None) -> int | None:
    """An aware instant as stored: integer epoch milliseconds (None stays None)."""
    global _last_millis
    if value is None:
        return None
    last = _last_millis
    if value is last[0]:  # a batch's rows share one `now`: the same object, converted once
        return last[1]
    if value.tzinfo is None:
        raise ValueError("naive datetime given where an aware UTC instant is required")
    millis = (value - EPOCH) // _MS  # integer arithmetic: float timestamps lose a ms
    _last_millis = (value, millis)
    return millis


_last_millis: tuple[datetime | None, int | None] = (None, None)  # datetimes are immutable


class Instant(TypeDecorator[datetime]):
    """An aware UTC datetime stored as integer epoch milliseconds."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> int | None:
        return to_millis(value)

    def process_result_value(self, value: int | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return EPOCH + value * _MS


def _id(prefix_len: int = 40) -> Column[str]:
    return Column("id", String(prefix_len), primary_key=True)


# A message's id, compared byte by byte on PostgreSQL ("C" collation): ranges of ids are the
# time partitions of `messages` and `message_events` there (store/partitions.py).
MessageId = String(40).with_variant(String(40, collation="C"), "postgresql")


def _workspace() -> Column[str]:
    return Column("workspace_id", String(40), ForeignKey("workspaces.id"), nullable=False)


workspaces = Table(
    "workspaces",
    metadata,
    _id(),
    Column("name", String(200), nullable=False),
    Column("created_at", Instant, nullable=False),
    Column("privacy_salt", String(64)),  # secret salt of the suppression list's number hashes
)

api_keys = Table(
    "api_keys",
    metadata,
    _id(),
    _workspace(),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False),  # shown to people to tell keys apart
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 hex of the key
    Column("created_at", Instant, nullable=False),
    Column("revoked_at", Instant),
)

contacts = Table(
    "contacts",
    metadata,
    _id(),
    _workspace(),
    Column("phone", String(20)),
    Column("email", String(320)),
    Column("locale", String(35)),
    Column("timezone", String(64)),
    Column("attributes", JSON, nullable=False),
    Column("channel", String(64)),  # sticky: the SMS channel their conversation is on
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Index("ix_contacts_workspace_phone", "workspace_id", "phone", unique=True),
    Index("ix_contacts_workspace_email", "workspace_id", "email"),
)

# Append-only: rows are inserted, never updated or deleted. Current consent is the fold of
# a contact's rows in id order (see empathic.core.consent).
consent_ledger = Table(
    "consent_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _workspace(),
    Column("contact_id", String(40), nullable=False),
    Column("topic", String(64), nullable=False),  # "*" means every non-essential topic
    Column("channel", String(16), nullable=False),
    Column("action", String(16), nullable=False),  # granted | revoked
    Column("source", String(32), nullable=False),  # keyword | api | web_form | agent | import
    Column("actor", String(200), nullable=False),
    Column("evidence", String(200)),  # the message id or request that caused the change
    Column("at", Instant, nullable=False),
    Index("ix_consent_ledger_contact", "workspace_id", "contact_id", "id"),
    Index("ix_consent_ledger_workspace_at", "workspace_id", "at"),  # opt-outs of a period (store/stats.py)
)

# A contact's own preferences (core.preferences), one JSON document per contact.
preferences = Table(
    "preferences",
    metadata,
    _workspace(),
    Column("contact_id", String(40), nullable=False),
    Column("data", JSON, nullable=False),
    Column("updated_at", Instant, nullable=False),
    PrimaryKeyConstraint("workspace_id", "contact_id"),
)

# A workspace's own sending rules (a rules file's text, core.regulations): they tighten the
# shipped rules and the project's, never loosen them.
workspace_rules = Table(
    "workspace_rules",
    metadata,
    Column("workspace_id", String(40), ForeignKey("workspaces.id"), primary_key=True),
    Column("text", Text, nullable=False),
    Column("updated_at", Instant, nullable=False),
)

# Numbers of erased contacts who had opted out, as salted hashes: all that is kept of them,
# so such a number is never texted again (its opt-outs return if the number comes back).
suppressions = Table(
    "suppressions",
    metadata,
    _workspace(),
    Column("phone_hash", String(64), nullable=False),
    Column("opt_outs", JSON, nullable=False),  # [[topic, channel], ...] revoked at erasure ("*" = all)
    Column("created_at", Instant, nullable=False),
    PrimaryKeyConstraint("workspace_id", "phone_hash"),
)

# On PostgreSQL, `messages` and `message_events` are partitioned by month of the message id
# (migration 0011, store/partitions.py): every index below is one per partition, so what must
# be unique across all time lives in `message_keys` and `carrier_ids`.
messages = Table(
    "messages",
    metadata,
    Column("id", MessageId, primary_key=True),
    _workspace(),
    Column("direction", String(8), nullable=False),  # outbound | inbound
    Column("contact_id", String(40)),
    Column("to_addr", String(320), nullable=False),
    Column("from_addr", String(320)),
    Column("body", Text, nullable=False),
    Column("subject", String(998)),  # email only
    Column("html", Text),  # email only: the HTML alternative of the body
    Column("topic", String(64)),
    Column("priority", Integer, nullable=False),  # lower goes first
    Column("status", String(16), nullable=False),
    Column("reason", String(64)),
    Column("encoding", String(8)),
    Column("segments", Integer),
    Column("idempotency_key", String(200)),  # unique per workspace: held in message_keys
    Column("channel", String(64)),
    Column("shard", Integer),  # which of the channel's dispatchers claimed it (None: the first)
    Column("carrier_id", String(100)),  # unique per channel: held in carrier_ids
    # The id as the carrier gave it, where carrier_id is another form of it (SMPP receipt_id):
    # query_sm asks by this one.
    Column("raw_carrier_id", String(100)),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", Instant),
    Column("template", String(200)),
    Column("event_id", String(40)),
    # What sent it (for the dashboard, store/stats.py): the flow whose run sent it, and what
    # set it off: a trigger's name, or a run's trigger (event:<type>, keyword:<WORD>, api).
    Column("flow", String(64)),
    Column("trigger", String(200)),
    Column("valid_until", Instant),  # past it, the message is `expired`, never sent late
    Column("in_reply_to", String(40)),  # the inbound message this answers (not held by quiet hours or caps)
    Column("redacted_at", Instant),  # the body was removed by the retention job
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    # Partial indexes: only the rows in one status are in them, so a message moving between
    # the other statuses (sending, sent, delivered …) does not touch them.
    Index("ix_messages_claim", "channel", "priority", "id",
          sqlite_where=text("status = 'queued'"), postgresql_where=text("status = 'queued'")),
    Index("ix_messages_sent", "updated_at",
          sqlite_where=text("status = 'sent'"), postgresql_where=text("status = 'sent'")),
    # One channel's sent texts in (updated_at, id) order: its receipt time-out sweep and the
    # overdue receipt queries' cursor read a range of it, not every channel's sent rows.
    Index("ix_messages_sent_channel", "channel", "updated_at", "id",
          sqlite_where=text("status = 'sent'"), postgresql_where=text("status = 'sent'")),
    Index("ix_messages_workspace_contact", "workspace_id", "contact_id", "id"),
    Index("ix_messages_workspace_status", "workspace_id", "status", "id"),
    Index("ix_messages_retention", "redacted_at", "created_at"),
    # The dashboard (store/stats.py): a workspace's messages by the time they were written,
    # and which changed since the stats loop's last pass (their hours are counted again).
    Index("ix_messages_workspace_created", "workspace_id", "created_at"),
    Index("ix_messages_updated", "updated_at", "workspace_id", "created_at"),
)

message_events = Table(
    "message_events",
    metadata,
    # PostgreSQL: the primary key is (message_id, id), the index below (partitions.py).
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    _workspace(),
    Column("message_id", MessageId, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(64)),
    Column("at", Instant, nullable=False),
    Column("until", Instant),  # a `deferred` one: when it may go (the gate's answer)
    Index("ix_message_events_message", "message_id", "id"),
    Index("ix_message_events_workspace", "workspace_id", "id"),  # a workspace's new events: the pages' live updates
    # Deferrals in a period, by reason (the dashboard): only `deferred` rows are in it.
    Index("ix_message_events_deferred", "workspace_id", "at", "reason", "message_id",
          sqlite_where=text("status = 'deferred'"), postgresql_where=text("status = 'deferred'")),
)

# The keys of messages written with one, unique per workspace for all time: a repeat of the
# key finds its message, whichever month it was written in.
message_keys = Table(
    "message_keys",
    metadata,
    Column("workspace_id", String(40), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("message_id", MessageId, nullable=False),
    # The key first: it picks out one row, where a workspace is one of few values (a
    # planner without statistics would read all of a workspace's keys to find 500 of them).
    PrimaryKeyConstraint("idempotency_key", "workspace_id"),
)

# The ids carriers gave messages (outbound, once taken; inbound, as received), unique per
# channel: receipts and repeated inbound deliveries are matched by them.
carrier_ids = Table(
    "carrier_ids",
    metadata,
    Column("channel", String(64), nullable=False),
    Column("carrier_id", String(100), nullable=False),
    Column("message_id", MessageId, nullable=False),
    PrimaryKeyConstraint("carrier_id", "channel"),  # the id first, as in message_keys
)

# Email fallbacks of texts: the email a text becomes if it fails for good (written with the
# text, by a trigger or a flow step that allows it), and, once sent, the email it became.
fallbacks = Table(
    "fallbacks",
    metadata,
    Column("message_id", String(40), primary_key=True),  # the text
    _workspace(),
    Column("reason", String(16), nullable=False),  # topic ([fallback] in empathic.toml) | send (a flow step)
    Column("subject", String(998)),  # the email, until it is sent (then it is the email's own)
    Column("body", Text),
    Column("html", Text),
    Column("email_id", String(40)),  # the email sent when the text failed
    Column("created_at", Instant, nullable=False),
    Index("ix_fallbacks_email", "email_id"),
    Index("ix_fallbacks_created", "created_at"),
)

events = Table(
    "events",
    metadata,
    _id(),
    _workspace(),
    Column("type", String(100), nullable=False),
    Column("contact_id", String(40)),
    Column("data", JSON, nullable=False),
    Column("idempotency_key", String(200)),
    Column("message_ids", JSON, nullable=False),
    Column("created_at", Instant, nullable=False),
    Index("ix_events_workspace_idempotency", "workspace_id", "idempotency_key", unique=True),
)

templates = Table(
    "templates",
    metadata,
    _workspace(),
    Column("name", String(100), nullable=False),
    Column("body", Text, nullable=False),
    Column("updated_at", Instant, nullable=False),
    PrimaryKeyConstraint("workspace_id", "name"),
)

triggers = Table(
    "triggers",
    metadata,
    _workspace(),
    Column("name", String(100), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("template", String(100), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("updated_at", Instant, nullable=False),
    PrimaryKeyConstraint("workspace_id", "name"),
    Index("ix_triggers_workspace_event", "workspace_id", "event_type"),
)

# One inbox thread per contact: replies that no keyword or flow handled wait here for a person.
threads = Table(
    "threads",
    metadata,
    _id(),
    _workspace(),
    Column("contact_id", String(40), nullable=False),
    Column("status", String(16), nullable=False),  # open | closed
    Column("last_message_id", String(40)),
    Column("note", Text),  # why a flow handed it over
    Column("run_id", String(40)),  # the flow run waiting for the person to close it
    Column("assigned_to", String(40)),  # the user answering it (users.id), None: unassigned
    Column("opened_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Index("ix_threads_workspace_contact", "workspace_id", "contact_id", unique=True),
    Index("ix_threads_workspace_status", "workspace_id", "status", "updated_at"),
)

# Flows: every version of every flow file ever loaded or stored (a run keeps its version),
# and per workspace the current one with its triggers. workspace_id "" = the project's files.
flow_versions = Table(
    "flow_versions",
    metadata,
    _id(),
    Column("workspace_id", String(40), nullable=False),
    Column("name", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", Instant, nullable=False),
    Index("ix_flow_versions_workspace_name_version", "workspace_id", "name", "version", unique=True),
)

flows = Table(
    "flows",
    metadata,
    Column("workspace_id", String(40), nullable=False),
    Column("name", String(64), nullable=False),
    Column("version_id", String(40), nullable=False),
    Column("events", JSON, nullable=False),
    Column("keywords", JSON, nullable=False),
    Column("updated_at", Instant, nullable=False),
    PrimaryKeyConstraint("workspace_id", "name"),
)

# A contact's journey through a flow. `state` is the interpreter's (empathic.flows.interpreter).
flow_runs = Table(
    "flow_runs",
    metadata,
    _id(),
    _workspace(),
    Column("contact_id", String(40), nullable=False),
    Column("flow", String(64), nullable=False),
    Column("version_id", String(40), nullable=False),
    # active | done | failed | interrupted | stopped | skipped | cancelled
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("waiting", String(16)),  # reply | timer | call | handoff, while active
    Column("state", JSON, nullable=False),
    Column("trigger", String(200), nullable=False),  # event:<type> | keyword:<WORD> | api
    Column("event_id", String(40)),
    Column("idempotency_key", String(200)),
    Column("outcome", String(40)),
    Column("error", Text),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Column("ended_at", Instant),
    Index("ix_flow_runs_workspace_contact_status", "workspace_id", "contact_id", "status"),
    Index("ix_flow_runs_workspace_status", "workspace_id", "status", "id"),
    Index("ix_flow_runs_workspace_idempotency_key", "workspace_id", "idempotency_key", unique=True),
)

# Durable timers: retries, receipt time-outs (and reminders later). A timer fires once.
timers = Table(
    "timers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", String(40)),
    Column("kind", String(64), nullable=False),
    Column("ref", String(100), nullable=False),
    Column("due_at", Instant, nullable=False),
    Column("payload", JSON, nullable=False),
    Index("ix_timers_due", "due_at"),
    Index("ix_timers_kind_ref", "kind", "ref"),
)

webhooks = Table(
    "webhooks",
    metadata,
    _id(),
    _workspace(),
    Column("url", String(2000), nullable=False),
    Column("events", JSON, nullable=False),
    Column("secret", String(100), nullable=False),
    Column("created_at", Instant, nullable=False),
    Index("ix_webhooks_workspace", "workspace_id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _id(),
    _workspace(),
    Column("webhook_id", String(40), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # the exact JSON body that is signed and sent
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Instant),
    Column("last_status_code", Integer),
    Column("last_error", String(500)),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
)

# Who does what among worker processes: one row per duty (a channel's sending, the
# scheduler and other single loops), held by one live worker until `expires_at` unless
# renewed (store/leases.py, engine/duties.py).
leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("owner", String(100), nullable=False),
    Column("expires_at", Instant, nullable=False),
    # The fencing token: new whenever the lease changes hands or is taken after running out,
    # kept by renewals. A duty's acts are fenced on the token it started under (engine.duties).
    Column("token", String(32), nullable=False, server_default=""),
)

# The built-in carrier simulator's own state: what each virtual phone received and sent,
# and the delivery receipts it still owes. Kept apart from `messages` as a real carrier's
# records would be.
sim_messages = Table(
    "sim_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("phone", String(20), nullable=False),
    Column("direction", String(4), nullable=False),  # mt (to the phone) | mo (from it)
    Column("peer", String(20), nullable=False),  # the business number
    Column("body", Text, nullable=False),
    Column("carrier_id", String(40), nullable=False, unique=True),
    Column("client_ref", String(40)),  # Empathic's message id as submitted (MT)
    Column("receipt_status", String(16)),
    Column("receipt_due_at", Instant),
    Column("receipt_sent_at", Instant),
    Column("at", Instant, nullable=False),
    Index("ix_sim_messages_phone", "phone", "id"),
    Index("ix_sim_messages_receipt_due", "receipt_sent_at", "receipt_due_at"),
    Index("ix_sim_messages_client_ref", "client_ref"),
)


# People who sign in to the web app. An email is one person in one workspace (unique across
# all); the password is stored only as its argon2id hash.
users = Table(
    "users",
    metadata,
    _id(),
    _workspace(),
    Column("email", String(320), nullable=False),  # lower-cased
    Column("name", String(200)),
    Column("role", String(16), nullable=False),  # admin | agent | viewer
    Column("password_hash", String(200), nullable=False),
    Column("must_change_password", Boolean, nullable=False, server_default=text("false")),
    Column("failed_signins", Integer, nullable=False, server_default=text("0")),  # since the last success
    Column("locked_until", Instant),  # after too many failures in a row
    Column("disabled_at", Instant),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Index("ix_users_email", "email", unique=True),
    Index("ix_users_workspace", "workspace_id", "email"),
)
# A signed-in browser: the cookie holds a random token, this table only its SHA-256.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(40), ForeignKey("users.id"), nullable=False),
    _workspace(),
    Column("created_at", Instant, nullable=False),
    Column("seen_at", Instant, nullable=False),
    Column("expires_at", Instant, nullable=False),
    Index("ix_web_sessions_user", "user_id"),
)
# How far each person has read each inbox thread (its unread count is what came in after).
thread_reads = Table(
    "thread_reads",
    metadata,
    Column("thread_id", String(40), nullable=False),
    Column("user_id", String(40), nullable=False),
    Column("read_at", Instant, nullable=False),
    PrimaryKeyConstraint("thread_id", "user_id", name="pk_thread_reads"),
)
# A person's internal note on a thread: shown to the team, never sent.
thread_notes = Table(
    "thread_notes",
    metadata,
    _id(),
    _workspace(),
    Column("thread_id", String(40), nullable=False),
    Column("author_id", String(40)),  # users.id (None: written by the system)
    Column("body", Text, nullable=False),
    Column("created_at", Instant, nullable=False),
    Index("ix_thread_notes_thread", "thread_id", "id"),
)
# What was understood of an inbound text when it came in (the context it was read in is gone
# later): a compliance or topic keyword, or the meaning, proposed time, option and language.
message_readings = Table(
    "message_readings",
    metadata,
    Column("message_id", MessageId, primary_key=True),
    _workspace(),
    Column("keyword", String(32)),  # stop | start | help … or `stop:<topic>` / `start:<topic>`
    Column("intent", String(16)),
    Column("language", String(8)),
    Column("confidence", Float),
    Column("proposed_start", Instant),
    Column("proposed_end", Instant),
    Column("option", String(200)),
    Column("created_at", Instant, nullable=False),
)
# How often runs passed, waited, timed out, were handed off or failed at each step of a flow
# (flows.graph.marks), counted where runs advance (engine.runs) in the run's transaction. A
# run's counts go to one of SHARDS rows per step and outcome (by its id), so runs moving
# through one step at once rarely wait for each other's row; a read sums the shards.
flow_step_counts = Table(
    "flow_step_counts",
    metadata,
    _workspace(),
    Column("flow", String(64), nullable=False),
    Column("step", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),  # passed | waited | timed_out | handed_off | failed
    Column("shard", Integer, nullable=False),
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("workspace_id", "flow", "step", "outcome", "shard", name="pk_flow_step_counts"),
)
# The flows page counts a workspace's runs by flow and status.
Index("ix_flow_runs_workspace_flow_status", flow_runs.c.workspace_id, flow_runs.c.flow, flow_runs.c.status)


# The dashboard's figures (store/stats.py), kept by the stats loop (engine/stats.py).
# Counts per hour a message was written in, by what sent it, its status and reason
# (measure `messages`), and how many of them were replied to, opted out after or handed off
# (measures `replied`, `opted_out`, `handed_off`): an hour is counted again, whole, whenever a
# message of it changed. "" stands for none in the text columns.
stats_hours = Table(
    "stats_hours",
    metadata,
    Column("workspace_id", String(40), nullable=False),
    Column("hour", BigInteger, nullable=False),  # epoch ms of the hour's start
    Column("measure", String(16), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("flow", String(64), nullable=False),
    Column("trigger", String(200), nullable=False),
    Column("template", String(200), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("count", BigInteger, nullable=False),
    Index("ix_stats_hours_workspace_hour", "workspace_id", "hour"),
)
# The same by day (UTC), summed from stats_hours whenever an hour of the day is counted again:
# a month's figures are some thousands of rows, not a hundred thousand.
stats_days = Table(
    "stats_days",
    metadata,
    Column("workspace_id", String(40), nullable=False),
    Column("day", BigInteger, nullable=False),  # epoch ms of the day's start
    Column("measure", String(16), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("flow", String(64), nullable=False),
    Column("trigger", String(200), nullable=False),
    Column("template", String(200), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("count", BigInteger, nullable=False),
    Index("ix_stats_days_workspace_day", "workspace_id", "day"),
)
# What followed an outbound text, found by the stats loop: the contact replied (`replied`), opted
# out (`opted_out`) or was handed to a person (`handed_off`) before we texted them again. One
# row per text and outcome, with what sent the text, so a period's outcomes are read alone.
message_outcomes = Table(
    "message_outcomes",
    metadata,
    Column("message_id", MessageId, nullable=False),
    Column("outcome", String(16), nullable=False),
    _workspace(),
    Column("message_created_at", Instant, nullable=False),
    Column("flow", String(64)),
    Column("trigger", String(200)),
    Column("template", String(200)),
    Column("topic", String(64)),
    Column("at", Instant, nullable=False),  # when it followed
    PrimaryKeyConstraint("message_id", "outcome"),
    Index("ix_message_outcomes_workspace_created", "workspace_id", "message_created_at"),
)
# Each workspace's queue, sampled by the stats loop every minute: the queue depth chart.
queue_samples = Table(
    "queue_samples",
    metadata,
    Column("workspace_id", String(40), nullable=False),
    Column("at", Instant, nullable=False),
    Column("queued", Integer, nullable=False),
    Column("deferred", Integer, nullable=False),
    Column("sending", Integer, nullable=False),
    PrimaryKeyConstraint("workspace_id", "at"),
)
# Where the stats loop has got to (name -> epoch ms): `counted` (messages changed up to it
# are in stats_hours), `followed` (outcomes found up to it).
stats_marks = Table(
    "stats_marks",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("at", BigInteger, nullable=False),
)
