"""Durable timers (store/timers.py) on both backends: two schedulers taking due timers at
the same moment (a worker taking the loops over from one that paused, before the paused
one learns it lost them) never both fire one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from empathic.store import timers
from empathic.store.db import Database

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


async def test_two_schedulers_at_once_never_take_the_same_timer(database: Database) -> None:
    due = [timers.Timer("message.release", f"msg_{i}", NOW - timedelta(seconds=i), {}, None) for i in range(40)]
    async with database.transaction() as conn:
        await timers.schedule(conn, due)
    first_has_read = asyncio.Event()
    release_first = asyncio.Event()
    taken: dict[str, list[str]] = {}

    async def scheduler(name: str, db: Database, limit: int, hold: bool) -> None:
        async with db.transaction() as conn:
            got = await timers.claim_due(conn, NOW, limit)
            taken[name] = [t.ref for t in got]
            if hold:  # still firing them, its transaction open, when the other one looks
                first_has_read.set()
                await release_first.wait()

    if database.is_sqlite:  # one writer at a time: the second waits for the first to commit
        await asyncio.gather(scheduler("a", database, 25, False), scheduler("b", database, 25, False))
    else:  # two connections; the first still has its transaction open when the second looks
        held = asyncio.create_task(scheduler("a", database, 25, True))
        await first_has_read.wait()
        second = asyncio.create_task(scheduler("b", database, 25, False))
        done, _ = await asyncio.wait({second}, timeout=5)
        release_first.set()  # a commits; a second that waited on a's rows finishes now
        await asyncio.gather(held, second)
        assert done, "the second scheduler waited on the first one's timers instead of skipping them"
    assert len(taken["a"]) == 25 and len(taken["b"]) == 15
    assert not set(taken["a"]) & set(taken["b"])
    assert set(taken["a"]) | set(taken["b"]) == {t.ref for t in due}
    async with database.transaction() as conn:
        assert await timers.claim_due(conn, NOW, 100) == []
