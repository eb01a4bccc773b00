"""Asking a carrier about texts whose receipts are overdue.

A carrier may take a text and never send its receipt (an SMSC that died before sending
it). A channel that can ask (`channels.base.ReceiptQueries`: SMPP's query_sm) is asked about
its texts `sent` for `query_after` seconds without news, `query_batch` at a time, oldest
first; what it tells comes back as receipts and is applied as every receipt is
(`Runtime.on_receipts` → engine.receipts → engine.lifecycle, the one status path). Each
round walks the overdue texts once, a cursor on (updated_at, id) moving past the texts
still on their way, so they do not hold up those behind them; the next round starts
`query_after` after the last ended. The channel keeps to its carrier's rate itself. A text
nobody can tell about stays `sent` until its channel's receipt time-out expires it
(engine.scheduler).

One loop per channel, run where the channel's first shard runs (it asks on that shard's
binds; message ids are the SMSC account's, whichever bind took the text).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from empathic.channels.base import ChannelSink, Overdue, Receipt, ReceiptQueries
from empathic.core.clock import Clock
from empathic.loop import Loop
from empathic.store import messages as store
from empathic.store.db import Database

log = logging.getLogger(__name__)

IDLE = 5.0  # seconds between looks while the channel is down or nothing is overdue yet


class OverdueReceipts:
    def __init__(self, db: Database, clock: Clock, name: str, channel: ReceiptQueries, sink: ChannelSink) -> None:
        self.db = db
        self.clock = clock
        self.name = name
        self.channel = channel
        self.sink = sink
        self.after = timedelta(seconds=channel.query_after)
        self._cursor: tuple[datetime, str] | None = None  # (updated_at, id) of the last text asked about
        self._next_round: datetime | None = None
        self._asking: asyncio.Future[list[Receipt]] | None = None
        self._stopping = False
        self._loop = Loop(f"overdue-{name}", self.pass_once)

    def start(self) -> None:
        self._stopping = False
        self._loop.start()

    async def stop(self) -> None:
        """Stop at once: questions still waiting for their turn (`query_tps`) are dropped,
        which loses nothing (asking only reads; the next round asks again)."""
        self._stopping = True
        if self._asking is not None:
            self._asking.cancel()
        await self._loop.stop()

    async def pass_once(self) -> float:
        """Ask about the next batch of overdue texts; seconds until the next pass is due."""
        now = self.clock.now()
        if self._next_round is not None and now < self._next_round:
            return min(IDLE, (self._next_round - now).total_seconds())
        if not getattr(self.channel, "up", True):
            return IDLE
        async with self.db.transaction() as conn:
            rows = await store.overdue(conn, self.name, now - self.after, self._cursor, self.channel.query_batch)
        if not rows:  # the round is over (or nothing is overdue): the next in `query_after`
            self._cursor = None
            self._next_round = now + self.after
            return min(IDLE, self.after.total_seconds())
        self._next_round = None
        self._asking = asyncio.ensure_future(
            self.channel.query([Overdue(r.carrier_id, r.from_addr or "", r.raw_carrier_id) for r in rows])
        )
        try:
            answers = await self._asking
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            return IDLE
        finally:
            self._asking = None
        if answers:
            await self.sink.on_receipts(answers)
            log.info("%s: %d of %d texts with overdue receipts settled by asking the carrier",
                     self.name, len(answers), len(rows))
        self._cursor = (rows[-1].updated_at, rows[-1].id)
        return 0.0
