"""Business events as received, with the messages they caused (for idempotent replays)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.store.schema import events


async def by_key(conn: AsyncConnection, workspace_id: str, key: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(select(events).where(events.c.workspace_id == workspace_id, events.c.idempotency_key == key))
    ).mappings().first()
    return dict(row) if row else None


async def add(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(events).values(**row))
