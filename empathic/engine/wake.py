"""Waking worker processes when an API process queued something.

In one process a commit wakes the loops directly. Across processes:

- PostgreSQL: `NOTIFY empathic_wake_<schema>` after the commit; every worker LISTENs on its
  own connection and wakes its loops when told.
- SQLite (one machine): each worker binds a Unix datagram socket in `<data dir>/wake/`;
  an API process sends a byte to each socket there (a dead worker's socket is removed).

A lost wake costs at most the loops' idle poll (1 s): correctness never depends on it.
Notifications are coalesced: while one is being sent, more commits ask for just one more.
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

        if self._notifier is None or self._notifier.is_closed():
            self._notifier = await asyncpg.connect(self.postgres_dsn)
        await self._notifier.execute("SELECT pg_notify($1, '')", self.channel)

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

    async def listen(self, wake: Callable[[], None]) -> None:
        if self.postgres_dsn:
            import asyncpg

            self._listener = await asyncpg.connect(self.postgres_dsn)
            await self._listener.add_listener(self.channel, lambda *_: wake())
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

    async def close(self) -> None:
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
