"""The project's channels at run time: built from `[[channels]]`, routed, watched.

A message is routed when it is accepted (`route`): its channel and the number it goes out
from are written with it, and each channel's dispatcher claims only its own queue, so a
slow or throttled carrier holds up nobody else. The contact's sticky channel (the one
their last conversation used, or the one they last texted) keeps a conversation on one
number. A channel that has been down longer than `FAILOVER_AFTER` hands its queued
messages to the next channel serving them (`failover`); messages whose channel is no
longer declared are routed again at start (`rehome`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection

from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.channels import registry
from empathic.channels.base import Channel
from empathic.channels.simulator import Simulator, SimulatorSettings
from empathic.core import routing
from empathic.core.clock import Clock
from empathic.core.emails import is_email
from empathic.core.phones import number_type_of, region_of
from empathic.core.routing import Destination, Reach
from empathic.core.topics import Topics
from empathic.engine.project import ChannelEntry, Project
from empathic.engine.simulator import StoredCarrierLog
from empathic.store import contacts as contact_store
from empathic.store import messages as store
from empathic.store.db import Database

log = logging.getLogger(__name__)

FAILOVER_AFTER = 10.0  # seconds a channel may be down before its queue moves elsewhere


def build(entry: ChannelEntry, *, db: Database, clock: Clock, project: Project) -> Channel:
    """The channel object of one declared entry."""
    if entry.type == "simulator":  # it keeps its phones in our database
        settings: SimulatorSettings = entry.settings
        return Simulator(StoredCarrierLog(db), clock, project.sender.number, settings, name=entry.name)
    channel: Channel = registry.channel_class(entry.type)(entry.name, entry.settings, clock)
    return channel


def is_up(channel: Channel) -> bool:
    """Channels with a connection (SMPP) say whether it is up; the others always are."""
    return bool(getattr(channel, "up", True))



class Channels:
    def __init__(
        self, project: Project, topics: Topics, channels: dict[str, Channel],
        shards: dict[str, list[Channel]] | None = None,
    ) -> None:
        self.entries = {e.name: e for e in project.channels}
        self.routes = [e.route for e in project.channels]
        self.topics = topics
        self.by_name = channels
        self.default_sender = project.sender.number
        self.failover_after = FAILOVER_AFTER
        self._by_country = any(r.countries for r in self.routes)
        self._by_type = any(r.number_types for r in self.routes)
        self._down_since: dict[str, float] = {}
        # Channels started in this process: only their health is known here. Another
        # process's (a worker's, seen from an API process) are taken to be up.
        self.local: set[str] = set()
        self.shards = shards or {name: [channel] for name, channel in channels.items()}
        self.started: set[tuple[str, int]] = set()  # (channel, shard) running here
        self._here: dict[str, list[Channel]] = {}
        self._serving: dict[Destination, list[routing.Route]] = {}  # routing.candidates, per destination

    def started_here(self, name: str, shard: int) -> None:
        self.started.add((name, shard))
        self.local.add(name)
        self._here_changed()

    def stopped_here(self, name: str, shard: int) -> None:
        self.started.discard((name, shard))
        if not any(n == name for n, _ in self.started):
            self.local.discard(name)
        self._here_changed()

    def _here_changed(self) -> None:
        # The channel objects whose health speaks for each channel here (routing asks per message).
        self._here = {
            name: [self.shards[name][k] for n, k in sorted(self.started) if n == name] or self.shards[name][:1]
            for name in self.local if name in self.by_name
        }

    # -- health ----------------------------------------------------------------------------

    def down(self) -> set[str]:
        now = time.monotonic()
        result: set[str] = set()
        for name in self.by_name:
            here = self._here.get(name)
            if here is None or any(is_up(c) for c in here):
                self._down_since.pop(name, None)
            else:
                self._down_since.setdefault(name, now)
                result.add(name)
        return result

    def failed_over(self) -> set[str]:
        """Channels down for longer than `failover_after` seconds."""
        self.down()
        now = time.monotonic()
        return {name for name, since in self._down_since.items() if now - since >= self.failover_after}

    # -- choosing --------------------------------------------------------------------------

    def destination(self, to: str, topic: str) -> Destination:
        """What the routes look at; a number is parsed only if some route asks where it is."""
        kind = self.topics.kind(topic).value
        if is_email(to):
            return Destination(Reach.EMAIL, None, None, topic, kind)
        e164 = to.startswith("+")
        return Destination(
            Reach.SMS,
            region_of(to) if self._by_country and e164 else None,
            number_type_of(to) if self._by_type and e164 else None,
            topic,
            kind,
        )

    def route(self, dest: Destination, sticky: str | None, down: Collection[str] | None = None) -> tuple[str, str]:
        """(channel, the address it sends from) for one message; raises routing.NoRoute.
        `down`: what `down()` said, for a batch routed on one look at the channels' health."""
        found = self._serving.get(dest)
        if found is None:
            if len(self._serving) >= 10_000:  # destinations are few (country, number type, topic)
                self._serving.clear()
            found = self._serving[dest] = routing.candidates(self.routes, dest)
        name = routing.choose(self.routes, dest, sticky=sticky, down=self.down() if down is None else down, found=found)
        return name, self.sender_of(name)

    def sender_of(self, name: str) -> str:
        return getattr(self.by_name[name], "sender", None) or self.default_sender

    def reach_of(self, name: str) -> Reach | None:
        entry = self.entries.get(name)
        return entry.route.reach if entry else None

    # -- moving queues -----------------------------------------------------------------------

    async def failover(self, conn: AsyncConnection, channel: str) -> int:
        """Move `channel`'s waiting messages to the next serving channel that is up."""
        down = self.down()
        rows = await store.waiting(conn, on=[channel])
        return await self._move(conn, rows, lambda dest: routing.next_after(self.routes, dest, channel, down))

    async def rehome(self, conn: AsyncConnection) -> int:
        """Route again the waiting messages of channels no longer declared (or never routed)."""
        rows = await store.waiting(conn, not_on=list(self.by_name))
        down = self.down()

        def pick(dest: Destination) -> str | None:
            try:
                return routing.choose(self.routes, dest, down=down)
            except routing.NoRoute:
                return None

        moved = await self._move(conn, rows, pick)
        if len(rows) > moved:
            log.warning("%d waiting messages have no declared channel serving them; they stay queued", len(rows) - moved)
        return moved

    async def _move(
        self, conn: AsyncConnection, rows: list[store.WaitingText], pick: Callable[[Destination], str | None]
    ) -> int:
        groups: dict[str, list[str]] = {}
        for row in rows:
            target = pick(self.destination(row.to_addr, row.topic))
            if target is not None and target != row.channel:
                groups.setdefault(target, []).append(row.id)
        for target, ids in groups.items():
            await store.move_waiting(conn, ids, target, self.sender_of(target))
            log.info("moved %d waiting messages to channel %s", len(ids), target)
        return sum(len(ids) for ids in groups.values())

    async def stick(self, conn: AsyncConnection, workspace_id: str, contact_id: str, channel: str) -> None:
        """The person texted us on `channel`: our answers and their conversation stay on it."""
        if self.reach_of(channel) is Reach.SMS:
            await contact_store.set_channel(conn, workspace_id, [contact_id], channel, replace=True)
