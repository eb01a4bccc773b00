"""Inbox threads: one per contact, open while a reply waits for a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.ids import new_id
from empathic.store.schema import threads


async def open_for(conn: AsyncConnection, workspace_id: str, contact_id: str, message_id: str, now: datetime) -> str:
    """Open (or keep open) the contact's thread with this message as its latest."""
    found = (
        await conn.execute(
            select(threads.c.id).where(threads.c.workspace_id == workspace_id, threads.c.contact_id == contact_id)
        )
    ).scalar()
    if found:
        await conn.execute(
            update(threads)
            .where(threads.c.id == found)
            .values(status="open", last_message_id=message_id, updated_at=now)
        )
        return found
    thread_id = new_id("th")
    await conn.execute(
        insert(threads).values(
            id=thread_id,
            workspace_id=workspace_id,
            contact_id=contact_id,
            status="open",
            last_message_id=message_id,
            opened_at=now,
            updated_at=now,
        )
    )
    return thread_id


async def get(conn: AsyncConnection, workspace_id: str, thread_id: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(select(threads).where(threads.c.workspace_id == workspace_id, threads.c.id == thread_id))
    ).mappings().first()
    return dict(row) if row else None


async def set_status(conn: AsyncConnection, thread_id: str, status: str, now: datetime) -> None:
    await conn.execute(update(threads).where(threads.c.id == thread_id).values(status=status, updated_at=now))


async def page(
    conn: AsyncConnection, workspace_id: str, *, status: str | None, limit: int, cursor: str | None
) -> list[dict[str, Any]]:
    query = select(threads).where(threads.c.workspace_id == workspace_id)
    if status:
        query = query.where(threads.c.status == status)
    if cursor:
        query = query.where(threads.c.id < cursor)
    rows = await conn.execute(query.order_by(threads.c.id.desc()).limit(limit))
    return [dict(r) for r in rows.mappings()]
