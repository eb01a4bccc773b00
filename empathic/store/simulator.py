"""The built-in carrier simulator's records (`sim_messages`): what each virtual phone
received and sent, and the delivery receipts the carrier still owes.

Kept apart from `messages`, as a real carrier's records would be; the one look at
`messages` is to scope what a phone shows to one workspace's texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.store.schema import messages, sim_messages


@dataclass(frozen=True, slots=True)
class SimMessage:
    """A text the carrier carried: to a phone (`mt`, with the receipt it owes) or from one (`mo`)."""

    phone: str
    direction: str  # mt (to the phone) | mo (from it)
    peer: str  # the business number
    body: str
    carrier_id: str
    at: datetime
    client_ref: str | None = None  # Empathic's message id as submitted (mt)
    receipt_status: str | None = None
    receipt_due_at: datetime | None = None
    receipt_sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OwedReceipt:
    id: int  # the `sim_messages` row, to mark it sent
    carrier_id: str
    status: str


async def add(conn: AsyncConnection, texts: Sequence[SimMessage]) -> None:
    if not texts:
        return
    await conn.execute(insert(sim_messages), [
        {"phone": t.phone, "direction": t.direction, "peer": t.peer, "body": t.body, "carrier_id": t.carrier_id,
         "client_ref": t.client_ref, "receipt_status": t.receipt_status, "receipt_due_at": t.receipt_due_at,
         "receipt_sent_at": t.receipt_sent_at, "at": t.at}
        for t in texts
    ])


async def carrier_ids(conn: AsyncConnection, client_refs: Sequence[str]) -> dict[str, str]:
    """The carrier id of each of these submitted messages the carrier holds, by message id."""
    result = await conn.execute(
        select(sim_messages.c.client_ref, sim_messages.c.carrier_id).where(sim_messages.c.client_ref.in_(client_refs))
    )
    return {ref: cid for ref, cid in result.all()}


async def phone_history(
    conn: AsyncConnection, phone: str, *, workspace_id: str | None = None, limit: int = 100
) -> list[SimMessage]:
    """The phone's newest `limit` texts, oldest first. With `workspace_id`, only that
    workspace's side: the texts its messages became and what the phone sent."""
    query = select(sim_messages).where(sim_messages.c.phone == phone)
    if workspace_id is not None:
        own = exists().where(messages.c.id == sim_messages.c.client_ref, messages.c.workspace_id == workspace_id)
        query = query.where((sim_messages.c.direction == "mo") | own)
    result = await conn.execute(query.order_by(sim_messages.c.id.desc()).limit(limit))
    return [
        SimMessage(
            phone=row["phone"], direction=row["direction"], peer=row["peer"], body=row["body"],
            carrier_id=row["carrier_id"], at=row["at"], client_ref=row["client_ref"],
            receipt_status=row["receipt_status"], receipt_due_at=row["receipt_due_at"],
            receipt_sent_at=row["receipt_sent_at"],
        )
        for row in reversed(result.mappings().all())
    ]


_OWED = sim_messages.c.receipt_sent_at.is_(None) & sim_messages.c.receipt_due_at.is_not(None)


async def owed_receipts(conn: AsyncConnection, now: datetime, limit: int) -> list[OwedReceipt]:
    """Receipts due by `now` and not sent yet, the earliest first."""
    result = await conn.execute(
        select(sim_messages.c.id, sim_messages.c.carrier_id, sim_messages.c.receipt_status)
        .where(_OWED & (sim_messages.c.receipt_due_at <= now))
        .order_by(sim_messages.c.receipt_due_at)
        .limit(limit)
    )
    return [OwedReceipt(row_id, carrier_id, status) for row_id, carrier_id, status in result.all()]


async def receipts_sent(conn: AsyncConnection, ids: Sequence[int], now: datetime) -> None:
    await conn.execute(update(sim_messages).where(sim_messages.c.id.in_(ids)).values(receipt_sent_at=now))


async def next_receipt_due(conn: AsyncConnection) -> datetime | None:
    """When the earliest receipt still owed falls due."""
    result = await conn.execute(
        select(sim_messages.c.receipt_due_at).where(_OWED).order_by(sim_messages.c.receipt_due_at).limit(1)
    )
    due: datetime | None = result.scalar()
    return due
