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
tasks take turns already, so at most one task waits here at a time, in a thread of its
own. A wait given up (timed out, cancelled) stays queued: the next `take` joins it, or it
passes the turn on the moment it comes. The files get the database file's permissions
(processes of several users in one group share it as they share `-wal`); a turn that
cannot be opened is left out, with a warning, and SQLite's own lock is all there is.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
import time
import threading
from queue import SimpleQueue
from pathlib import Path

from sqlalchemy.exc import OperationalError

try:
    import fcntl
except ImportError:  # not on this platform: SQLite's own lock, retried, is all there is
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


class WriteTurn:
    def __init__(self, database: Path) -> None:
        database = database.resolve()  # one file, one turn, whatever the path it was named by
        self.database = database
        self.paths = (database.with_name(database.name + "-turn"), database.with_name(database.name + "-want"))
        self._fds: tuple[int, int] | None = None
        self._pid = 0
        self._broken = False  # the files could not be opened: no turns
        self._pending: asyncio.Future[None] | None = None  # a blocking wait in `_thread`
        self._orphan: asyncio.Future[None] | None = None  # `_pending`, given up by its waiter
        self._thread: _Waiter | None = None

    @staticmethod
    def available() -> bool:
        return fcntl is not None

    def _files(self) -> tuple[int, int] | None:
        if self._broken:
            return None
        if self._fds is None or self._pid != os.getpid():
            if self._fds is not None:  # a forked child: the parent's waits and locks are not ours
                for fd in self._fds:
                    os.close(fd)
                self._pending = self._orphan = self._thread = None  # threads do not survive a fork
            try:
                mode = stat.S_IMODE(os.stat(self.database).st_mode) or 0o644
            except OSError:
                mode = 0o644
            opened: list[int] = []
            try:
                for path in self.paths:
                    opened.append(os.open(path, os.O_RDWR | os.O_CREAT, mode))
            except OSError as exc:
                for fd in opened:
                    os.close(fd)
                self._broken, self._fds = True, None
                log.warning("no write turns for %s (%s); SQLite's lock is retried instead", self.database, exc)
                return None
            self._fds, self._pid = (opened[0], opened[1]), os.getpid()
        return self._fds

    async def take(self, timeout: float) -> bool:
        """Wait for the turn, at most `timeout` seconds; then raise OperationalError
        ("database is locked", as SQLite's own would be: store.db.unavailable knows it).
        False: there are no turns here (the files could not be opened); nothing to give."""
        fds = self._files()
        if fds is None:
            return False
        turn, want = fds
        pending = self._pending
        if pending is None:
            if not _others_waiting(want):
                try:
                    fcntl.flock(turn, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    pass
            if self._thread is None:
                self._thread = _Waiter()
            # The thread waits on copies of the descriptors: same locks, and closing ours
            # meanwhile (close()) cannot make it unlock another file's.
            pending = self._pending = self._thread.wait(os.dup(turn), os.dup(want))
        self._orphan = None  # a wait given up before is ours again
        try:
            await asyncio.wait_for(asyncio.shield(pending), max(0.0, timeout))
        except TimeoutError:
            if _came_in(pending):  # it came just as the wait ran out: ours
                self._pending = None
                return True
            self._abandon(pending)
            raise OperationalError(
                "BEGIN IMMEDIATE", None,
                sqlite3.OperationalError(f"database is locked: no write turn in {timeout:.1f}s ({self.paths[0]})"),
            ) from None
        except BaseException:
            if _came_in(pending):  # cancelled after it came: pass it on
                self._pending = None
                self.give()
            elif pending.done():  # the wait itself failed
                self._pending = None
            else:
                self._abandon(pending)
            raise
        self._pending = None
        return True

    def _abandon(self, pending: asyncio.Future[None]) -> None:
        self._orphan = pending
        pending.add_done_callback(self._came_to_nobody)

    def _came_to_nobody(self, done: asyncio.Future[None]) -> None:
        if self._orphan is not done:  # a later take() joined it: the turn is that one's
            return
        self._orphan = self._pending = None
        if _came_in(done):  # nobody waits for it any more: pass it on, or it blocks everyone
            self.give()

    def give(self) -> None:
        if self._fds is not None and self._pid == os.getpid():
            fcntl.flock(self._fds[0], fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fds is not None and self._pid == os.getpid():
            for fd in self._fds:
                os.close(fd)
        self._fds = None
        if self._thread is not None:
            self._thread.stop()
            self._thread = None


class _Waiter:
    """The thread a turn's blocking waits run in: a daemon, so a wait still queued behind
    a paused process never keeps this one from exiting (an executor's threads are joined
    at exit)."""

    def __init__(self) -> None:
        self._jobs: SimpleQueue[tuple[int, int, asyncio.Future[None]] | None] = SimpleQueue()
        threading.Thread(target=self._run, name="sqlite-turn", daemon=True).start()

    def wait(self, turn: int, want: int) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._jobs.put((turn, want, done))
        return done

    def stop(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            turn, want, done = job
            try:
                _wait(turn, want)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting task
                _settle(done, exc)
            else:
                _settle(done, None)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    def settle() -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    try:
        done.get_loop().call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is closed: nobody is waiting
        pass


def _others_waiting(want: int) -> bool:
    try:
        fcntl.flock(want, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(want, fcntl.LOCK_UN)
    return False


def _wait(turn: int, want: int) -> None:
    """In a thread: say we wait, then wait for the turn. The flag is never waited for: it
    is held exclusively only between two system calls of a process looking at it."""
    try:
        for _ in range(5):
            try:
                fcntl.flock(want, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.0001)
        fcntl.flock(turn, fcntl.LOCK_EX)
    finally:
        fcntl.flock(want, fcntl.LOCK_UN)
        os.close(want)
        os.close(turn)  # the turn stays held through the descriptor it was copied from


def _came_in(pending: asyncio.Future[None]) -> bool:
    return pending.done() and not pending.cancelled() and pending.exception() is None
