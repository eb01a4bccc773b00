"""Two processes' connections to one SQLite file (an API process beside a worker): a
transaction that finds the write lock taken waits for it (store/db.py retries), and gives
up with SQLite's own error only after BUSY_WAIT."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from empathic.store import db as db_module
from empathic.store.db import Database, sqlite_url


async def _hold_lock(db: Database, seconds: float, held: asyncio.Event) -> None:
    async with db.transaction() as conn:
        await conn.execute(text("INSERT INTO leases (name, owner, expires_at) VALUES ('x', 'a', 0)"))
        held.set()
        await asyncio.sleep(seconds)


async def test_a_busy_write_lock_is_waited_for(tmp_path: Path) -> None:
    first, second = Database(sqlite_url(tmp_path / "e.db")), Database(sqlite_url(tmp_path / "e.db"))
    await first.migrate()
    held = asyncio.Event()
    holder = asyncio.create_task(_hold_lock(first, 0.3, held))
    await held.wait()
    started = time.monotonic()
    async with second.transaction() as conn:  # another engine: another connection, like another process
        await conn.execute(text("INSERT INTO leases (name, owner, expires_at) VALUES ('y', 'b', 0)"))
    waited = time.monotonic() - started
    await holder
    assert 0.2 <= waited < 1.0  # it waited for the lock, and not much longer than it was held
    async with second.transaction() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM leases"))).scalar() == 2
    await first.close()
    await second.close()


async def test_it_gives_up_after_the_busy_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "BUSY_WAIT", 0.1)
    first, second = Database(sqlite_url(tmp_path / "e.db")), Database(sqlite_url(tmp_path / "e.db"))
    await first.migrate()
    held = asyncio.Event()
    holder = asyncio.create_task(_hold_lock(first, 0.5, held))
    await held.wait()
    with pytest.raises(OperationalError, match="locked"):
        async with second.transaction():
            pass
    await holder
    await first.close()
    await second.close()


# -- turns (store.turns): the processes sharing a file take the write lock in turn ---------


def _holder(path: Path, mode: str) -> subprocess.Popen[str]:
    """Another process holding `path` (EX or SH flock) until killed; started when it says so."""
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
        f"fcntl.flock(fd, fcntl.LOCK_{mode})\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


async def _write(db: Database, name: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(text("INSERT INTO leases (name, owner, expires_at) VALUES (:n, 'a', 0)"), {"n": name})


async def test_a_process_killed_holding_the_turn_lets_the_others_write(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "e.db"))
    await db.migrate()
    holder = _holder(tmp_path / "e.db-turn", "EX")
    try:
        writing = asyncio.create_task(_write(db, "x"))
        await asyncio.sleep(0.3)
        assert not writing.done()  # it waits for the turn
        started = time.monotonic()
        holder.kill()
        holder.wait()
        await asyncio.wait_for(writing, 2)
        assert time.monotonic() - started < 1.0  # woken when the kernel took the dead one's lock
    finally:
        holder.kill()
        await db.close()


async def test_a_waiter_that_is_paused_holds_nobody_up(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "e.db"))
    await db.migrate()
    waiter = _holder(tmp_path / "e.db-want", "SH")  # says it waits, then never comes (SIGSTOP, a crash)
    try:
        started = time.monotonic()
        for i in range(20):
            await _write(db, f"n{i}")
        assert time.monotonic() - started < 2.0
    finally:
        waiter.kill()
        await db.close()


_WRITER = """
import asyncio, os, sys, time
from sqlalchemy import text
from empathic.store.db import Database, sqlite_url

