"""A worker that dies mid-batch over SMPP (its tasks stopped and its descriptors closed, no
stop path run, as kill -9 leaves it): the fresh dispatcher that reconciles reads the dead
worker's journal, puts the texts never written back in the queue, sent once, and holds or
resends the written ones as their topic says. Against `empathic smsc-sim` on loopback."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from empathic.channels.smpp.channel import SmppChannel
from empathic.engine.runtime import Runtime
from empathic.smsc.server import Smsc, SmscSettings
from empathic.store import messages as store
from tests.conftest import POSTGRES_URL, eventually, make_settings, postgres_schema
from tests.integration.test_smpp_engine import HELD_TOPIC, send, smpp_entry, statuses, write_project

WINDOW = 5


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@asynccontextmanager
async def database(backend: str) -> AsyncIterator[dict[str, Any]]:
    """The settings of one database both runtimes share: SQLite in the data dir, or a fresh schema."""
    if backend == "postgresql":
        async with postgres_schema(migrated=True) as schema:
            yield {"database_url": POSTGRES_URL, "database_schema": schema}
    else:
        yield {}


async def die(rt: Runtime, handing: asyncio.Task[None]) -> None:
    """As kill -9 leaves a worker: its tasks stop where they are and no stop path runs
    (nothing recorded, no unbind, the journal not closed); the kernel closes its sockets
    (what the transport still buffered is lost) and its journal's descriptors, which lets
    go of the lock. Its database connections are left as they are (closed after the test)."""
    channel = rt.channels.by_name["carrier"]
    assert isinstance(channel, SmppChannel)
    sessions = [session for session in channel._sessions.values() if session is not None]  # noqa: SLF001
    tasks = [handing, *channel._supervisors, *(task for session in sessions for task in session._tasks)]  # noqa: SLF001
    for task in tasks:  # all of this before anything else runs: no task sees the connection end
        task.cancel()
    for session in sessions:
        assert session._writer is not None  # noqa: SLF001
        session._writer.transport.abort()  # noqa: SLF001
    writer = channel._journal  # noqa: SLF001
    assert writer is not None
    for fd in (writer._fd, writer._lock):  # noqa: SLF001
        assert fd is not None
        os.close(fd)
    writer._fd = writer._lock = None  # noqa: SLF001 - its numbers may be the kernel's to give again
    await asyncio.gather(*tasks, return_exceptions=True)


async def reasons(rt: Runtime, ids: list[str]) -> dict[str, list[str]]:
    async with rt.db.transaction() as conn:
        return {i: [e.reason for e in await store.history(conn, i)] for i in ids}


@pytest.mark.parametrize("topic", ["notices", "transactional"])  # on_unknown: hold, resend
async def test_a_dead_workers_texts_never_written_are_sent_once_and_the_written_follow_their_topic(
    tmp_path: Path, backend: str, topic: str
) -> None:
    # Answers take 1 s and receipts never come: a window of texts stays written and
    # unanswered, the rest of the batch waits for a slot, until the worker dies.
    async with Smsc(SmscSettings(port=0, latency=1.0, receipts=False)) as smsc, database(backend) as db:
        project = write_project(tmp_path / "project", HELD_TOPIC + smpp_entry(smsc.port).replace("window = 50", f"window = {WINDOW}"))
        dead = Runtime(make_settings(tmp_path, project_dir=project, run_workers=False, **db))
        await dead.start()
        assert await dead.channels.by_name["carrier"].wait_up(10)  # type: ignore[attr-defined]
        ids = await send(dead, 2 * WINDOW, topic=topic)
        dispatcher = dead.dispatchers["carrier"]
        claimed = await dispatcher._claim(2 * WINDOW)  # noqa: SLF001
        assert claimed is not None and len(claimed[1]) == 2 * WINDOW
        handing = asyncio.create_task(dispatcher._send_and_record(claimed[1]))  # noqa: SLF001

        async def a_window_arrived() -> bool:
            return smsc.summary()["received"] == WINDOW

        await eventually(a_window_arrived, timeout=10)
        await asyncio.sleep(0.05)  # nothing more is written: the others wait for a slot
        assert smsc.summary()["received"] == WINDOW
        await die(dead, handing)
        try:
            fresh = Runtime(make_settings(tmp_path, project_dir=project, **db))  # the same data dir: the journal
            await fresh.start()  # takes the channel's lease and reconciles
            try:
                async def settled() -> dict[str, int] | None:
                    counts = await statuses(fresh, ids)
                    return counts if "sending" not in counts and "queued" not in counts else None

                counts = await eventually(settled, timeout=20)
                history = await reasons(fresh, ids)
            finally:
                await fresh.stop()
        finally:
            await dead.db.close()  # what the kernel would have closed
    summary = smsc.summary()
    never = [i for i in ids if "reconciled_never_written" in history[i]]
    written = [i for i in ids if i not in never]
    assert len(never) == len(written) == WINDOW
    assert all("interrupted_outcome_unknown" not in history[i] and "resent_after_unknown" not in history[i]
               for i in never)
    assert summary["unique"] == 2 * WINDOW  # every text reached the SMSC
    if topic == "notices":  # held: the written ones are `unknown`, and nothing is at the SMSC twice
        assert counts == {"sent": WINDOW, "unknown": WINDOW}
        assert all(history[i][-1] == "interrupted_outcome_unknown" for i in written)
        assert summary["received"] == 2 * WINDOW and summary["duplicates"] == 0
    else:  # resent: the written ones go again (the SMSC had them: doubles); the unwritten once
        assert counts == {"sent": 2 * WINDOW}
        assert all("resent_after_unknown" in history[i] for i in written)
        assert summary["received"] == 3 * WINDOW and summary["duplicates"] == WINDOW
