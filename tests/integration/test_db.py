"""The database handle: cancellation safety, instant precision, and telling an outage from a fault."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest
from sqlalchemy import insert, select, text

from empathic.store.db import Database, after_commit, unavailable
from empathic.store.schema import Instant, timers


async def test_a_cancelled_transaction_releases_the_database(database: Database) -> None:
    inside = asyncio.Event()

    async def hold() -> None:
        async with database.transaction() as conn:
            await conn.execute(
                insert(timers).values(kind="k", ref="r", due_at=datetime.now(UTC), payload={})
            )
            inside.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(hold())
    await inside.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    async def write_again() -> int:
        async with database.transaction() as conn:
            await conn.execute(insert(timers).values(kind="k", ref="s", due_at=datetime.now(UTC), payload={}))
            return len((await conn.execute(select(timers.c.ref))).all())

    # The cancelled write was rolled back and the lock is free: this does not wait 10 s.
    assert await asyncio.wait_for(write_again(), timeout=3) == 1


async def test_cancelling_at_any_point_of_a_transaction_never_wedges_it(database: Database) -> None:
    async def busy(n: int) -> None:
        async with database.transaction() as conn:
            for i in range(20):
                await conn.execute(insert(timers).values(kind="k", ref=f"{n}-{i}", due_at=datetime.now(UTC), payload={}))

    for n in range(60):
        task = asyncio.create_task(busy(n))
        await asyncio.sleep(0.0005 * (n % 12))  # cancel at a different point each time
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    async with asyncio.timeout(5):
        async with database.transaction() as conn:
            refs = [r for (r,) in (await conn.execute(select(timers.c.ref))).all()]
    # Each transaction committed whole or not at all.
    per_tx: dict[str, int] = {}
    for ref in refs:
        per_tx[ref.split("-")[0]] = per_tx.get(ref.split("-")[0], 0) + 1
    assert all(count == 20 for count in per_tx.values()), per_tx


@settings(max_examples=300)
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))
def test_instants_keep_every_millisecond(at: datetime) -> None:
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)
    kind = Instant()
    stored = kind.process_bind_param(at, None)
    assert kind.process_result_value(stored, None) == at
    assert stored == (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


async def test_a_fault_in_a_statement_is_not_an_outage(database: Database) -> None:
    """Only a database out of reach earns a 503; a broken statement stays a 500 (a bug)."""
    for statement in ("SELECT * FROM no_such_table", "SELEC 1", "SELECT abs(-9223372036854775807 - 1)"):
        with pytest.raises(Exception) as caught:
            async with database.transaction() as conn:
                await conn.execute(text(statement))
        assert not unavailable(caught.value), (statement, caught.value)
    nowhere = Database("postgresql://postgres@127.0.0.1:1/test" if not database.is_sqlite else "sqlite:////nonexistent/dir/x.db")
    with pytest.raises(Exception) as caught:
        async with nowhere.transaction() as conn:
            await conn.execute(text("SELECT 1"))
    await nowhere.close()
    assert unavailable(caught.value), caught.value


async def test_after_commit_runs_once_committed_and_never_on_rollback(database: Database) -> None:
    ran: list[str] = []
    async with database.transaction() as conn:
        await conn.execute(insert(timers).values(kind="k", ref="a", due_at=datetime.now(UTC), payload={}))
        after_commit(conn, lambda: ran.append("first"))
        after_commit(conn, lambda: ran.append("second"))
        assert ran == []  # not before the commit
    assert ran == ["first", "second"]

    with pytest.raises(RuntimeError):
        async with database.transaction() as conn:
            await conn.execute(insert(timers).values(kind="k", ref="b", due_at=datetime.now(UTC), payload={}))
            after_commit(conn, lambda: ran.append("rolled back"))
            raise RuntimeError("the caller's fault")
    async with database.transaction() as conn:  # the same pooled connection: nothing left over
        assert [r for (r,) in (await conn.execute(select(timers.c.ref))).all()] == ["a"]
    assert ran == ["first", "second"]

    async with database.engine.begin() as raw:  # not a Database.transaction: at once
        after_commit(raw, lambda: ran.append("at once"))
    assert ran == ["first", "second", "at once"]
