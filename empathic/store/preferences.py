"""Contact preferences: one JSON document per contact (checked by core.preferences)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.store.schema import preferences

_CHUNK = 500


async def of_contacts(conn: AsyncConnection, workspace_id: str, contact_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Stored preferences by contact id (contacts without any are absent)."""
    ids = sorted(set(contact_ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = await conn.execute(
            select(preferences.c.contact_id, preferences.c.data).where(
                preferences.c.workspace_id == workspace_id, preferences.c.contact_id.in_(ids[start : start + _CHUNK])
            )
        )
        found.update({contact_id: data for contact_id, data in rows})
    return found


async def get(conn: AsyncConnection, workspace_id: str, contact_id: str) -> dict[str, Any] | None:
    return (await of_contacts(conn, workspace_id, [contact_id])).get(contact_id)


async def put(conn: AsyncConnection, workspace_id: str, contact_id: str, data: Mapping[str, Any], now: datetime) -> None:
    """Replace the contact's preferences (the caller holds the write transaction)."""
    await conn.execute(
        delete(preferences).where(preferences.c.workspace_id == workspace_id, preferences.c.contact_id == contact_id)
    )
    await conn.execute(
        insert(preferences).values(workspace_id=workspace_id, contact_id=contact_id, data=dict(data), updated_at=now)
    )
