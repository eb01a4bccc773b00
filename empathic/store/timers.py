"""Durable timers: a row per future action, claimed once when due."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.store.schema import timers


@dataclass(frozen=True, slots=True)
class Timer:
    kind: str
    ref: str
    due_at: datetime
    payload: dict[str, Any]
    workspace_id: str | None = None


async def schedule(conn: AsyncConnection, items: Sequence[Timer]) -> None:
    if items:
        await conn.execute(
            insert(timers),
            [
                {"kind": t.kind, "ref": t.ref, "due_at": t.due_at, "payload": t.payload, "workspace_id": t.workspace_id}
                for t in items
            ],
        )


async def claim_due(conn: AsyncConnection, now: datetime, limit: int, *, skip: Sequence[str] = ()) -> list[Timer]:
    """Take due timers out of the table; the caller's transaction makes firing and removal atomic.
    Kinds in `skip` belong to another loop. Two schedulers at once (the moment a worker takes
    the loops over from one that paused) never take the same timer: on PostgreSQL the rows
    are locked as they are read and skipped by the other (SQLite runs one writer at a time)."""
    query = select(timers).where(timers.c.due_at <= now)
    if skip:
        query = query.where(timers.c.kind.not_in(skip))
    query = query.order_by(timers.c.due_at).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = (await conn.execute(query)).mappings().all()
    if rows:
        await conn.execute(delete(timers).where(timers.c.id.in_([r["id"] for r in rows])))
    return [Timer(r["kind"], r["ref"], r["due_at"], r["payload"], r["workspace_id"]) for r in rows]


async def next_due(conn: AsyncConnection, *, kinds: Sequence[str] = (), skip: Sequence[str] = ()) -> datetime | None:
    query = select(timers.c.due_at)
    if kinds:
        query = query.where(timers.c.kind.in_(kinds))
    if skip:
        query = query.where(timers.c.kind.not_in(skip))
    return (await conn.execute(query.order_by(timers.c.due_at).limit(1))).scalar()


async def lease_due(conn: AsyncConnection, kind: str, now: datetime, limit: int, lease: timedelta) -> list[tuple[int, Timer]]:
    """Due timers of one kind, pushed `lease` into the future rather than removed: work that
    happens outside a transaction (an HTTP call) is retried if the process dies meanwhile."""
    query = select(timers).where(timers.c.kind == kind, timers.c.due_at <= now).order_by(timers.c.due_at).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = (await conn.execute(query)).mappings().all()
    if rows:
        await conn.execute(update(timers).where(timers.c.id.in_([r["id"] for r in rows])).values(due_at=now + lease))
    return [(r["id"], Timer(r["kind"], r["ref"], r["due_at"], r["payload"], r["workspace_id"])) for r in rows]


async def take(conn: AsyncConnection, timer_id: int) -> bool:
    """Remove a leased timer; False if it is gone already (another process finished it)."""
    return bool((await conn.execute(delete(timers).where(timers.c.id == timer_id))).rowcount)


async def postpone(conn: AsyncConnection, timer_id: int, due_at: datetime, payload: dict[str, Any]) -> bool:
    result = await conn.execute(update(timers).where(timers.c.id == timer_id).values(due_at=due_at, payload=payload))
    return bool(result.rowcount)


async def cancel(conn: AsyncConnection, kind: str, refs: Sequence[str]) -> None:
    for start in range(0, len(refs), 500):
        await conn.execute(delete(timers).where(timers.c.kind == kind, timers.c.ref.in_(refs[start : start + 500])))


async def take_refs(conn: AsyncConnection, kind: str, refs: Sequence[str]) -> list[dict[str, Any]]:
    """Remove the `kind` timers of these refs, whenever due; their payloads."""
    taken: list[dict[str, Any]] = []
    for start in range(0, len(refs), 500):
        rows = await conn.execute(
            delete(timers).where(timers.c.kind == kind, timers.c.ref.in_(refs[start : start + 500])).returning(timers.c.payload)
        )
        taken += [payload for (payload,) in rows.all()]
    return taken