async def main(path, who, go):
    db = Database(sqlite_url(path))
    open(go + "." + who, "w").close()  # imported and ready
    while not os.path.exists(go):
        time.sleep(0.001)
    for i in range(40):
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO leases (name, owner, expires_at) VALUES (:n, :o, 0)"),
                               {"n": f"{who}{i}", "o": who})
            await asyncio.sleep(0.002)  # the lock held a while, as a batch's write holds it
        await asyncio.sleep(0)  # and back for more at once, as an API process under load
    await db.close()

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
"""


async def test_two_processes_writing_back_to_back_take_turns(tmp_path: Path) -> None:
    """An API process and a worker each wanting the lock again as soon as they give it: the
    one already waiting goes first, so neither runs far ahead of the other."""
    db = Database(sqlite_url(tmp_path / "e.db"))
    await db.migrate()
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path / "e.db"), who, str(go)]) for who in "ab"
    ]
    # Both imported and waiting for the go (a fixed second was too short on a busy machine:
    # one process started late and the other ran 11 ahead).
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"go.{who}").exists() for who in "ab"):
        assert time.monotonic() < deadline, "the writers did not start"
        await asyncio.sleep(0.01)
    go.touch()
    for proc in procs:
        assert await asyncio.to_thread(proc.wait, 60) == 0
    async with db.transaction() as conn:
        order = [o for (o,) in (await conn.execute(text("SELECT owner FROM leases ORDER BY rowid"))).all()]
    await db.close()
    runs, longest, last = 0, 0, None
    for who in order:
        runs = runs + 1 if who == last else 1
        longest, last = max(longest, runs), who
    assert sorted(order) == ["a"] * 40 + ["b"] * 40
    assert longest <= 8, "".join(order)


def _can_take(path: Path) -> bool:
    """Can another process take `path` exclusively right now?"""
    code = (
        "import fcntl, os, sys\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR)\n"
        "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(1)\n"
    )
    return subprocess.run([sys.executable, "-c", code]).returncode == 0


async def test_a_wait_given_up_is_joined_by_the_next_and_never_leaves_the_turn_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(sqlite_url(tmp_path / "e.db"))
    await db.migrate()
    holder = _holder(tmp_path / "e.db-turn", "EX")
    try:
        monkeypatch.setattr(db_module, "BUSY_WAIT", 0.2)
        with pytest.raises(OperationalError, match="locked"):
            await _write(db, "given-up")  # its wait stays queued in the kernel
        monkeypatch.setattr(db_module, "BUSY_WAIT", 10.0)
        joined = asyncio.create_task(_write(db, "joined"))
        await asyncio.sleep(0.2)
        holder.kill()
        holder.wait()
        await asyncio.wait_for(joined, 2)
        assert _can_take(tmp_path / "e.db-turn")  # given back after the write, not kept by the old wait

        holder = _holder(tmp_path / "e.db-turn", "EX")
        monkeypatch.setattr(db_module, "BUSY_WAIT", 0.2)
        with pytest.raises(OperationalError, match="locked"):
            await _write(db, "abandoned")
        holder.kill()
        holder.wait()
        await asyncio.sleep(0.3)  # the abandoned wait comes in with nobody waiting: passed on
        assert _can_take(tmp_path / "e.db-turn")
    finally:
        holder.kill()
        await db.close()
    again = Database(sqlite_url(tmp_path / "e.db"))
    async with again.transaction() as conn:
        names = {n for (n,) in (await conn.execute(text("SELECT name FROM leases"))).all()}
    await again.close()
    assert names == {"joined"}


async def test_turn_files_that_cannot_be_opened_leave_sqlites_lock_alone(tmp_path: Path) -> None:
    (tmp_path / "e.db-turn").mkdir()  # not a file: opening it fails
    db = Database(sqlite_url(tmp_path / "e.db"))
    await db.migrate()
    for i in range(3):
        await _write(db, f"n{i}")
    await db.close()


_GIVES_UP_AND_EXITS = """
import asyncio, sys
from empathic.store import db as db_module
from empathic.store.db import Database, sqlite_url

async def main(path):
    db = Database(sqlite_url(path))
    db_module.BUSY_WAIT = 0.2
    try:
        async with db.transaction():
            pass
    except Exception as exc:
        print(type(exc).__name__, flush=True)

asyncio.run(main(sys.argv[1]))  # leaves, its wait still queued behind the holder
"""


async def test_a_process_whose_wait_is_still_queued_exits_at_once(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "e.db"))
    await db.migrate()
    await db.close()
    holder = _holder(tmp_path / "e.db-turn", "EX")
    try:
        started = time.monotonic()
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", _GIVES_UP_AND_EXITS, str(tmp_path / "e.db")],
            capture_output=True, text=True, timeout=20,
        )
        assert done.stdout.strip() == "OperationalError" and done.returncode == 0
        assert time.monotonic() - started < 10  # not held until the holder lets go
    finally:
        holder.kill()
