"""Time partitions of `messages` and `message_events` on PostgreSQL.

Both tables are partitioned by ranges of message id, one partition a month: an id begins
with the millisecond it was made in (core/ids.py), so a month's ids are one range, and a
message and its events lie in partitions of the same month, found by the id alone. A
default partition takes any id outside the months made so far, so no write fails for want
of a partition. `ensure` makes the months ahead (taking over what the default holds for
them); it runs at migration and every hour (engine/retention.py). SQLite has no partitions:
there `ensure` does nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.ids import first_id

KEYS = {"messages": "id", "message_events": "message_id"}  # each table's partition key
AHEAD = 2  # months made ahead of the current one
NAME = re.compile(r"^(messages|message_events)_(y\d{4}m\d{2}|default)$")

Month = tuple[int, int]


def month_of(at: datetime) -> Month:
    at = at.astimezone(UTC)
    return at.year, at.month


def next_month(month: Month) -> Month:
    year, number = month
    return (year + 1, 1) if number == 12 else (year, number + 1)


def bound(month: Month) -> str:
    """The lowest message id of `month`."""
    start = datetime(month[0], month[1], 1, tzinfo=UTC)
    return first_id("msg", int(start.timestamp()) * 1000)


def name(table: str, month: Month) -> str:
    return f"{table}_y{month[0]:04d}m{month[1]:02d}"


def is_partition(table_name: str) -> bool:
    return NAME.match(table_name) is not None


async def ensure(conn: AsyncConnection, now: datetime, ahead: int = AHEAD) -> list[str]:
    """Make the partitions of this month and the `ahead` next ones that are missing; returns
    those made."""
    if conn.dialect.name != "postgresql":
        return []
    return await conn.run_sync(ensure_sync, now, ahead)


def ensure_sync(conn: Connection, now: datetime, ahead: int = AHEAD, since: Month | None = None) -> list[str]:
    """`ensure` on a synchronous connection (migrations), from month `since` if given."""
    # One maker at a time per schema: two workers starting together make each month once.
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '/partitions'))"))
    month, last = since or month_of(now), month_of(now)
    for _ in range(ahead):
        last = next_month(last)
    made = []
    existing = set(partitions(conn))
    while month <= last:
        for table in KEYS:
            if name(table, month) not in existing:
                _make(conn, table, month)
                made.append(name(table, month))
        month = next_month(month)
    return made


def partitions(conn: Connection, table: str | None = None) -> list[str]:
    """The partitions of `table` (both tables' if None) in the current schema, by name."""
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relnamespace = current_schema()::regnamespace AND p.relname = ANY(:tables) ORDER BY c.relname"
        ),
        {"tables": [table] if table else list(KEYS)},
    )
    return [r for (r,) in rows]


def _make(conn: Connection, table: str, month: Month) -> None:
    # Made apart and then attached, which locks the parent only against other DDL (CREATE
    # TABLE … PARTITION OF would stop every write to it). Rows of the month that the default
    # partition took meanwhile move over first: attaching checks that it holds none.
    part, key = name(table, month), KEYS[table]
    low, high = bound(month), bound(next_month(month))
    conn.execute(text(f'CREATE TABLE "{part}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'))
    in_range = f"{key} >= :low AND {key} < :high"
    moved = conn.execute(
        text(f'WITH moved AS (DELETE FROM "{table}_default" WHERE {in_range} RETURNING *) '
             f'INSERT INTO "{part}" SELECT * FROM moved'),
        {"low": low, "high": high},
    ).rowcount
    conn.execute(text(f"ALTER TABLE \"{table}\" ATTACH PARTITION \"{part}\" FOR VALUES FROM ('{low}') TO ('{high}')"))
    if moved:
        conn.execute(text(f'ANALYZE "{part}"'))


def schema_filter(dialect: str) -> Callable[[object, str | None, str, bool, object], bool]:
    """What Alembic compares between the declared schema and a database's (`include_object`):
    not the partitions, which the declared schema does not name, nor, on PostgreSQL, the
    events' index on (message_id, id), which there is their primary key."""

    def include(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        if type_ == "table" and name and is_partition(name):
            return False
        return not (dialect == "postgresql" and type_ == "index" and name == "ix_message_events_message")

    return include
