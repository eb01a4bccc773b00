"""The running Empathic: storage, project, channel and the engine's loops, wired together.

`Runtime` is what `empathic serve` starts and the API talks to. It is also the channels'
sink: receipts and replies from the network come in through `on_receipts`/`on_inbound`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field, replace
from functools import partial
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empathic.channels.base import Channel, Inbound, Receipt, ReceiptQueries
from empathic.channels.simulator import Simulator
from empathic.engine.channels import Channels
from empathic.engine.channels import build as build_channel
from empathic.core.clock import Clock, SystemClock
from empathic.engine import inbound, outbox, receipts
from empathic.engine.calls import FlowCalls
from empathic.engine.catalog import Catalog
from empathic.engine.dispatcher import Dispatcher, DispatchSettings
from empathic.engine.duties import Duties, Duty, new_owner
from empathic.engine.fallback import EmailFallback
from empathic.engine.overdue import OverdueReceipts
from empathic.engine.project import EXAMPLES, Project, load_project
from empathic.engine.retention import Retention
from empathic.engine.stats import Stats
from empathic.engine.runs import Flows
from empathic.engine.scheduler import Scheduler
from empathic.engine.simulator import StoredCarrierLog
from empathic.engine.gate import Gate
from empathic.engine.wake import Waker
from empathic.engine.webhooks import WebhookSender
from empathic.core import passwords
from empathic.store import keys, users
from empathic.store.db import Database, sqlite_url

if TYPE_CHECKING:
    from starlette.requests import Request

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE = "ws_default"
LOOPS = "loops"  # the lease of the single loops: scheduler, webhooks, flow calls, retention


@dataclass
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("EMPATHIC_DATA_DIR", "./empathic-data")))
    database_url: str | None = field(default_factory=lambda: os.environ.get("EMPATHIC_DATABASE_URL"))
    database_schema: str | None = field(default_factory=lambda: os.environ.get("EMPATHIC_DATABASE_SCHEMA"))
    project_dir: Path = EXAMPLES
    bootstrap_api_key: str | None = field(default_factory=lambda: os.environ.get("EMPATHIC_BOOTSTRAP_API_KEY"))
    # EMAIL:PASSWORD of an admin of the default workspace, made at start when that email has no account.
    bootstrap_admin: str | None = field(default_factory=lambda: os.environ.get("EMPATHIC_BOOTSTRAP_ADMIN"))
    default_region: str | None = field(default_factory=lambda: os.environ.get("EMPATHIC_DEFAULT_REGION", "US"))
    max_segments: int = 10
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    simulator: dict[str, Any] = field(default_factory=dict)  # overrides of the project's [simulator]
    run_workers: bool = True
    # What this process does: `api` (HTTP: accepts and stores), `worker` (channels,
    # dispatchers, timers, webhooks), or `all`. Workers share duties by lease (engine.duties).
    role: str = field(default_factory=lambda: os.environ.get("EMPATHIC_ROLE", "all"))
    lease_ttl: float = field(default_factory=lambda: float(os.environ.get("EMPATHIC_LEASE_TTL", "10")))
    # Where people reach this server (links in texts); else the address a request came to.
    public_url: str | None = field(default_factory=lambda: os.environ.get("EMPATHIC_PUBLIC_URL"))
    # Message bodies older than this are redacted; 0 keeps them.
    retention_days: int = field(default_factory=lambda: int(os.environ.get("EMPATHIC_RETENTION_DAYS", "365")))

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return sqlite_url(self.data_dir.resolve() / "empathic.sqlite3")


ROLES = ("all", "api", "worker")


def duty_name(channel: str, shard: int) -> str:
    """The lease of one shard of a channel: `channel:<name>`, then `channel:<name>/1` …"""
    return "channel:" + dispatcher_key(channel, shard)


def dispatcher_key(channel: str, shard: int) -> str:
    """`Runtime.dispatchers` key of one shard: the channel's name, then `<name>/1` …"""
    return channel + (f"/{shard}" if shard else "")


