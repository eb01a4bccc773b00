"""The simulator's virtual phones a workspace has seen: those its texts went to through the
built-in carrier, and those that texted in (the phones text the server's default workspace).
Read from the carrier's own records (`sim_messages`), scoped as `store.simulator.phone_history`
scopes one phone's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.store.schema import messages, sim_messages


@dataclass(frozen=True, slots=True)
class PhoneSeen:
    phone: str
    texts: int  # received and sent, of this workspace's side
    last_at: datetime


async def phones(conn: AsyncConnection, workspace_id: str, *, limit: int = 200) -> list[PhoneSeen]:
    """The phones, the one texted most recently first."""
    own = exists().where(messages.c.id == sim_messages.c.client_ref, messages.c.workspace_id == workspace_id)
    last = func.max(sim_messages.c.at)
    result = await conn.execute(
        select(sim_messages.c.phone, func.count(), last)
        .where((sim_messages.c.direction == "mo") | own)
        .group_by(sim_messages.c.phone)
        .order_by(last.desc(), sim_messages.c.phone)
        .limit(limit)
    )
    return [PhoneSeen(phone, int(n), at) for phone, n, at in result.all()]
