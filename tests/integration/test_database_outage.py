"""PostgreSQL restarted under load: the API answers 503 with Retry-After instead of accepting
what it cannot store, and the workers reconnect and finish everything, once.

A private server (tests/pgcluster.py) is stopped and started again while a client posts
batches and retries each refused batch under the same idempotency keys, as clients do.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from empathic.api.app import create_app
from empathic.engine.runtime import Runtime
from empathic.engine.wake import Waker
from tests.conftest import API_KEY, make_settings
from tests.pgcluster import PrivateCluster

BATCHES, PER_BATCH = 40, 25


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    server = PrivateCluster()
    try:
        server.init()
        yield server
    finally:
        server.destroy()


@pytest.fixture
async def runtime(cluster: PrivateCluster, tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = Runtime(make_settings(tmp_path, database_url=cluster.url, lease_ttl=2.0))
    await rt.start()
    try:
        yield rt
    finally:
        if not cluster.accepting():
            cluster.start()
        await rt.stop()


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://empathic.test",
                                 headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield client


def batch(n: int) -> dict[str, object]:
    return {"messages": [{"to": f"+1415555{n % 10:01d}{i:03d}", "body": f"Order {n}-{i} is on its way",
                          "idempotency_key": f"order-{n}-{i}"} for i in range(PER_BATCH)]}


async def test_a_restart_under_load_refuses_with_503_and_loses_or_doubles_nothing(
    cluster: PrivateCluster, runtime: Runtime, api: httpx.AsyncClient,
) -> None:
    statuses: Counter[int] = Counter()
    refusals: list[httpx.Response] = []
    accepted: dict[str, str] = {}  # idempotency key -> message id, from every 202

    async def client() -> None:
        for n in range(BATCHES):
            while True:  # a refused batch is sent again, whole, under the same keys
                got = await api.post("/v1/messages/batch", json=batch(n))
                statuses[got.status_code] += 1
                if got.status_code == 202:
                    for m in got.json()["messages"]:
                        assert accepted.setdefault(m["idempotency_key"], m["id"]) == m["id"]
                    break
                refusals.append(got)
                await asyncio.sleep(0.05)  # Retry-After says 2 s; a test need not wait that long
            await asyncio.sleep(0.02)

    load = asyncio.create_task(client())
    await asyncio.sleep(0.4)
    await asyncio.to_thread(cluster.stop)  # fast shutdown: every session is cut off
    down_at = time.monotonic()
    while statuses[503] < 3:
        await asyncio.sleep(0.02)
        assert time.monotonic() - down_at < 15, f"no refusals while the database was down: {statuses}"
    ready = await api.get("/readyz")
    assert ready.status_code == 503 and ready.headers["retry-after"] == "2"
    api_key_lookup = create_app(runtime)  # a fresh app has no cached key: auth itself needs the database
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api_key_lookup), base_url="http://x",
                                 headers={"Authorization": f"Bearer {API_KEY}"}) as fresh:
        assert (await fresh.get("/v1/messages")).status_code == 503
    await asyncio.sleep(1.0)
    await asyncio.to_thread(cluster.start)
    await asyncio.wait_for(load, timeout=60)

    assert set(statuses) <= {202, 503}, f"only accepted or refused, never a 500: {statuses}"
    assert statuses[202] == BATCHES
    for refused in refusals:
        assert refused.headers["retry-after"] == "2"
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "idempotency key" in refused.json()["detail"]
    assert (await api.get("/readyz")).json() == {"status": "ready"}
    assert len(accepted) == BATCHES * PER_BATCH

    # The workers carry on by themselves: each accepted text reaches the carrier once.
    async def settled() -> tuple[dict[str, int], int, int]:
        async with runtime.db.transaction() as conn:
            by_status = dict((await conn.execute(text("SELECT status, count(*) FROM messages GROUP BY status"))).all())
            rows, refs = (await conn.execute(text(
                "SELECT count(*), count(DISTINCT client_ref) FROM sim_messages WHERE direction = 'mt'"))).one()
        return by_status, rows, refs

    deadline = time.monotonic() + 45
    while True:
        by_status, at_carrier, distinct = await settled()
        if by_status == {"delivered": BATCHES * PER_BATCH} or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert by_status == {"delivered": BATCHES * PER_BATCH}, by_status
    assert at_carrier == distinct == BATCHES * PER_BATCH, (at_carrier, distinct)


async def test_a_worker_listens_again_after_the_server_restarts(cluster: PrivateCluster, tmp_path: Path) -> None:
    woken = asyncio.Event()
    listener = Waker(postgres_dsn=cluster.url, schema=None, data_dir=tmp_path)
    sender = Waker(postgres_dsn=cluster.url, schema=None, data_dir=tmp_path)
    await listener.listen(woken.set)
    try:
        sender.notify()
        await asyncio.wait_for(woken.wait(), 5)
        await asyncio.to_thread(cluster.stop)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(cluster.start)
        deadline = time.monotonic() + 10
        while not (listener.listening and woken.is_set()):  # back, and woken for what it missed
            assert time.monotonic() < deadline, "the worker did not listen again after the restart"
            await asyncio.sleep(0.05)
        woken.clear()
        sender.notify()  # the sender's old connection is gone too: it connects again
        await asyncio.wait_for(woken.wait(), 5)
    finally:
        await listener.close()
        await sender.close()
