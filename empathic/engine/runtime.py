"""The running Empathic: storage, project, channel and the engine's loops, wired together.

`Runtime` is what `empathic serve` starts and the API talks to. It is also the channels'
sink: receipts and replies from the network come in through `on_receipts`/`on_inbound`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from empathic.channels.base import Channel, Inbound, Receipt
from empathic.channels.simulator import Simulator
from empathic.engine.channels import Channels
from empathic.engine.channels import build as build_channel
from empathic.core.clock import Clock, SystemClock
from empathic.engine import inbound, outbox, receipts
from empathic.engine.calls import FlowCalls
from empathic.engine.catalog import Catalog
from empathic.engine.dispatcher import Dispatcher, DispatchSettings
from empathic.engine.fallback import EmailFallback
from empathic.engine.project import EXAMPLES, Project, load_project
from empathic.engine.retention import Retention
from empathic.engine.runs import Flows
from empathic.engine.scheduler import Scheduler
from empathic.engine.gate import Gate
from empathic.engine.webhooks import WebhookSender
from empathic.store import keys
from empathic.store.db import Database, sqlite_url

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE = "ws_default"


@dataclass
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("EMPATHIC_DATA_DIR", "./empathic-data")))
    database_url: str | None = field(default_factory=lambda: os.environ.get("EMPATHIC_DATABASE_URL"))
    database_schema: str | None = field(default_factory=lambda: os.environ.get("EMPATHIC_DATABASE_SCHEMA"))
    project_dir: Path = EXAMPLES
    bootstrap_api_key: str | None = field(default_factory=lambda: os.environ.get("EMPATHIC_BOOTSTRAP_API_KEY"))
    default_region: str | None = field(default_factory=lambda: os.environ.get("EMPATHIC_DEFAULT_REGION", "US"))
    max_segments: int = 10
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    simulator: dict[str, Any] = field(default_factory=dict)  # overrides of the project's [simulator]
    run_workers: bool = True
    # Where people reach this server (links in texts); else the address a request came to.
    public_url: str | None = field(default_factory=lambda: os.environ.get("EMPATHIC_PUBLIC_URL"))
    # Message bodies older than this are redacted; 0 keeps them.
    retention_days: int = field(default_factory=lambda: int(os.environ.get("EMPATHIC_RETENTION_DAYS", "365")))

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return sqlite_url(self.data_dir.resolve() / "empathic.sqlite3")


class Runtime:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.project: Project = load_project(settings.project_dir)
        self.catalog = Catalog(self.project)
        self.db = Database(settings.resolved_database_url(), schema=settings.database_schema)
        self.workspace_id = DEFAULT_WORKSPACE
        built: dict[str, Channel] = {}
        for entry in self.project.channels:
            if entry.type == "simulator" and settings.simulator:
                entry = replace(entry, settings=replace(entry.settings, **settings.simulator))
            built[entry.name] = build_channel(entry, db=self.db, clock=self.clock, project=self.project)
        self.channels = Channels(self.project, self.project.topics, built)
        # The built-in carrier, if the project uses it (its phones are the API's /v1/simulator).
        self.simulator: Simulator | None = next((c for c in built.values() if isinstance(c, Simulator)), None)
        self.rules = outbox.OutboxRules(
            topics=self.project.topics,
            sender=self.project.sender.number,
            default_region=settings.default_region,
            max_segments=settings.max_segments,
            router=self.channels,
        )
        self.outbox = outbox.Outbox(self.db, self.clock, self.rules, on_commit=self.committed)
        self.webhooks = WebhookSender(self.db, self.clock)
        gate = Gate(self.project.topics, self.project.regulations)
        self.dispatchers = {
            name: Dispatcher(
                self.db, self.clock, channel, self.project.topics, settings.dispatch, on_commit=self.webhooks.wake,
                gate=gate, channels=self.channels,
            )
            for name, channel in built.items()
        }
        self.flows = Flows(self.project, self.catalog, self.rules)
        self.scheduler = Scheduler(
            self.db, self.clock, on_released=self.flows_moved, flows=self.flows,
            receipt_timeout=self.settings.dispatch.receipt_timeout,
            fallback=EmailFallback(self.project.fallback, self.rules),
        )
        self.calls = FlowCalls(self.db, self.clock, self.flows, on_commit=self.committed)
        self.retention = Retention(self.db, self.clock, self.project.topics, settings.retention_days)

    def now(self) -> datetime:
        return self.clock.now()

    @property
    def channel(self) -> Channel:
        """The first declared channel."""
        return next(iter(self.channels.by_name.values()))

    @property
    def dispatcher(self) -> Dispatcher:
        """The first declared channel's dispatcher."""
        return next(iter(self.dispatchers.values()))

    async def dispatch_once(self) -> int:
        """One full pass of every channel's dispatcher (tests and transcripts)."""
        return sum([await d.dispatch_once() for d in self.dispatchers.values()])

    async def start(self) -> None:
        await self.db.migrate()
        async with self.db.transaction() as conn:
            await keys.ensure_workspace(conn, self.workspace_id, "Default workspace", self.now())
            if self.settings.bootstrap_api_key:
                await keys.add_key(conn, self.workspace_id, self.settings.bootstrap_api_key, "bootstrap", self.now())
            await self.flows.sync_project(conn, self.now())
            await self.channels.rehome(conn)
        for channel in self.channels.by_name.values():
            await channel.start(self)
        if self.settings.run_workers:
            for dispatcher in self.dispatchers.values():
                await dispatcher.start()
            await self.scheduler.start()
            await self.webhooks.start()
            await self.calls.start()
            await self.retention.start()
        log.info("empathic started (project %s)", self.project.root)

    async def stop(self) -> None:
        await self.outbox.drain()  # an accepted submission is written before the database closes
        if self.settings.run_workers:
            await self.retention.stop()
            await self.calls.stop()
            await self.webhooks.stop()
            await self.scheduler.stop()
            for dispatcher in self.dispatchers.values():
                await dispatcher.stop()
        for channel in self.channels.by_name.values():
            await channel.stop()
        await self.db.close()

    def committed(self) -> None:
        """Something new is queued or a webhook is due: wake the loops that act on it."""
        for dispatcher in self.dispatchers.values():
            dispatcher.wake()
        self.webhooks.wake()

    def flows_moved(self) -> None:
        """Flow runs may have queued texts, set timers or asked for calls: wake every loop."""
        self.committed()
        self.scheduler.wake()
        self.calls.wake()

    # -- the channels' sink ---------------------------------------------------------------

    async def on_receipts(self, batch: list[Receipt]) -> None:
        async with self.db.transaction() as conn:
            await receipts.apply(conn, batch, self.now())
        self.webhooks.wake()

    async def on_inbound(self, message: Inbound) -> str:
        async with self.db.transaction() as conn:
            routed = await inbound.route(conn, self.workspace_id, message, self.project.sender, self.rules, self.flows)
        self.flows_moved()
        return routed.message_id
