"""Inbox threads: one per contact, open while a reply waits for a person.

The repository returns `Thread` records and makes their JSON view (`to_view`) in this one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.ids import new_id
from empathic.core.json import Json
from empathic.store import contacts, messages
from empathic.store.paging import newest_first
from empathic.store.records import MessageRow
from empathic.store.schema import threads

ThreadStatus = Literal["open", "closed"]


@dataclass(frozen=True, slots=True)
class Thread:
    """A stored inbox thread: the `threads` table's columns, by name."""

    id: str
    workspace_id: str
    contact_id: str
    status: ThreadStatus
    last_message_id: str | None
    note: str | None  # why a flow handed it over
    run_id: str | None  # the flow run waiting for a person to close it
    opened_at: datetime
    updated_at: datetime


def to_view(thread: Thread, contact: contacts.Contact | None, last: MessageRow | None) -> Json:
    """The thread as the API shows it, with its contact and last message when given."""
    return {
        "id": thread.id,
        "status": thread.status,
        "contact": contacts.to_view(contact) if contact else None,
        "last_message": messages.to_view(last) if last else None,
        "note": thread.note,
        "run_id": thread.run_id,
        "opened_at": thread.opened_at.isoformat(),
        "updated_at": thread.updated_at.isoformat(),
    }


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


async def get(conn: AsyncConnection, workspace_id: str, thread_id: str) -> Thread | None:
    row = (
        await conn.execute(select(threads).where(threads.c.workspace_id == workspace_id, threads.c.id == thread_id))
    ).mappings().first()
    return Thread(**row) if row else None


async def of_contact(conn: AsyncConnection, workspace_id: str, contact_id: str) -> Thread | None:
    row = (
        await conn.execute(select(threads).where(threads.c.workspace_id == workspace_id, threads.c.contact_id == contact_id))
    ).mappings().first()
    return Thread(**row) if row else None


async def set_status(conn: AsyncConnection, thread_id: str, status: ThreadStatus, now: datetime) -> None:
    await conn.execute(update(threads).where(threads.c.id == thread_id).values(status=status, updated_at=now))


async def page(
    conn: AsyncConnection, workspace_id: str, *, status: ThreadStatus | None, limit: int, cursor: str | None
) -> list[Thread]:
    query = select(threads).where(threads.c.workspace_id == workspace_id)
    if status:
        query = query.where(threads.c.status == status)
    rows = await conn.execute(newest_first(query, threads.c.id, limit=limit, cursor=cursor))
    return [Thread(**r) for r in rows.mappings()]
