"""The database handle: engine creation, migrations and transactions, for SQLite and PostgreSQL.

SQLite (the embedded default) runs in WAL mode behind a single pooled connection: SQLite
has one writer at a time anyway, and one connection means the asyncio tasks of one process
queue for it instead of failing with "database is locked". Every SQLite transaction begins
IMMEDIATE so a read that later writes never deadlocks against another process (the CLI).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from empathic.store.turns import WriteTurn

MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_WAIT = 10.0  # seconds a SQLite transaction waits for another process's write lock
RETRY_AFTER = 2  # seconds a caller is told to wait when the database cannot be reached

# asyncpg's errors for a server that is gone, restarting or full (class 08, 53300, 57P).
_POSTGRES_DOWN = ("PostgresConnectionError", "OperatorInterventionError", "TooManyConnectionsError",
                  "ConnectionFailureError", "ClientCannotConnectError")


def unavailable(exc: BaseException) -> bool:
    """Is `exc` the database being out of reach (down, restarting, locked past BUSY_WAIT),
    rather than a fault in the statement? Such a failure is worth retrying later. A transaction
    cut off at COMMIT may have committed: callers retry under the same idempotency key."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        one = todo.pop()
        if one is None or id(one) in seen:
            continue
        seen.add(id(one))
        if isinstance(one, (OSError, TimeoutError, PoolTimeout)):  # refused, reset, pool exhausted
            return True
        if isinstance(one, DBAPIError) and one.connection_invalidated:
            return True
        names = {cls.__name__ for cls in type(one).__mro__}
        if type(one).__module__.startswith("asyncpg") and (
            names.intersection(_POSTGRES_DOWN) or ("InterfaceError" in names and "closed" in str(one))
        ):
            return True
        if type(one).__module__ == "sqlite3" and isinstance(one, Exception):
            if any(word in str(one) for word in ("locked", "busy", "unable to open", "disk I/O")):
                return True
        todo.extend([one.__cause__, one.__context__, getattr(one, "orig", None)])
    return False


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def async_url(url: str) -> str:
    """Accept the URLs people write (postgresql://, sqlite:///) and pick the asyncio driver."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.split(":///", 1)[1]
    return url


class Database:
    def __init__(self, url: str, *, schema: str | None = None) -> None:
        """`schema` (PostgreSQL only) puts every table in that schema, e.g. one per test."""
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        options: dict[str, Any] = {}
        if self.is_sqlite:
            options.update(pool_size=1, max_overflow=0, pool_timeout=60)
        else:
            options.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
            if schema:
                options["connect_args"] = {"server_settings": {"search_path": schema}}
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        self._turn: WriteTurn | None = None
        if self.is_sqlite:
            _tune_sqlite(self.engine)
            path = self.engine.url.database
            if path and path != ":memory:" and not path.startswith("file:") and WriteTurn.available():
                self._turn = WriteTurn(Path(path))

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent; processes starting at once
        take turns)."""
        async with self.transaction() as conn:
            if not self.is_sqlite:
                await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(current_schema()))"))
            await conn.run_sync(_upgrade)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One transaction, committed when the block ends (rolled back if it raises); then
        what `after_commit` was given in it runs."""
        hooks: list[Callable[[], None]] = []
        async with self._begun() as conn:
            _AFTER_COMMIT[id(conn)] = hooks  # not conn.info: that reconnects a connection cut off
            try:
                yield conn
            finally:
                _AFTER_COMMIT.pop(id(conn), None)
        for hook in hooks:
            hook()

    @asynccontextmanager
    async def _begun(self) -> AsyncIterator[AsyncConnection]:
        if not self.is_sqlite:
            async with self.engine.begin() as conn:
                yield conn
            return
        # Our turn at the write lock first (store.turns: the kernel wakes the next process
        # the moment it is free). A writer that takes no turns can still hold SQLite's lock:
        # its own busy handler sleeps 1, 2, 5, 10 … ms between tries, far longer than our
        # transactions hold it, so we try again sooner, with jitter, up to BUSY_WAIT.
        delay, deadline = 0.0005, None
        while True:
            held = AsyncExitStack()
            try:
                conn = await held.enter_async_context(self.engine.connect())  # this process's turn
                if deadline is None:  # the wait for other processes starts now
                    deadline = time.monotonic() + BUSY_WAIT
                if self._turn is not None and await self._turn.take(deadline - time.monotonic()):
                    held.callback(self._turn.give)  # after COMMIT or ROLLBACK, before the pool has it back
                await held.enter_async_context(conn.begin())
                break
            except OperationalError as exc:
                await held.aclose()
                if deadline is None:  # locked while connecting (the connection's PRAGMAs): the wait starts now
                    deadline = time.monotonic() + BUSY_WAIT
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 0.01)
            except BaseException:
                await held.aclose()
                raise
        async with held:
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()
        if self._turn is not None:
            self._turn.close()


_AFTER_COMMIT: dict[int, list[Callable[[], None]]] = {}  # id of an open transaction's connection -> hooks


def after_commit(conn: AsyncConnection, hook: Callable[[], None]) -> None:
    """Run `hook` once the transaction of `conn` (a `Database.transaction`) has committed;
    never if it rolls back. Outside one (a test's own connection) it runs at once."""
    hooks = _AFTER_COMMIT.get(id(conn))
    if hooks is None:
        hook()
    else:
        hooks.append(hook)


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=NORMAL",  # durable across process crashes in WAL
    "busy_timeout=0",  # a busy write lock is retried by Database.transaction
    "cache_size=-65536",  # 64 MiB of pages (default 2 MiB): the send path's indexes stay in memory
    "mmap_size=268435456",  # pages another process changed are re-read from the map, not by read()
    "foreign_keys=ON",
)


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
