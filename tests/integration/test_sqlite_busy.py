"""Two processes' connections to one SQLite file (an API process beside a worker): a
transaction that finds the write lock taken waits for it (store/db.py retries), and gives
up with SQLite's own error only after BUSY_WAIT."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from empathic.store import db as db_module
from empathic.store.db import Database, sqlite_url


async def _hold_lock(db: Database, seconds: float, held: asyncio.Event) -> None:
    async with db.transaction() as conn:
        await conn.execute(text("INSERT INTO leases (name, owner, expires_at) VALUES ('x', 'a', 0)"))
        held.set()
        await asyncio.sleep(seconds)


async def test_a_busy_write_lock_is_waited_for(tmp_path: Path) -> None:
    first, second = Database(sqlite_url(tmp_path / "e.db")), Database(sqlite_url(tmp_path / "e.db"))
    await first.migrate()
    held = asyncio.Event()
    holder = asyncio.create_task(_hold_lock(first, 0.3, held))
    await held.wait()
    started = time.monotonic()
    async with second.transaction() as conn:  # another engine: another connection, like another process
        await conn.execute(text("INSERT INTO leases (name, owner, expires_at) VALUES ('y', 'b', 0)"))
    waited = time.monotonic() - started
    await holder
    assert 0.2 <= waited < 1.0  # it waited for the lock, and not much longer than it was held
    async with second.transaction() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM leases"))).scalar() == 2
    await first.close()
    await second.close()


async def test_it_gives_up_after_the_busy_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "BUSY_WAIT", 0.1)
    first, second = Database(sqlite_url(tmp_path / "e.db")), Database(sqlite_url(tmp_path / "e.db"))
    await first.migrate()
    held = asyncio.Event()
    holder = asyncio.create_task(_hold_lock(first, 0.5, held))
    await held.wait()
    with pytest.raises(OperationalError, match="locked"):
        async with second.transaction():
            pass
    await holder
    await first.close()
    await second.close()
