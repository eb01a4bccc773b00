"""The simulator carrier's log kept in the database (`store.simulator`): what the channel
(`channels.simulator.CarrierLog`) remembers, and the fence on its hand-offs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from empathic.channels.base import ReceiptStatus
from empathic.channels.simulator import CarriedText, OwedReceipt
from empathic.engine.dispatcher import Lease
from empathic.store import simulator as store
from empathic.store.db import Database


class StoredCarrierLog:
    def __init__(self, db: Database) -> None:
        self.db = db
        # This carrier lives in our database, so a hand-off can be fenced like a claim
        # (engine.duties): set by the runtime when workers share channels by lease.
        self.lease: Lease | None = None

    async def took(self, texts: Sequence[CarriedText]) -> bool:
        async with self.db.transaction() as conn:
            if self.lease is not None and not await self.lease.still_mine(conn):
                return False
            await store.add(conn, [_stored(t) for t in texts])
        return True

    async def phone_sent(self, text: CarriedText) -> None:
        async with self.db.transaction() as conn:
            await store.add(conn, [_stored(text)])

    async def carrier_ids(self, message_ids: Sequence[str]) -> dict[str, str]:
        async with self.db.transaction() as conn:
            return await store.carrier_ids(conn, message_ids)

    async def phone_history(self, phone: str, *, workspace_id: str | None, limit: int) -> list[CarriedText]:
        async with self.db.transaction() as conn:
            found = await store.phone_history(conn, phone, workspace_id=workspace_id, limit=limit)
        return [
            CarriedText(
                phone=m.phone, direction=m.direction, peer=m.peer, body=m.body, carrier_id=m.carrier_id, at=m.at,
                client_ref=m.client_ref, receipt_status=ReceiptStatus(m.receipt_status) if m.receipt_status else None,
                receipt_due_at=m.receipt_due_at, receipt_sent=m.receipt_sent_at is not None,
            )
            for m in found
        ]

    async def owed_receipts(self, now: datetime, limit: int) -> list[OwedReceipt]:
        async with self.db.transaction() as conn:
            owed = await store.owed_receipts(conn, now, limit)
        return [OwedReceipt(o.id, o.carrier_id, ReceiptStatus(o.status)) for o in owed]

    async def receipts_sent(self, refs: Sequence[int], now: datetime) -> None:
        async with self.db.transaction() as conn:
            await store.receipts_sent(conn, refs, now)

    async def next_receipt_due(self) -> datetime | None:
        async with self.db.transaction() as conn:
            return await store.next_receipt_due(conn)


def _stored(text: CarriedText) -> store.SimMessage:
    return store.SimMessage(
        phone=text.phone, direction=text.direction, peer=text.peer, body=text.body, carrier_id=text.carrier_id,
        at=text.at, client_ref=text.client_ref, receipt_status=text.receipt_status, receipt_due_at=text.receipt_due_at,
    )
