"""The scheduler: fires durable timers when due (retries, defers, late receipts), and
expires messages left `sent` with no receipt for their channel's `receipt_timeout` (the
`[[channels]]` key; else the default, 72 h).

Timers are claimed and handled in one transaction, so a crash fires a timer again rather
than never; every handler is written to be harmless when repeated. Receipt time-outs are
a sweep over the partial index of sent messages, not a timer row per message: at most
every `SWEEP_EVERY`, so a message expires that much late at worst.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.channels.base import Receipt
from empathic.core.clock import Clock
from empathic.engine import dispatcher, lifecycle, receipts, runs
from empathic.engine.fallback_timer import TIMER as FALLBACK
from empathic.engine.fallback import EmailFallback
from empathic.loop import Loop
from empathic.store import messages as store
from empathic.store import timers
from empathic.store.messages import Transition
from empathic.store.records import MessageRow
from empathic.core.messages import Status
from empathic.store.db import Database

log = logging.getLogger(__name__)

_MESSAGE_TIMERS = {
    dispatcher.RELEASE: dispatcher.release_due,
}
SWEEP_EVERY = timedelta(seconds=30)


class Scheduler:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        on_released: Callable[[], None],
        flows: runs.Flows | None = None,
        receipt_timeout: float = dispatcher.DispatchSettings.receipt_timeout,
        fallback: EmailFallback | None = None,
        receipt_timeouts: Mapping[str, float] | None = None,
    ) -> None:
        """`receipt_timeout`: seconds a text may stay `sent` without news; `receipt_timeouts`:
        the channels that wait another time, by name."""
        self.db = db
        self.clock = clock
        self.on_released = on_released
        self.flows = flows
        self.fallback = fallback
        self.receipt_timeout = timedelta(seconds=receipt_timeout)
        self.receipt_timeouts = {name: timedelta(seconds=t) for name, t in (receipt_timeouts or {}).items()}
        self._next_sweep: datetime | None = None
        self._loop = Loop("scheduler", self._pass)

    def wake(self) -> None:
        self._loop.wake()

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _pass(self) -> float:
        if await self.fire_due():
            return 0.0
        async with self.db.transaction() as conn:
            nxt = await timers.next_due(conn, skip=(runs.CALL,))
        if nxt is None:
            return 1.0
        return min(1.0, max(0.01, (nxt - self.clock.now()).total_seconds()))

    async def fire_due(self, limit: int = 500) -> int:
        now = self.clock.now()
        expired = await self.expire_unreceipted(now, limit)
        async with self.db.transaction() as conn:
            due = await timers.claim_due(conn, now, limit, skip=(runs.CALL,))
            if not due:
                return expired
            released = await _fire(conn, due, now)
            flow_timers = [t for t in due if t.kind == runs.TIMER]
            if flow_timers and self.flows is not None:
                released += await self.flows.fire(conn, flow_timers, now)
            emails = [t for t in due if t.kind == FALLBACK]
            if emails and self.fallback is not None:  # texts that failed for good: their emails
                released += await self.fallback.fire(conn, emails, now)
        if released:
            self.on_released()
        return len(due) + expired

    async def expire_unreceipted(self, now: datetime, limit: int) -> int:
        """`sent` for its channel's receipt time-out without news from the carrier:
        `expired` (a sweep, run when SWEEP_EVERY has passed, or again at once while it
        finds a full batch): a query per channel with a time-out of its own, one for the rest."""
        if self._next_sweep is not None and now < self._next_sweep:
            return 0
        own = sorted(self.receipt_timeouts)
        full = False
        rows: list[MessageRow] = []
        async with self.db.transaction() as conn:
            for name in own:
                found = await store.sent_before(conn, now - self.receipt_timeouts[name], limit, on=name)
                full = full or len(found) == limit
                rows += found
            found = await store.sent_before(conn, now - self.receipt_timeout, limit, not_on=own)
            full = full or len(found) == limit
            rows += found
            transitions = [
                Transition(r.id, r.workspace_id, Status.EXPIRED, "no_delivery_receipt", now) for r in rows
            ]
            await lifecycle.record(conn, transitions, {r.id: r for r in rows}, now)
        self._next_sweep = None if full else now + SWEEP_EVERY
        return len(rows)


async def _fire(conn: AsyncConnection, due: list[timers.Timer], now: datetime) -> int:
    by_message = [t for t in due if t.kind in _MESSAGE_TIMERS]
    rows = {r.id: r for r in await store.read(conn, {t.ref for t in by_message})}
    transitions = []
    for timer in by_message:
        row = rows.get(timer.ref)
        if row is None:
            continue
        transition = _MESSAGE_TIMERS[timer.kind](row, now)
        if transition is not None:
            transitions.append(transition)
            rows[row.id] = msgspec.structs.replace(row, status=transition.status.value)
    await lifecycle.record(conn, transitions, rows, now)
    retried: dict[int, list[Receipt]] = {}  # receipts applied again, together, by their try
    for timer in due:
        if timer.kind == receipts.RETRY:
            receipt, tries = receipts.decode(timer.payload)
            retried.setdefault(tries, []).append(receipt)
        elif timer.kind not in _MESSAGE_TIMERS and timer.kind not in (runs.TIMER, FALLBACK):
            log.error("unknown timer kind %s; dropped", timer.kind)
    for tries, batch in retried.items():
        await receipts.apply(conn, batch, now, tries)
    return sum(1 for t in transitions if t.status.value == "queued")
