"""The send path's queries use the partial indexes made for them (migration 0008): the claim
reads only queued rows, the receipt time-out sweep only sent ones. A bound status value
would hide the partial index from the planner, so this guards the queries' shape too."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.dialects import sqlite

from empathic.store import messages as store
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
