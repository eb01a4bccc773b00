"""Inbox threads: one per contact, open while a reply waits for a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.ids import new_id
from empathic.store.schema import threads


async def open_for(
    conn: AsyncConnection, workspace_id: str, contact_id: str, message_id: str | None, now: datetime,
    *, note: str | None = None, run_id: str | None = None,
) -> str:
    """Open (or keep open) the contact's thread with this message as its latest; a flow handing
    the thread over says why (`note`) and which run waits for it to close."""
    found = (
        await conn.execute(
            select(threads.c.id).where(threads.c.workspace_id == workspace_id, threads.c.contact_id == contact_id)
        )
    ).scalar()
    if found:
        await conn.execute(
            update(threads)
            .where(threads.c.id == found)
            .values(
                status="open",
                updated_at=now,
                **({"last_message_id": message_id} if message_id is not None else {}),
                **({"note": note, "run_id": run_id} if note is not None or run_id is not None else {}),
            )
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
            note=note,
            run_id=run_id,
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


async def of_contact(conn: AsyncConnection, workspace_id: str, contact_id: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(select(threads).where(threads.c.workspace_id == workspace_id, threads.c.contact_id == contact_id))
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
