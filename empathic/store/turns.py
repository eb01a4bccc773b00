"""Turns at SQLite's write lock for the processes sharing one database file.

SQLite has one writer at a time. A process that finds the write lock taken can only try
again: SQLite's own busy handler sleeps 1, 2, 5, 10 … ms between tries, and each retried
BEGIN costs a round trip to the driver and an exception. With an API process writing
beside a worker, 1,600 BEGINs of 30,000 texts failed that way, and the API process
accepted a third fewer texts per second than it could.

So every transaction first takes its turn: an exclusive `flock` on a file beside the
database (`<db>-turn`). A process waiting for it sleeps in the kernel, which wakes it the
moment the turn is given; BEGIN IMMEDIATE then finds the write lock free.

Waiting processes say so with a shared flock on `<db>-want`. A process that wants the
turn while another is waiting does not snatch it the instant it is free (it would, being
awake already: an API process accepting batches back to back took three turns in four
from the worker sending them); it waits in the kernel too, where the one woken first
takes it. Nothing ever blocks on `<db>-want`, so a waiter that is paused or dies there
holds nobody up, and a process that dies holding the turn loses it with its file
descriptors. Processes that do not take turns (another tool writing the file) still meet
SQLite's lock, which store.db retries as before.

One turn per `Database` (its own file descriptors): two of them in one process exclude
each other as two processes do. Within one `Database` the single pooled connection makes
tasks take turns already, so at most one task waits here at a time.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

from sqlalchemy.exc import OperationalError

try:
    import fcntl
except ImportError:  # not on this platform: SQLite's own lock, retried, is all there is
    fcntl = None  # type: ignore[assignment]


class WriteTurn:
    def __init__(self, database: Path) -> None:
        self.paths = (database.with_name(database.name + "-turn"), database.with_name(database.name + "-want"))
        self._fds: tuple[int, int] | None = None
        self._pid = 0
        self._pending: asyncio.Future[None] | None = None  # a blocking wait running in a thread
        self._waiting = 0  # tasks awaiting `_pending` (0 or 1)

    @staticmethod
    def available() -> bool:
        return fcntl is not None

    def _files(self) -> tuple[int, int]:
        if self._fds is None or self._pid != os.getpid():  # a forked child opens its own
            turn, want = (os.open(p, os.O_RDWR | os.O_CREAT, 0o600) for p in self.paths)
            self._fds, self._pid = (turn, want), os.getpid()
        return self._fds

    async def take(self, timeout: float) -> None:
        """Wait for the turn, at most `timeout` seconds; then raise OperationalError
        ("database is locked", as SQLite's own would be: store.db.unavailable knows it)."""
        turn, want = self._files()
        if self._pending is None:
            if not _others_waiting(want):
                try:
                    fcntl.flock(turn, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    pass
            self._pending = asyncio.get_running_loop().run_in_executor(None, _wait, turn, want)
            self._pending.add_done_callback(self._came)
        pending = self._pending  # a wait given up earlier is still queued: join it
        self._waiting += 1
        try:
            await asyncio.wait_for(asyncio.shield(pending), max(0.0, timeout))
        except TimeoutError:
            if _came_in(pending):  # it came just as the wait ran out: ours
                return
            raise OperationalError(
                "BEGIN IMMEDIATE", None,
                sqlite3.OperationalError(f"database is locked: no write turn in {timeout:.1f}s ({self.paths[0]})"),
            ) from None
        except BaseException:
            if _came_in(pending):  # cancelled after it came: pass it on
                self.give()
            raise
        finally:
            self._waiting -= 1

    def _came(self, done: asyncio.Future[None]) -> None:
        # Runs before the waiter wakes. Nobody waits any more (it timed out, or was
        # cancelled): the turn is passed on at once, or it would block every other process.
        self._pending = None
        if done.cancelled() or done.exception() is not None:
            return
        if self._waiting == 0:
            self.give()

    def give(self) -> None:
        if self._fds is not None and self._pid == os.getpid():
            fcntl.flock(self._fds[0], fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fds is not None and self._pid == os.getpid():
            for fd in self._fds:
                os.close(fd)
        self._fds = None


def _others_waiting(want: int) -> bool:
    try:
        fcntl.flock(want, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(want, fcntl.LOCK_UN)
    return False


def _wait(turn: int, want: int) -> None:
    """In a thread: say we wait (if the flag is free this instant; never wait for it), then
    wait for the turn."""
    try:
        fcntl.flock(want, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:  # another process is looking at the flag right now
        pass
    try:
        fcntl.flock(turn, fcntl.LOCK_EX)
    finally:
        fcntl.flock(want, fcntl.LOCK_UN)


def _came_in(pending: asyncio.Future[None]) -> bool:
    return pending.done() and not pending.cancelled() and pending.exception() is None
