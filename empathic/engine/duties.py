"""A worker process's duties, each held under a lease so that exactly one live worker does it.

Duties are a channel's sending (its binds and its dispatcher: `channel:<name>`) and the
single loops (scheduler, webhooks, flow calls, retention: `loops`). Every `ttl / 3` a
worker renews the leases it holds and tries to take those nobody holds; a duty starts when
its lease is taken and stops when a renewal fails or cannot be made before the lease runs
out (another worker may hold it by then). A worker killed with -9 renews nothing: `ttl`
later another one takes its duties over. A channel taken over begins with the dispatcher's
`reconcile`, which settles what the dead worker left `sending` (`unknown` where the carrier
cannot be asked), so nothing is sent twice.

Each run of a duty is fenced on the lease's token it started under (store.leases), not on
the owner's name: a worker paused past its lease may take the lease back once the standby
that reconciled its batches lets it lapse in turn, and then holds a new token. Its batches
claimed before the pause fail the fence (and `fresh`), though the lease is "its" again;
the duty stops and starts afresh under the new token, reconciling first.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.clock import Clock
from empathic.loop import Loop
from empathic.store import leases
from empathic.store.db import Database

log = logging.getLogger(__name__)

# Renewals come every ttl/3; a lease last renewed longer ago than this share of its ttl is
# not trusted any more for acts the database cannot fence (writing to a carrier).
FRESH = 0.6


def new_owner() -> str:
    """This process's name in the leases table: host, pid and a nonce (pids are reused)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Duty:
    name: str
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]
    # Duties of one group (a channel's shards) are shared out: a worker holds at most its
    # fair share of them, ceil(group size / live workers), and hands the rest over.
    group: str | None = None


PRESENCE = "worker:"  # each live worker holds `worker:<owner>`, so the others can count it


