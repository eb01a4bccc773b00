"""The send path's queries use the partial indexes made for them (migrations 0008, 0013): the
claim reads only queued rows, the receipt time-out sweep only sent ones, and one channel's
sent texts are one range. A bound status value
would hide the partial index from the planner, so this guards the queries' shape too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.dialects import sqlite

from empathic.store import messages as store
from empathic.store import partitions
from empathic.store.db import Database, sqlite_url


async def _plan(db: Database, statement: str) -> str:
    async with db.transaction() as conn:
        rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}")).all()
    return " | ".join(str(r[-1]) for r in rows)


class _Capture:
    """Records the SQL a store function runs, with its values written in."""

    dialect = sqlite.dialect()

    def __init__(self) -> None:
        self.sql: list[str] = []  # as run: values bound
        self.filled: list[str] = []  # values written in, for EXPLAIN

    async def execute(self, statement, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.sql.append(str(statement.compile(dialect=sqlite.dialect())))
        self.filled.append(str(statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})))

        class _Empty:
            def mappings(self):  # type: ignore[no-untyped-def]
                return []

            def keys(self):  # type: ignore[no-untyped-def]
                return []

            def all(self):  # type: ignore[no-untyped-def]
                return []

        return _Empty()


async def test_claim_and_sweep_read_their_partial_indexes(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "plans.db"))
    await db.migrate()
    capture = _Capture()
    await store.queued_batch(capture, 100, channel="main")  # type: ignore[arg-type]
    await store.sent_before(capture, datetime(2026, 11, 23, tzinfo=UTC), 100)  # type: ignore[arg-type]
    assert "status = 'queued'" in capture.sql[0] and "status = 'sent'" in capture.sql[1]  # not bound
    claim, sweep = capture.filled
    try:
        assert "USING INDEX ix_messages_claim" in await _plan(db, claim)
        assert "USING INDEX ix_messages_sent" in await _plan(db, sweep)
    finally:
        await db.close()


class _Statements(_Capture):
    """Keeps the statements a store function runs, to explain them on a real backend."""

    def __init__(self, dialect: Any) -> None:
        super().__init__()
        self.dialect = dialect
        self.statements: list[Any] = []

    async def execute(self, statement, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.statements.append(statement)
        return await super().execute(statement, *args, **kwargs)


async def test_one_channels_sent_texts_are_one_range_of_its_index(database: Database) -> None:
    """The overdue receipt queries and a channel's own receipt time-out sweep read a range of
    ix_messages_sent_channel: that channel's rows only, and (overdue) from the cursor on, a
    row comparison the index seeks to, so a round of passes reads each text once instead of
    every channel's sent rows from the start each pass. On PostgreSQL in every partition,
    one made after the migration too (seq scans off: an empty table would be read whole)."""
    at = datetime(2026, 11, 23, tzinfo=UTC)
    async with database.transaction() as conn:
        await partitions.ensure(conn, at + timedelta(days=200))  # months made later get the index too
        captured = _Statements(conn.dialect)
        await store.overdue(captured, "main", at, (at, "msg_01"), 100)  # type: ignore[arg-type]
        await store.sent_before(captured, at, 100, on="main")  # type: ignore[arg-type]
        cursor, sweep = (
            str(s.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})) for s in captured.statements
        )
        if conn.dialect.name == "sqlite":
            plans = [" | ".join(str(r[-1]) for r in (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")).all())
                     for sql in (cursor, sweep)]
            assert plans == [
                "SEARCH messages USING INDEX ix_messages_sent_channel (channel=? AND (updated_at,id)>(?,?) AND updated_at<?)",
                "SEARCH messages USING INDEX ix_messages_sent_channel (channel=? AND updated_at<?)",
            ]
            return
        await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        made = await conn.run_sync(lambda sync: partitions.partitions(sync, "messages"))
        for sql, range_ in ((cursor, "ROW(updated_at, (id)::text) > ROW("), (sweep, "(updated_at < ")):
            plan = (await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}")).scalar()
            scans = list(_scans(plan[0]["Plan"] if isinstance(plan, list) else json.loads(plan)[0]["Plan"]))
            assert sorted(s["Relation Name"] for s in scans) == sorted(made) and len(made) >= 5
            for scan in scans:
                assert scan["Node Type"] == "Index Scan", scan
                assert scan["Index Name"] == f"{scan['Relation Name']}_channel_updated_at_id_idx", scan
                assert "(channel)::text = 'main'" in scan["Index Cond"] and range_ in scan["Index Cond"], scan


def _scans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "Relation Name" in node:
        yield node
    for child in node.get("Plans", []):
        yield from _scans(child)
