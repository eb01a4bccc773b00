"""The scheduler: fires durable timers when due (retries, receipt time-outs, late receipts).

Timers are claimed and handled in one transaction, so a crash fires a timer again rather
than never; every handler is written to be harmless when repeated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.clock import Clock
from empathic.engine import dispatcher, lifecycle, receipts, runs
from empathic.loop import Loop
from empathic.store import messages as store
from empathic.store import timers
from empathic.store.db import Database

log = logging.getLogger(__name__)

_MESSAGE_TIMERS = {
    dispatcher.RELEASE: dispatcher.release_due,
    dispatcher.RECEIPT_TIMEOUT: dispatcher.receipt_overdue,
}


class Scheduler:
    def __init__(
        self, db: Database, clock: Clock, on_released: Callable[[], None], flows: runs.Flows | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self.on_released = on_released
        self.flows = flows
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
        async with self.db.transaction() as conn:
            due = await timers.claim_due(conn, now, limit, skip=(runs.CALL,))
            if not due:
                return 0
            released = await _fire(conn, due, now)
            flow_timers = [t for t in due if t.kind == runs.TIMER]
            if flow_timers and self.flows is not None:
                released += await self.flows.fire(conn, flow_timers, now)
        if released:
            self.on_released()
        return len(due)


async def _fire(conn: AsyncConnection, due: list[timers.Timer], now: datetime) -> int:
    by_message = [t for t in due if t.kind in _MESSAGE_TIMERS]
    rows = {r["id"]: r for r in await store.by_ids(conn, {t.ref for t in by_message})}
    transitions = []
    for timer in by_message:
        row = rows.get(timer.ref)
        if row is None:
            continue
        transition = _MESSAGE_TIMERS[timer.kind](row, now)
        if transition is not None:
            transitions.append(transition)
            rows[row["id"]] = {**row, "status": transition.status.value}
    await lifecycle.record(conn, transitions, rows, now)
    for timer in due:
        if timer.kind == receipts.RETRY:
            receipt, tries = receipts.decode(timer.payload)
            await receipts.apply(conn, [receipt], now, tries)
        elif timer.kind not in _MESSAGE_TIMERS and timer.kind != runs.TIMER:
            log.error("unknown timer kind %s; dropped", timer.kind)
    return sum(1 for t in transitions if t.status.value == "queued")