def fair_share(size: int, workers: int) -> int:
    return -(-size // max(1, workers))


class Duties:
    def __init__(self, db: Database, clock: Clock, owner: str, duties: list[Duty], ttl: float = 10.0) -> None:
        if ttl <= 0:
            raise ValueError("a lease lasts longer than 0 seconds")
        self.db = db
        self.clock = clock
        self.owner = owner
        self.duties = {d.name: d for d in duties}
        self.groups: dict[str, list[str]] = {}
        for d in duties:
            if d.group is not None:
                self.groups.setdefault(d.group, []).append(d.name)
        self.presence = PRESENCE + owner
        self.ttl = ttl
        self.held: set[str] = set()
        self.tokens: dict[str, str] = {}  # duty -> the token its current run started under
        self._granted: dict[str, str | None] = {}  # duty -> the token of our latest renewal
        self._renewed_at = 0.0  # monotonic time of the last renewal that reached the database
        self._loop = Loop("duties", self._pass)

    async def start(self) -> None:
        """Take every free duty now (a lone worker starts at once), then keep at it."""
        await self._pass()
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        for name in sorted(self.held):
            await self._drop(name)
        try:
            async with self.db.transaction() as conn:
                for name in [*self.duties, self.presence]:  # a clean exit hands its duties over at once
                    await leases.release(conn, name, self.owner)
        except Exception:  # noqa: BLE001 - they expire by themselves
            log.warning("could not release leases at stop; they expire in %.0fs", self.ttl)

    async def still_mine(self, conn: AsyncConnection, name: str) -> bool:
        """In the caller's transaction: is `name` still this worker's, under the token its
        current run started with? (a claim's fence). On PostgreSQL the lease row stays
        share-locked until that transaction ends, so no other worker can take the lease
        over while a fenced transaction is still open (a worker frozen inside one holds its
        duties until it wakes)."""
        token = self.tokens.get(name)
        return token is not None and await leases.holds(
            conn, name, self.owner, self.clock.now(), token=token, lock=True
        )

    def fresh(self, name: str) -> bool:
        """Without asking the database: held, under the token this run started with, and
        renewed recently enough that no other worker can have it yet (a paused worker must
        not act on a lease that ran out, nor on one it took back since)."""
        return (
            name in self.held
            and self.tokens.get(name) is not None
            and self._granted.get(name) == self.tokens[name]
            and self._recently_renewed()
        )

    def lease(self, name: str) -> DutyLease:
        """The lease of duty `name`, for the code its run fences (a channel's dispatcher)."""
        return DutyLease(self, name)

    def _recently_renewed(self) -> bool:
        return time.monotonic() - self._renewed_at < self.ttl * FRESH

    async def _pass(self) -> float:
        asked = time.monotonic()
        try:
            async with self.db.transaction() as conn:
                granted, surplus = await self._take(conn)
        except Exception:  # noqa: BLE001 - the database is away: keep duties while the leases last
            log.exception("renewing leases failed")
            if self.held and time.monotonic() - self._renewed_at > self.ttl * 0.8:
                log.error("leases about to run out unrenewed; stopping %s", ", ".join(sorted(self.held)))
                for name in sorted(self.held):
                    await self._drop(name)
            return min(1.0, self.ttl / 3)
        # Taken back under a new token (the lease ran out, and may have been another's
        # meanwhile), or renewed after our own clock says it ran out (the database was away
        # longer than ttl): our fences refused work, leaving it to "the new holder". We are
        # that holder now, so the duty starts afresh (a channel reconciles). The new token is
        # known before the old run stops, so its last batches fail `fresh` and the fences.
        lapsed = asked - self._renewed_at >= self.ttl
        self._renewed_at = asked
        self._granted.update(granted)
        for name, token in granted.items():
            if token and name in self.held and (lapsed or token != self.tokens.get(name)):
                log.warning("%s lapsed unrenewed or changed hands; starting it again", name)
                await self._drop(name)
            if token and name not in self.held:
                if not self._recently_renewed():  # _renewed_at is this pass's `asked`
                    # This pass took that long (paused inside the take, or stopping an old
                    # run): the grant may have run out already and be another's. Started at
                    # the next renewal, if it is still ours then.
                    log.warning("grant of %s came too late; not starting it on that", name)
                    continue
                log.info("took %s", name)
                self.held.add(name)
                self.tokens[name] = token
                await self.duties[name].start()
            elif not token and name in self.held:
                log.warning("lost %s to another worker", name)
                await self._drop(name)
        if surplus:  # stopped first (its batches recorded), then its lease is free for another
            for name in surplus:
                log.info("handing %s over (more workers share its channel now)", name)
                await self._drop(name)
            async with self.db.transaction() as conn:
                for name in surplus:
                    await leases.release(conn, name, self.owner)
        return self.ttl / 3

    async def _take(self, conn: AsyncConnection) -> tuple[dict[str, str | None], list[str]]:
        """Renew what we hold and take what is free, each group up to our fair share; the
        duties we hold beyond it (more workers came) are `surplus`, to hand over."""
        now = self.clock.now()
        ttl = timedelta(seconds=self.ttl)
        await leases.take(conn, self.presence, self.owner, now, ttl)
        in_force = await leases.held(conn, now)
        workers = sum(1 for name in in_force if name.startswith(PRESENCE))
        granted: dict[str, str | None] = {}
        surplus: list[str] = []
        for names in self.groups.values():
            share = fair_share(len(names), workers)
            ours = [n for n in names if in_force.get(n) == self.owner or (n in self.held and n not in in_force)]
            surplus += [n for n in ours[share:] if n in self.held]
            taken = 0
            for name in ours[:share] + [n for n in names if n not in in_force and n not in ours]:
                if taken >= share:
                    break
                granted[name] = await leases.take(conn, name, self.owner, now, ttl)
                taken += granted[name] is not None
        for name, duty in self.duties.items():
            if duty.group is None:
                granted[name] = await leases.take(conn, name, self.owner, now, ttl)
        for name in surplus:  # renewed until handed over, so nobody takes it while it stops
            granted[name] = await leases.take(conn, name, self.owner, now, ttl)
        for name in self.held:  # held here, but another's in the database: lost
            granted.setdefault(name, None)
        # Presence rows of workers long gone (killed) are cleared, so the table stays small.
        await leases.clear_expired(conn, PRESENCE, now - ttl)
        return granted, surplus

    async def _drop(self, name: str) -> None:
        self.held.discard(name)
        try:  # the run's token stays while it stops: a duty handed over records its last batches
            await self.duties[name].stop()
        except Exception:  # noqa: BLE001 - stopping the rest matters more
            log.exception("stopping %s failed", name)
        finally:
            self.tokens.pop(name, None)


@dataclass(frozen=True, slots=True)
class DutyLease:
    """One duty's lease as its run sees it (engine.dispatcher.Lease): still ours, and fresh."""

    duties: Duties
    name: str

    async def still_mine(self, conn: AsyncConnection) -> bool:
        return await self.duties.still_mine(conn, self.name)

    def fresh(self) -> bool:
        return self.duties.fresh(self.name)
