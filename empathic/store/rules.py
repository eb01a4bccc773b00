"""A workspace's own sending rules, kept as the text of a rules file (core.regulations)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.store.schema import workspace_rules


async def of_workspaces(conn: AsyncConnection, workspace_ids: Iterable[str]) -> dict[str, tuple[str, datetime]]:
    """(text, updated_at) by workspace, for those that have their own rules."""
    ids = sorted(set(workspace_ids))
    rows = await conn.execute(
        select(workspace_rules.c.workspace_id, workspace_rules.c.text, workspace_rules.c.updated_at).where(
            workspace_rules.c.workspace_id.in_(ids)
        )
    )
    return {ws: (text, at) for ws, text, at in rows}


async def put(conn: AsyncConnection, workspace_id: str, text: str, now: datetime) -> None:
    await remove(conn, workspace_id)
    await conn.execute(insert(workspace_rules).values(workspace_id=workspace_id, text=text, updated_at=now))


async def remove(conn: AsyncConnection, workspace_id: str) -> bool:
    result = await conn.execute(delete(workspace_rules).where(workspace_rules.c.workspace_id == workspace_id))
    return result.rowcount > 0
