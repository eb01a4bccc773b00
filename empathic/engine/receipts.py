"""Delivery receipts: matched to messages by (channel, carrier id) in batches.

A receipt may arrive before its message is recorded `sent` (the carrier answered faster
than our write), twice, or for an id we never saw. Early ones are retried by timer for a
while; duplicates and receipts that would move a message backwards are ignored. The
transaction that records a message `sent` applies its early receipt at once (`apply_early`):
kept in memory (`Early`) when this process got it, else its retry timer, parked by the
worker whose bind it came on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict
from datetime import datetime, timedelta

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.channels.base import Receipt, ReceiptStatus, storable_id
from empathic.core.messages import Status, can_move
from empathic.engine import lifecycle
from empathic.store import messages as store
from empathic.store import timers
from empathic.store.messages import Transition
from empathic.store.records import MessageRow

log = logging.getLogger(__name__)

RETRY = "receipt.retry"
MAX_TRIES = 10

_STATUS = {
    ReceiptStatus.DELIVERED: Status.DELIVERED,
    ReceiptStatus.UNDELIVERED: Status.UNDELIVERED,
    ReceiptStatus.FAILED: Status.FAILED,
    ReceiptStatus.EXPIRED: Status.EXPIRED,
}


def _reason(receipt: Receipt) -> str:
    if receipt.queried:  # the carrier answered when asked (engine.overdue)
        return "carrier_query" if receipt.error_code is None else f"carrier_query_error_{receipt.error_code}"
    return "carrier_receipt" if receipt.error_code is None else f"carrier_error_{receipt.error_code}"


class Early:
    """Receipts that came before their message was recorded `sent`, by (channel, carrier id);
    the oldest are forgotten past `limit` (their timers still apply them)."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._waiting: dict[tuple[str, str], Receipt] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def keep(self, receipts: list[Receipt]) -> None:
        for r in receipts:
            self._waiting[(r.channel, r.carrier_id)] = r
        while len(self._waiting) > self.limit:
            del self._waiting[next(iter(self._waiting))]

    def take(self, channel: str, carrier_ids: list[str]) -> list[Receipt]:
        if not self._waiting:
            return []
        return [r for cid in carrier_ids if (r := self._waiting.pop((channel, cid), None)) is not None]


async def apply_early(conn: AsyncConnection, early: Early | None, channel: str, carrier_ids: list[str], now: datetime) -> None:
    """In the transaction that just recorded these carrier ids `sent`: their early receipts,
    kept in this process's memory or parked as retry timers by another process (an SMSC
    sends receipts on any bind of the account, often another worker's)."""
    if not carrier_ids:
        return
    waiting = {_ref(r): r for r in (early.take(channel, carrier_ids) if early is not None else [])}
    for payload in await timers.take_refs(conn, RETRY, [_ref_of(channel, cid) for cid in carrier_ids]):
        receipt, _ = decode(payload)
        waiting.setdefault(_ref(receipt), receipt)
    if waiting:
        await apply(conn, list(waiting.values()), now)


async def apply(
    conn: AsyncConnection, receipts: list[Receipt], now: datetime, tries: int = 0, *, early: Early | None = None
) -> int:
    """Apply receipts; returns how many moved a message. Unmatched ones are retried by timer
    (and kept in `early`, if given)."""
    by_channel: dict[str, list[Receipt]] = defaultdict(list)
    for r in receipts:
        if not storable_id(r.carrier_id):  # longer than any id we keep (or NUL): matches nothing, ever
            log.info("%s: receipt for a malformed carrier id ignored", r.channel)
            continue
        by_channel[r.channel].append(r)
    transitions: list[Transition] = []
    rows: dict[str, MessageRow] = {}
    unmatched: list[Receipt] = []
    for channel, group in by_channel.items():
        found = await store.by_carrier_ids(conn, channel, [r.carrier_id for r in group])
        for receipt in group:
            row = found.get(receipt.carrier_id)
            if row is None:
                unmatched.append(receipt)
                continue
            current = Status(rows.get(row.id, row).status)
            new = _STATUS[receipt.status]
            if not can_move(current, new):
                continue  # a duplicate, or news older than what we know
            rows[row.id] = msgspec.structs.replace(row, status=new.value)
            transitions.append(Transition(row.id, row.workspace_id, new, _reason(receipt), now))
    await lifecycle.record(conn, transitions, rows, now)
    if unmatched:
        if early is not None:
            early.keep(unmatched)
        if tries < MAX_TRIES:
            due = now + timedelta(seconds=min(60.0, 2.0**tries))
            await timers.schedule(
                conn,
                [
                    timers.Timer(RETRY, _ref(r), due, {**_encode(r), "tries": tries + 1})
                    for r in unmatched
                ],
            )
        else:
            log.warning("dropping %d receipts for unknown carrier ids", len(unmatched))
    return len(transitions)


def _ref(receipt: Receipt) -> str:
    return _ref_of(receipt.channel, receipt.carrier_id)


def _ref_of(channel: str, carrier_id: str) -> str:
    return f"{channel}:{carrier_id}"[:100]  # only a label (100 characters): the payload holds the receipt


def _encode(receipt: Receipt) -> dict:
    data = asdict(receipt)
    data["at"] = receipt.at.isoformat()
    return data


def decode(payload: dict) -> tuple[Receipt, int]:
    return (
        Receipt(
            channel=payload["channel"],
            carrier_id=payload["carrier_id"],
            status=ReceiptStatus(payload["status"]),
            error_code=payload["error_code"],
            at=datetime.fromisoformat(payload["at"]),
            queried=payload.get("queried", False),  # timers written before it was kept
        ),
        payload["tries"],
    )
