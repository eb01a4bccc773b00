"""Waking worker processes when an API process queued something.

In one process a commit wakes the loops directly. Across processes:

- PostgreSQL: `NOTIFY empathic_wake_<schema>` after the commit; every worker LISTENs on its
  own connection and wakes its loops when told.
- SQLite (one machine): each worker binds a Unix datagram socket in `<data dir>/wake/`;
  an API process sends a byte to each socket there (a dead worker's socket is removed).

A lost wake costs at most the loops' idle poll (1 s): correctness never depends on it.
Notifications are coalesced: while one is being sent, more commits ask for just one more.
A LISTEN connection that the server dropped (a restart) is made again with backoff, and
wakes the loops once it is back, for whatever was queued meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def channel_name(schema: str | None) -> str:
    return f"empathic_wake_{schema or 'public'}"[:63]


class Waker:
    """`notify()` from API processes; `listen(callback)` in workers."""

    def __init__(self, *, postgres_dsn: str | None, schema: str | None, data_dir: Path) -> None:
        self.postgres_dsn = postgres_dsn
        self.channel = channel_name(schema)
        self.folder = data_dir / "wake"
        self._pending = False
        self._sending: asyncio.Task[None] | None = None
        self._listener: Any = None  # asyncpg connection, or the datagram socket
        self._socket_path: Path | None = None
        self._notifier: Any = None  # asyncpg connection used to NOTIFY
        self._wake: Callable[[], None] | None = None
        self._relisten: asyncio.Task[None] | None = None
        self._closing = False

    # -- API side --------------------------------------------------------------------------

    def notify(self) -> None:
        self._pending = True
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send(), name="wake-notify")

    async def _send(self) -> None:
        while self._pending:
            self._pending = False
            try:
                if self.postgres_dsn:
                    await self._notify_postgres()
                else:
                    self._notify_sockets()
            except Exception as exc:  # noqa: BLE001 - workers poll anyway
                log.debug("wake notification failed: %s", exc)

    async def _notify_postgres(self) -> None:
        import asyncpg

        for attempt in (1, 2):  # a connection the server dropped is only found out by using it
            if self._notifier is None or self._notifier.is_closed():
                self._notifier = await asyncpg.connect(self.postgres_dsn)
            try:
                await self._notifier.execute("SELECT pg_notify($1, '')", self.channel)
                return
            except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
                self._notifier.terminate()
                self._notifier = None
                if attempt == 2:
                    raise

    def _notify_sockets(self) -> None:
        if not self.folder.is_dir():
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.setblocking(False)
            for path in self.folder.glob("*.sock"):
                try:
                    sender.sendto(b"!", str(path))
                except (ConnectionRefusedError, FileNotFoundError):  # its worker is gone
                    with contextlib.suppress(OSError):
                        path.unlink()
                except BlockingIOError:  # its queue is full: it has wakes enough
                    pass

    # -- worker side -----------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        if isinstance(self._listener, socket.socket):
            return True
        return self._listener is not None and not self._listener.is_closed()

    async def listen(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        if self.postgres_dsn:
            try:
                await self._listen_postgres()
            except Exception as exc:  # noqa: BLE001 - the loops poll until it is back
                log.warning("cannot LISTEN for wakes (%s); trying again", exc)
                self._lost()
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self._socket_path = self.folder / f"{os.getpid()}.sock"
        with contextlib.suppress(OSError):
            self._socket_path.unlink()  # left by a process with our pid, long dead
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            receiver.bind(str(self._socket_path))
        except OSError as exc:  # e.g. a path longer than a socket address may be
            receiver.close()
            self._socket_path = None
            log.warning("cannot listen for wakes at %s (%s); polling only", self.folder, exc)
            return
        receiver.setblocking(False)
        self._listener = receiver

        def readable() -> None:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                while receiver.recv(64):
                    pass
            wake()

        asyncio.get_running_loop().add_reader(receiver.fileno(), readable)

    async def _listen_postgres(self) -> None:
        import asyncpg

        assert self._wake is not None
        wake = self._wake
        connection = await asyncpg.connect(self.postgres_dsn)
        try:
            await connection.add_listener(self.channel, lambda *_: wake())
        except BaseException:
            await connection.close()
            raise
        connection.add_termination_listener(lambda _: self._lost())
        self._listener = connection

    def _lost(self) -> None:
        if self._closing or (self._relisten is not None and not self._relisten.done()):
            return
        self._relisten = asyncio.get_running_loop().create_task(self._listen_again(), name="wake-relisten")

    async def _listen_again(self) -> None:
        delay = 0.1
        while not self._closing:
            await asyncio.sleep(delay)
            try:
                await self._listen_postgres()
            except Exception as exc:  # noqa: BLE001 - still down
                log.debug("LISTEN again failed: %s", exc)
                delay = min(delay * 2, 2.0)
                continue
            log.info("listening for wakes again")
            assert self._wake is not None
            self._wake()  # what was queued while we could not hear it
            return

    async def close(self) -> None:
        self._closing = True
        if self._relisten is not None:
            self._relisten.cancel()
            await asyncio.gather(self._relisten, return_exceptions=True)
        if self._sending is not None:
            await asyncio.gather(self._sending, return_exceptions=True)
        for connection in (self._notifier, self._listener):
            if connection is None:
                continue
            if isinstance(connection, socket.socket):
                asyncio.get_running_loop().remove_reader(connection.fileno())
                connection.close()
            else:
                with contextlib.suppress(Exception):
                    await connection.close()
        self._notifier = self._listener = None
        if self._socket_path is not None:
            with contextlib.suppress(OSError):
                self._socket_path.unlink()
