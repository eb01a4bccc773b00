"""The consent ledger: append-only rows, read back as `ConsentState` per contact."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.consent import ConsentAction, ConsentEntry, ConsentState
from empathic.store.schema import consent_ledger


async def append(
    conn: AsyncConnection,
    workspace_id: str,
    contact_id: str,
    *,
    topic: str,
    channel: str,
    action: ConsentAction,
    source: str,
    actor: str,
    evidence: str | None,
    at: datetime,
) -> None:
    await conn.execute(
        insert(consent_ledger).values(
            workspace_id=workspace_id,
            contact_id=contact_id,
            topic=topic,
            channel=channel,
            action=action,
            source=source,
            actor=actor,
            evidence=evidence,
            at=at,
        )
    )


async def states(
    conn: AsyncConnection, workspace_id: str, contact_ids: Iterable[str]
) -> dict[str, ConsentState]:
    """Current consent of each contact (contacts with no ledger rows get the empty state)."""
    ids = list(set(contact_ids))
    entries: dict[str, list[ConsentEntry]] = defaultdict(list)
    for start in range(0, len(ids), 500):
        rows = await conn.execute(
            select(
                consent_ledger.c.contact_id, consent_ledger.c.topic, consent_ledger.c.channel,
                consent_ledger.c.action, consent_ledger.c.at,
            )
            .where(
                consent_ledger.c.workspace_id == workspace_id,
                consent_ledger.c.contact_id.in_(ids[start : start + 500]),
            )
            .order_by(consent_ledger.c.id)
        )
        for contact_id, topic, channel, action, at in rows:
            entries[contact_id].append(ConsentEntry(topic, channel, ConsentAction(action), at))
    return {cid: ConsentState.fold(entries.get(cid, ())) for cid in ids}


async def history(conn: AsyncConnection, workspace_id: str, contact_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(consent_ledger)
        .where(consent_ledger.c.workspace_id == workspace_id, consent_ledger.c.contact_id == contact_id)
        .order_by(consent_ledger.c.id)
    )
    return [
        {
            "topic": r["topic"],
            "channel": r["channel"],
            "action": r["action"],
            "source": r["source"],
            "actor": r["actor"],
            "evidence": r["evidence"],
            "at": r["at"].isoformat(),
        }
        for r in rows.mappings()
    ]
