"""Retention: message bodies older than the configured number of days are redacted (and
email fallbacks written as long ago that were never needed are deleted); on PostgreSQL, the
time partitions of the months ahead are made (store/partitions.py).

Runs in the background every hour (and at start), in small transactions so it never holds
the database for long. Only settled messages are touched; a redacted marketing body keeps
its content key so the same content still never goes twice (store.privacy).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from empathic.core.clock import Clock
from empathic.core.topics import TopicKind, Topics
from empathic.loop import Loop
from empathic.store import fallbacks, partitions, privacy
from empathic.store.db import Database

log = logging.getLogger(__name__)

EVERY = 3600.0
BATCH = 1000


class Retention:
    def __init__(self, db: Database, clock: Clock, topics: Topics, days: int) -> None:
        self.db = db
        self.clock = clock
        self.days = days
        self.marketing = frozenset(t for t, k in topics.kinds.items() if k is TopicKind.MARKETING)
        self._loop = Loop("retention", self._pass, error_delay=60.0)

    async def start(self) -> None:
        if self.days > 0 or not self.db.is_sqlite:
            self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _pass(self) -> float:
        await self.make_partitions()
        return 0.0 if await self.redact_due() == BATCH else EVERY

    async def make_partitions(self) -> list[str]:
        """Make the missing partitions of this month and the next (PostgreSQL)."""
        if self.db.is_sqlite:
            return []
        async with self.db.transaction() as conn:
            made = await partitions.ensure(conn, self.clock.now())
        if made:
            log.info("retention: made partitions %s", ", ".join(made))
        return made

    async def redact_due(self, limit: int = BATCH) -> int:
        """Redact one batch of bodies past retention; returns how many (``limit``: there may be more)."""
        if self.days <= 0:
            return 0
        now = self.clock.now()
        cutoff = now - timedelta(days=self.days)
        async with self.db.transaction() as conn:
            count = await privacy.redact_older_than(conn, cutoff, now, limit=limit, digest_topics=self.marketing)
            # Emails kept for texts that never needed them go too (a text fails within days).
            await fallbacks.forget_unused_older_than(conn, cutoff, limit=limit)
        if count:
            log.info("retention: redacted %d message bodies older than %d days", count, self.days)
        return count
