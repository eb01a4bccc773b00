"""The outbox's group commit: many concurrent callers, few transactions, nothing mixed up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from empathic.core.topics import DEFAULT_TOPICS, Topics
from empathic.engine import outbox
from empathic.store import keys
from empathic.store import messages as store
from empathic.store.db import Database
from empathic.store.records import MessageRow, NewMessage
from empathic.store.schema import message_events, messages

WS = "ws_test"
ACCEPTANCE = outbox.Acceptance(topics=Topics(dict(DEFAULT_TOPICS)), sender="+18005550100")


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 11, 23, 12, tzinfo=UTC)


class Counter:
    def __init__(self) -> None:
        self.commits = 0

    def __call__(self) -> None:
        self.commits += 1


@pytest.fixture
async def db(database: Database) -> Database:
    async with database.transaction() as conn:
        await keys.ensure_workspace(conn, WS, "test", datetime.now(UTC))
        await keys.ensure_workspace(conn, "ws_other", "other", datetime.now(UTC))
    return database


def req(n: int, **kw: Any) -> outbox.MessageRequest:
    return outbox.MessageRequest(to=f"+1415555{n:04d}", body=f"message {n}", **kw)


async def count_rows(db: Database) -> tuple[int, int]:
    async with db.transaction() as conn:
        m = (await conn.execute(select(func.count()).select_from(messages))).scalar_one()
        e = (await conn.execute(select(func.count()).select_from(message_events))).scalar_one()
    return m, e


async def test_concurrent_callers_share_transactions_and_get_their_own_rows(db: Database) -> None:
    commits = Counter()
    box = outbox.Outbox(db, FixedClock(), ACCEPTANCE, on_commit=commits)
    results = await asyncio.gather(*(box.submit(WS, [req(n)]) for n in range(60)))
    assert [r[0].to_addr for r in results] == [f"+1415555{n:04d}" for n in range(60)]
    assert [r[0].body for r in results] == [f"message {n}" for n in range(60)]
    assert len({r[0].id for r in results}) == 60
    assert 1 <= commits.commits < 60  # grouped: the first writes alone, the rest ride together
    assert await count_rows(db) == (60, 60)  # each message with its one `queued` history row


async def test_workspaces_in_one_group_stay_apart(db: Database) -> None:
    box = outbox.Outbox(db, FixedClock(), ACCEPTANCE, on_commit=Counter())
    mine, theirs = await asyncio.gather(
        box.submit(WS, [req(1, idempotency_key="same")]),
        box.submit("ws_other", [req(1, idempotency_key="same")]),
    )
    assert mine[0].workspace_id == WS and theirs[0].workspace_id == "ws_other"
    assert mine[0].id != theirs[0].id  # an idempotency key is per workspace


async def test_a_repeated_key_in_one_group_is_one_message(db: Database) -> None:
    box = outbox.Outbox(db, FixedClock(), ACCEPTANCE, on_commit=Counter())
    results = await asyncio.gather(*(box.submit(WS, [req(n, idempotency_key="k")]) for n in range(5)))
    assert len({r[0].id for r in results}) == 1
    assert {r[0].body for r in results} == {"message 0"}  # the first one wins, unchanged
    assert await count_rows(db) == (1, 1)


async def test_bad_input_fails_its_caller_alone_and_stores_nothing_for_it(db: Database) -> None:
    box = outbox.Outbox(db, FixedClock(), ACCEPTANCE, on_commit=Counter())
    good = [box.submit(WS, [req(n)]) for n in range(3)]
    bad = box.submit(WS, [req(9), outbox.MessageRequest(to="12", body="x")], numbered=True)
    *oks, failed = await asyncio.gather(*good, bad, return_exceptions=True)
    assert isinstance(failed, outbox.SubmitError) and failed.field == "messages[1].to"
    assert all(isinstance(r, list) and len(r) == 1 for r in oks)
    assert await count_rows(db) == (3, 3)  # the bad batch's good first item was not stored either


async def test_key_race_with_another_process_returns_the_winner(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another process commits key "k" between our look-up and our insert: the unique index
    # rejects the whole group, and the retry one by one finds the winner's message.
    box = outbox.Outbox(db, FixedClock(), ACCEPTANCE, on_commit=Counter())
    (winner,) = await box.submit(WS, [req(1, idempotency_key="k")])
    real = store.by_idempotency_keys
    blind = {"left": 1}

    async def stale_lookup(conn: Any, workspace_id: str, wanted: list[str]) -> dict[str, MessageRow]:
        if blind["left"]:
            blind["left"] -= 1
            return {}
        return await real(conn, workspace_id, wanted)

    monkeypatch.setattr(store, "by_idempotency_keys", stale_lookup)
    again, other = await asyncio.gather(
        box.submit(WS, [req(2, idempotency_key="k")]), box.submit(WS, [req(3, idempotency_key="other")])
    )
    assert blind["left"] == 0
    assert again[0].id == winner.id and again[0].body == "message 1"
    assert other[0].idempotency_key == "other"
    assert await count_rows(db) == (2, 2)


async def test_a_failed_write_fails_its_group_and_the_next_group_works(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    box = outbox.Outbox(db, FixedClock(), ACCEPTANCE, on_commit=Counter())
    real = outbox.write
    broken = {"left": 1}

    async def flaky(*args: Any, **kwargs: Any) -> list[NewMessage]:
        if broken["left"]:
            broken["left"] -= 1
            raise ConnectionError("database went away")
        return await real(*args, **kwargs)

    monkeypatch.setattr(outbox, "write", flaky)
    with pytest.raises(ConnectionError):
        await box.submit(WS, [req(1)])
    assert await count_rows(db) == (0, 0)
    (row,) = await box.submit(WS, [req(2)])
    assert row.to_addr == "+14155550002"
    assert await count_rows(db) == (1, 1)


async def test_an_abandoned_caller_is_still_written_before_drain_returns(db: Database) -> None:
    box = outbox.Outbox(db, FixedClock(), ACCEPTANCE, on_commit=Counter())
    callers = [asyncio.create_task(box.submit(WS, [req(n)])) for n in range(10)]
    await asyncio.sleep(0)  # all ten are pending now
    for c in callers[5:]:
        c.cancel()  # a client that hung up: what was accepted is written all the same
    await box.drain()
    assert await count_rows(db) == (10, 10)
    assert all(c.cancelled() for c in callers[5:])
