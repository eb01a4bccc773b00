"""Email fallbacks of texts: the email a text becomes if it fails for good, and the link
from the text to the email it became (engine.fallback decides and sends)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.store.schema import fallbacks

_CHUNK = 500


async def add(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Record fallbacks (`message_id`, `workspace_id`, `reason`, `subject`, `body`, `html`,
    `created_at`); a text that has one already keeps it."""
    if not rows:
        return
    known = await of_messages(conn, [r["message_id"] for r in rows])
    fresh = [{**r, "email_id": None} for r in rows if r["message_id"] not in known]
    if fresh:
        await conn.execute(insert(fallbacks), fresh)


async def pending(conn: AsyncConnection, message_ids: Iterable[str]) -> list[str]:
    """The texts among these that have a fallback not yet sent."""
    wanted = list(set(message_ids))
    found: list[str] = []
    for start in range(0, len(wanted), _CHUNK):
        rows = await conn.execute(
            select(fallbacks.c.message_id).where(
                fallbacks.c.message_id.in_(wanted[start : start + _CHUNK]), fallbacks.c.email_id.is_(None)
            )
        )
        found.extend(r[0] for r in rows)
    return found


async def of_messages(conn: AsyncConnection, message_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The fallbacks of these texts, by text id."""
    wanted = list(set(message_ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = await conn.execute(select(fallbacks).where(fallbacks.c.message_id.in_(wanted[start : start + _CHUNK])))
        found.update({r["message_id"]: dict(r) for r in rows.mappings()})
    return found


async def sent(conn: AsyncConnection, message_id: str, email_id: str) -> None:
    """The text's fallback went out as `email_id`; its copy of the email is no longer needed."""
    await conn.execute(
        update(fallbacks)
        .where(fallbacks.c.message_id == message_id)
        .values(email_id=email_id, subject=None, body=None, html=None)
    )


async def link(conn: AsyncConnection, workspace_id: str, message_id: str) -> dict[str, str] | None:
    """For the message view: {"fallback": email id} for a text that fell back,
    {"fallback_of": text id} for the email it became; None otherwise."""
    row = (
        await conn.execute(
            select(fallbacks.c.message_id, fallbacks.c.email_id).where(
                fallbacks.c.workspace_id == workspace_id,
                or_(fallbacks.c.message_id == message_id, fallbacks.c.email_id == message_id),
                fallbacks.c.email_id.is_not(None),
            )
        )
    ).first()
    if row is None:
        return None
    text_id, email_id = row
    return {"fallback": email_id} if text_id == message_id else {"fallback_of": text_id}


async def forget(conn: AsyncConnection, message_ids: Sequence[str]) -> None:
    """Erasure: the fallbacks of these messages (texts or the emails they became)."""
    for start in range(0, len(message_ids), _CHUNK):
        chunk = message_ids[start : start + _CHUNK]
        await conn.execute(delete(fallbacks).where(or_(fallbacks.c.message_id.in_(chunk), fallbacks.c.email_id.in_(chunk))))


async def forget_unused_older_than(conn: AsyncConnection, cutoff: datetime, *, limit: int = 1000) -> int:
    """Retention: fallbacks written before `cutoff` that were never needed (their text got
    through, or is long past failing) are deleted with the email they held."""
    ids = [
        r[0]
        for r in await conn.execute(
            select(fallbacks.c.message_id)
            .where(fallbacks.c.created_at < cutoff, fallbacks.c.email_id.is_(None))
            .limit(limit)
        )
    ]
    if ids:
        await conn.execute(delete(fallbacks).where(fallbacks.c.message_id.in_(ids)))
    return len(ids)