class Runtime:
    def __init__(self, settings: Settings, clock: Clock | None = None, project: Project | None = None) -> None:
        """`project`: the project folder already loaded (it is immutable), else read from
        `settings.project_dir`."""
        if settings.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {settings.role!r}")
        self.settings = settings
        self.role = settings.role
        self.bootstrap_admin = bootstrap_admin(settings.bootstrap_admin)
        self.clock = clock or SystemClock()
        self.project: Project = project or load_project(settings.project_dir)
        self.catalog = Catalog(self.project)
        self.db = Database(settings.resolved_database_url(), schema=settings.database_schema)
        self.workspace_id = DEFAULT_WORKSPACE
        built: dict[str, Channel] = {}
        # A channel of several shards: one channel object (its own binds) and one dispatcher
        # per shard, each a duty of its own, so the workers share its sending.
        self.shards: dict[str, list[Channel]] = {}
        for entry in self.project.channels:
            if entry.type == "simulator" and settings.simulator:
                entry = replace(entry, settings=replace(entry.settings, **settings.simulator))
            self.shards[entry.name] = [build_channel(entry, db=self.db, clock=self.clock, project=self.project)
                                       for _ in range(entry.shards)]
            built[entry.name] = self.shards[entry.name][0]
        self.channels = Channels(self.project, self.project.topics, built, self.shards)
        # The built-in carrier, if the project uses it (its phones are the API's /v1/simulator).
        self.simulator: Simulator | None = next((c for c in built.values() if isinstance(c, Simulator)), None)
        self.acceptance = outbox.Acceptance(
            topics=self.project.topics,
            sender=self.project.sender.number,
            default_region=settings.default_region,
            max_segments=settings.max_segments,
            router=self.channels,
        )
        self.outbox = outbox.Outbox(self.db, self.clock, self.acceptance, on_commit=self.committed)
        self.webhooks = WebhookSender(self.db, self.clock)
        gate = Gate(self.project.topics, self.project.regulations)
        self.early = receipts.Early()  # receipts this process got before their text was recorded sent
        self.owner = new_owner()
        duties = [Duty(duty_name(name, k), partial(self._start_channel, name, k), partial(self._stop_channel, name, k),
                       group=f"channel:{name}")
                  for name, shards in self.shards.items() for k in range(len(shards))]
        duties.append(Duty(LOOPS, self._start_loops, self._stop_loops))
        self.duties = Duties(self.db, self.clock, self.owner, duties, ttl=settings.lease_ttl)
        # Claims are fenced on the shard's lease where duties run by lease; without workers
        # (transcripts, tests) the caller drives dispatch_once itself and holds no lease.
        self.dispatchers = {
            dispatcher_key(name, k): Dispatcher(
                self.db, self.clock, channel, self.project.topics, settings.dispatch, on_commit=self.webhooks.wake,
                gate=gate, failover=self.channels, shard=k, early=self.early,
                lease=self.duties.lease(duty_name(name, k)) if settings.run_workers else None,
            )
            for name, shards in self.shards.items() for k, channel in enumerate(shards)
        }
        if settings.run_workers:  # the built-in carrier's hand-offs are fenced on their shard's lease
            for name, shards in self.shards.items():
                for k, channel in enumerate(shards):
                    if isinstance(channel, Simulator) and isinstance(channel.carrier_log, StoredCarrierLog):
                        channel.carrier_log.lease = self.duties.lease(duty_name(name, k))
        postgres = settings.database_url if not self.db.is_sqlite else None
        self.waker = Waker(
            postgres_dsn=postgres.replace("+asyncpg", "") if postgres else None,
            schema=settings.database_schema, data_dir=settings.data_dir,
        )
        self.flows = Flows(self.project, self.catalog, self.acceptance)
        self.scheduler = Scheduler(
            self.db, self.clock, on_released=self.flows_moved, flows=self.flows,
            receipt_timeout=self.settings.dispatch.receipt_timeout,
            fallback=EmailFallback(self.project.fallback, self.acceptance),
            receipt_timeouts={e.name: e.receipt_timeout for e in self.project.channels if e.receipt_timeout},
        )
        # Channels that ask their carrier about overdue receipts (SMPP `query_after`): a loop
        # each, run with the channel's first shard.
        self.overdue = {
            name: OverdueReceipts(self.db, self.clock, name, first, self)
            for name, shards in self.shards.items()
            if isinstance(first := shards[0], ReceiptQueries) and first.query_after
        }
        self.calls = FlowCalls(self.db, self.clock, self.flows, on_commit=self.committed)
        self.retention = Retention(self.db, self.clock, self.project.topics, settings.retention_days)
        self.stats = Stats(self.db, self.clock)  # the dashboard's counts and queue samples

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
        admin_hash = None  # hashed (tens of ms) only when that admin is missing, and outside the transaction
        if self.bootstrap_admin:
            async with self.db.transaction() as conn:
                missing = await users.by_email(conn, self.bootstrap_admin[0]) is None
            admin_hash = await asyncio.to_thread(passwords.hash_password, self.bootstrap_admin[1]) if missing else None
        async with self.db.transaction() as conn:
            if not self.db.is_sqlite:  # processes starting at once take turns (else two insert the workspace)
                await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(current_schema()))")
            await keys.ensure_workspace(conn, self.workspace_id, "Default workspace", self.now())
            if self.settings.bootstrap_api_key:
                await keys.add_key(conn, self.workspace_id, self.settings.bootstrap_api_key, "bootstrap", self.now())
            if self.bootstrap_admin and admin_hash and await users.by_email(conn, self.bootstrap_admin[0]) is None:
                await users.create(conn, self.workspace_id, self.bootstrap_admin[0], "admin", admin_hash, self.now())
            await self.flows.sync_project(conn, self.now())
            if self.role != "api":
                await self.channels.rehome(conn)
        if self.role == "api":
            # Channels are started by workers; this process only reads their webhooks. The
            # simulator's phones (/v1/simulator) text in through it, as a carrier's webhook would.
            if self.simulator is not None:
                self.simulator.attach(self)
        elif not self.settings.run_workers:  # tests and transcripts drive the loops themselves
            for name, shards in self.shards.items():
                for k in range(len(shards)):
                    await self._start_channel(name, k, dispatch=False)
        else:
            await self.waker.listen(self.woken)  # an API process queued something
            await self.duties.start()
        log.info("empathic started as %s (project %s)", self.role, self.project.root)

    async def stop(self) -> None:
        await self.outbox.drain()  # an accepted submission is written before the database closes
        if self.role != "api" and self.settings.run_workers:
            await self.duties.stop()
        else:
            for name, k in sorted(self.channels.started):
                await self._stop_channel(name, k, dispatch=False)
        await self.waker.close()
        await self.db.close()

    async def _start_channel(self, name: str, shard: int = 0, dispatch: bool = True) -> None:
        await self.shards[name][shard].start(self)
        self.channels.started_here(name, shard)
        if dispatch:
            await self.dispatchers[dispatcher_key(name, shard)].start()
            if shard == 0 and name in self.overdue:
                self.overdue[name].start()

    async def _stop_channel(self, name: str, shard: int = 0, dispatch: bool = True) -> None:
        if dispatch:
            await self.dispatchers[dispatcher_key(name, shard)].stop()
            if shard == 0 and name in self.overdue:
                await self.overdue[name].stop()
        self.channels.stopped_here(name, shard)
        await self.shards[name][shard].stop()

    async def _start_loops(self) -> None:
        await self.scheduler.start()
        await self.webhooks.start()
        await self.calls.start()
        await self.retention.start()
        self.stats.start()

    async def _stop_loops(self) -> None:
        await self.stats.stop()
        await self.retention.stop()
        await self.calls.stop()
        await self.webhooks.stop()
        await self.scheduler.stop()

    def committed(self) -> None:
        """Something new is queued or a webhook is due: wake the loops that act on it (in
        the worker processes, when this one only serves the API)."""
        for dispatcher in self.dispatchers.values():
            dispatcher.wake()
        self.webhooks.wake()
        if self.role == "api":
            self.waker.notify()

    def woken(self) -> None:
        """Another process committed work: every loop looks (its webhook deliveries too,
        which this process's count of its own cannot see)."""
        self.webhooks.wake(force=True)
        self.flows_moved()

    def flows_moved(self) -> None:
        """Flow runs may have queued texts, set timers or asked for calls: wake every loop."""
        self.committed()
        self.scheduler.wake()
        self.calls.wake()

    # -- the channels' sink ---------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        """Where this process keeps its files: the SQLite database, and a channel's own (the SMPP journal)."""
        return self.settings.data_dir

    async def on_receipts(self, batch: list[Receipt]) -> None:
        async with self.db.transaction() as conn:
            await receipts.apply(conn, batch, self.now(), early=self.early)
        self.webhooks.wake()

    async def on_inbound(self, message: Inbound) -> str:
        async with self.db.transaction() as conn:
            routed = await inbound.route(conn, self.workspace_id, message, self.project.sender, self.acceptance, self.flows)
        self.flows_moved()
        return routed.message_id


def bootstrap_admin(value: str | None) -> tuple[str, str] | None:
    """EMPATHIC_BOOTSTRAP_ADMIN's email (normalised) and password; ValueError saying what is wrong."""
    if not value:
        return None
    email, colon, password = value.partition(":")
    if not colon:
        raise ValueError("EMPATHIC_BOOTSTRAP_ADMIN must be EMAIL:PASSWORD, such as admin@example.com:a-long-password")
    try:
        address = users.normalize(email)
        passwords.check_new(password)
    except ValueError as exc:  # InputError: the email or the password refused
        raise ValueError(f"EMPATHIC_BOOTSTRAP_ADMIN: {exc}") from None
    return address, password


def runtime_of(request: Request) -> Runtime:
    """The runtime an app serves (`app.state.runtime`, set by `api.app.create_app`): for the
    API's routers and the web pages alike."""
    runtime: Runtime = request.app.state.runtime
    return runtime
