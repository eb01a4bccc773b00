"""The consent ledger: append-only rows, read back as `ConsentState` per contact."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.consent import ConsentAction, ConsentEntry, ConsentState
from empathic.core.topics import TopicKind
from empathic.store.schema import consent_ledger

Standing = Literal["granted", "revoked", "requested"]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One row of the consent ledger: what changed, on which channel, who recorded it, from
    where (`source`), with what evidence, and when."""

    topic: str  # "*": every non-essential topic
    channel: str
    action: str  # ConsentAction's value
    source: str  # keyword | api | web_form | agent | import
    actor: str
    evidence: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class TopicConsent:
    """Where a contact stands on one non-essential topic, per channel (None: never asked)."""

    topic: str
    kind: TopicKind
    sms: Standing | None
    email: Standing | None


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


async def entries(conn: AsyncConnection, workspace_id: str, contact_id: str) -> list[LedgerEntry]:
    """The contact's ledger, oldest first."""
    c = consent_ledger.c
    rows = await conn.execute(
        select(c.topic, c.channel, c.action, c.source, c.actor, c.evidence, c.at)
        .where(c.workspace_id == workspace_id, c.contact_id == contact_id)
        .order_by(c.id)
    )
    return [LedgerEntry(*r) for r in rows.all()]


async def history(conn: AsyncConnection, workspace_id: str, contact_id: str) -> list[dict[str, Any]]:
    """The contact's ledger as JSON (the API's and the export's `history`), oldest first."""
    return [
        {
            "topic": e.topic,
            "channel": e.channel,
            "action": e.action,
            "source": e.source,
            "actor": e.actor,
            "evidence": e.evidence,
            "at": e.at.isoformat(),
        }
        for e in await entries(conn, workspace_id, contact_id)
    ]


def standing(state: ConsentState, topic: str, channel: str) -> Standing | None:
    """Where the person stands on a topic's channel: express consent, opted out, asked and
    not yet answered, or nothing recorded."""
    if state.granted(topic, channel):
        return "granted"
    if state.opted_out(topic, channel):
        return "revoked"
    return "requested" if (topic, channel) in state.requests else None


def by_topic(state: ConsentState, topics: Mapping[str, TopicKind]) -> list[TopicConsent]:
    """The contact's standing on every non-essential topic of the project, by name."""
    return [
        TopicConsent(name, kind, standing(state, name, "sms"), standing(state, name, "email"))
        for name, kind in sorted(topics.items())
        if not kind.essential
    ]
