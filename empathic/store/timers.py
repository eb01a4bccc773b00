"""Durable timers: a row per future action, claimed once when due."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
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


async def claim_due(conn: AsyncConnection, now: datetime, limit: int) -> list[Timer]:
    """Take due timers out of the table; the caller's transaction makes firing and removal atomic."""
    rows = (
        await conn.execute(select(timers).where(timers.c.due_at <= now).order_by(timers.c.due_at).limit(limit))
    ).mappings().all()
    if rows:
        await conn.execute(delete(timers).where(timers.c.id.in_([r["id"] for r in rows])))
    return [Timer(r["kind"], r["ref"], r["due_at"], r["payload"], r["workspace_id"]) for r in rows]


async def next_due(conn: AsyncConnection) -> datetime | None:
    return (await conn.execute(select(timers.c.due_at).order_by(timers.c.due_at).limit(1))).scalar()


async def cancel(conn: AsyncConnection, kind: str, refs: Sequence[str]) -> None:
    for start in range(0, len(refs), 500):
        await conn.execute(delete(timers).where(timers.c.kind == kind, timers.c.ref.in_(refs[start : start + 500])))
