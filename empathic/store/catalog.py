"""Templates and triggers a workspace manages over the API (project files are the defaults)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.store.schema import templates, triggers


async def templates_of(conn: AsyncConnection, workspace_id: str) -> dict[str, dict[str, Any]]:
    rows = await conn.execute(select(templates).where(templates.c.workspace_id == workspace_id))
    return {r["name"]: dict(r) for r in rows.mappings()}


async def template(conn: AsyncConnection, workspace_id: str, name: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(templates).where(templates.c.workspace_id == workspace_id, templates.c.name == name)
        )
    ).mappings().first()
    return dict(row) if row else None


async def put_template(conn: AsyncConnection, workspace_id: str, name: str, body: str, now: datetime) -> None:
    await conn.execute(delete(templates).where(templates.c.workspace_id == workspace_id, templates.c.name == name))
    await conn.execute(insert(templates).values(workspace_id=workspace_id, name=name, body=body, updated_at=now))


async def delete_template(conn: AsyncConnection, workspace_id: str, name: str) -> bool:
    result = await conn.execute(
        delete(templates).where(templates.c.workspace_id == workspace_id, templates.c.name == name)
    )
    return result.rowcount > 0


async def triggers_of(conn: AsyncConnection, workspace_id: str) -> dict[str, dict[str, Any]]:
    rows = await conn.execute(select(triggers).where(triggers.c.workspace_id == workspace_id))
    return {r["name"]: dict(r) for r in rows.mappings()}


async def put_trigger(
    conn: AsyncConnection, workspace_id: str, name: str, event_type: str, template_name: str, topic: str, now: datetime
) -> None:
    await conn.execute(delete(triggers).where(triggers.c.workspace_id == workspace_id, triggers.c.name == name))
    await conn.execute(
        insert(triggers).values(
            workspace_id=workspace_id, name=name, event_type=event_type, template=template_name, topic=topic, updated_at=now
        )
    )


async def delete_trigger(conn: AsyncConnection, workspace_id: str, name: str) -> bool:
    result = await conn.execute(
        delete(triggers).where(triggers.c.workspace_id == workspace_id, triggers.c.name == name)
    )
    return result.rowcount > 0
