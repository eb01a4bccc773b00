"""Webhooks out, end to end: a real SQLite file and a real HTTP receiver on 127.0.0.1.

The receiver is a few lines of HTTP/1.1 over `asyncio.start_server`, so what it records is
exactly what went over the wire. The clock is fake and advanced by hand: retries are
tested without sleeping.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, insert, select

from empathic.core.signing import verify
from empathic.engine.webhooks import (
    WEBHOOK_EVENTS,
    WebhookInputError,
    WebhookSender,
    create_webhook,
    delete_webhook,
    enqueue,
    get_webhook,
    list_deliveries,
    list_webhooks,
)
from empathic.store.db import Database
from empathic.store.schema import webhook_deliveries, webhooks, workspaces
from tests.conftest import POSTGRES_URL, postgres_schema
from tests.integration.conftest import Receiver

START = datetime(2025, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)  # the Instant column keeps milliseconds (and may lose one)


class FakeClock:
    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)

    def set(self, at: datetime) -> None:
        self.at = at


@pytest.fixture(scope="module")
def migrated_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly migrated database file, built once and copied per test (migrating is slow)."""
    path = tmp_path_factory.mktemp("template") / "t.db"

    async def build() -> None:
        database = Database(f"sqlite:///{path}")
        await database.migrate()
        await database.close()  # checkpoints the WAL into the file

    asyncio.run(build())
    return path


# Every test runs on SQLite; those marked `both_backends` on PostgreSQL as well (the claim
# and outbox queries are where the two differ). Tests choose by parametrizing `backend`.
both_backends = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
async def db(backend: str, tmp_path: Path, migrated_file: Path) -> AsyncIterator[Database]:
    if backend == "sqlite":
        shutil.copyfile(migrated_file, tmp_path / "t.db")
        database = Database(f"sqlite:///{tmp_path / 't.db'}")
        await database.migrate()  # a no-op here; as every process does at start
        async with _with_workspaces(database):
            yield database
        return
    async with postgres_schema(migrated=True) as schema:
        database = Database(POSTGRES_URL, schema=schema)
        await database.migrate()
        async with _with_workspaces(database):
            yield database


@asynccontextmanager
async def _with_workspaces(database: Database) -> AsyncIterator[None]:
    async with database.transaction() as conn:
        await conn.execute(
            insert(workspaces),
            [
                {"id": "ws_a", "name": "A", "created_at": START},
                {"id": "ws_b", "name": "B", "created_at": START},
            ],
        )
    try:
        yield
    finally:
        await database.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# Building a TLS context (loading CA certificates) is most of an httpx client's start-up
# cost; share one across tests.
_TLS = ssl.create_default_context()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=_TLS) as client:
        yield client


def sender_for(db: Database, clock: FakeClock, http: httpx.AsyncClient, **kwargs: Any) -> WebhookSender:
    kwargs.setdefault("random", Random(7))
    return WebhookSender(db, clock, client=http, **kwargs)


async def make_webhook(db: Database, url: str, events: list[str], workspace: str = "ws_a") -> dict[str, Any]:
    async with db.transaction() as conn:
        return await create_webhook(conn, workspace, url, events, START)


async def put(
    db: Database, event_type: str, payloads: list[dict[str, Any]], now: datetime, workspace: str = "ws_a"
) -> int:
    async with db.transaction() as conn:
        return await enqueue(conn, workspace, event_type, payloads, now)


async def deliveries(db: Database, webhook_id: str, workspace: str = "ws_a") -> list[dict[str, Any]]:
    async with db.transaction() as conn:
        return await list_deliveries(conn, workspace, webhook_id)


async def raw_rows(db: Database) -> list[Any]:
    async with db.transaction() as conn:
        return list((await conn.execute(select(webhook_deliveries))).mappings().all())


# -- defining webhooks --------------------------------------------------------------------


async def test_create_list_get_delete(db: Database) -> None:
    created = await make_webhook(db, "https://shop.example/hooks", ["message.status", "message.received"])
    assert created["id"].startswith("wh_")
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["message.received", "message.status"]
    assert created["created_at"] == START.isoformat()
    async with db.transaction() as conn:
        listed = await list_webhooks(conn, "ws_a")
        got = await get_webhook(conn, "ws_a", created["id"])
        assert await get_webhook(conn, "ws_b", created["id"]) is None  # other workspace
        assert await list_webhooks(conn, "ws_b") == []
    expected = {k: v for k, v in created.items() if k != "secret"}
    assert listed == [expected]
    assert got == expected
    async with db.transaction() as conn:
        assert not await delete_webhook(conn, "ws_b", created["id"])
        assert await delete_webhook(conn, "ws_a", created["id"])
        assert not await delete_webhook(conn, "ws_a", created["id"])
        assert await list_webhooks(conn, "ws_a") == []


@pytest.mark.parametrize(
    "url, events, field_name, words",
    [
        ("ftp://shop.example/hooks", ["message.status"], "url", ["http://", "ftp"]),
        ("not a url", ["message.status"], "url", ["url"]),
        ("shop.example/hooks", ["message.status"], "url", ["http://", "no scheme"]),
        ("http://", ["message.status"], "url", ["host"]),
        ("http://shop.example:99999/", ["message.status"], "url", ["url"]),
        ("https://shop.example/" + "x" * 2000, ["message.status"], "url", ["2000"]),
        ("https://shop.example/hooks", ["message.sent", "message.status"], "events", ["'message.sent'"]),
        ("https://shop.example/hooks", [], "events", ["at least one"]),
        ("https://shop.example/hooks", "message.status", "events", ["list"]),
    ],
)
async def test_create_webhook_rejects_bad_input(
    db: Database, url: str, events: Any, field_name: str, words: list[str]
) -> None:
    with pytest.raises(WebhookInputError) as info:
        await make_webhook(db, url, events)
    assert info.value.field == field_name
    message = str(info.value)
    for word in words:
        assert word in message
    if field_name == "events":
        for name in WEBHOOK_EVENTS:
            assert name in message  # tells the caller what would have worked
    async with db.transaction() as conn:
        assert await list_webhooks(conn, "ws_a") == []


# -- the outbox -----------------------------------------------------------------------------


@both_backends
async def test_enqueue_targets_subscribed_webhooks_of_the_workspace_only(db: Database) -> None:
    status_hook = await make_webhook(db, "https://a.example/1", ["message.status"])
    inbound_hook = await make_webhook(db, "https://a.example/2", ["message.received"])
    other_ws = await make_webhook(db, "https://b.example/1", ["message.status"], workspace="ws_b")
    now = START + timedelta(seconds=5)

    payloads = [{"message_id": "msg_1", "status": "sent"}, {"message_id": "msg_2", "status": "delivered"}]
    assert await put(db, "message.status", payloads, now) == 2
    assert await put(db, "contact.opted_out", [{"contact_id": "ct_1"}], now) == 0  # nobody subscribed
    assert await put(db, "message.status", [], now) == 0

    mine = await deliveries(db, status_hook["id"])
    assert len(mine) == 2
    assert await deliveries(db, inbound_hook["id"]) == []
    assert await deliveries(db, other_ws["id"], workspace="ws_b") == []
    assert len(await raw_rows(db)) == 2

    # Newest first; ids are time-ordered, but two made in the same millisecond may tie.
    assert sorted(d["payload"]["data"]["message_id"] for d in mine) == ["msg_1", "msg_2"]
    for d in mine:
        assert d["status"] == "pending"
        assert d["attempts"] == 0
        assert d["event_type"] == "message.status"
        assert d["next_attempt_at"] == now.isoformat()
        assert d["created_at"] == now.isoformat()
        assert d["payload"]["id"] == d["id"]
        assert d["payload"]["type"] == "message.status"
        assert d["payload"]["created_at"] == now.isoformat()

    for row in await raw_rows(db):
        # The stored text is the canonical, compact, key-sorted JSON that will be signed.
        parsed = json.loads(row["payload"])
        assert row["payload"] == json.dumps(parsed, separators=(",", ":"), sort_keys=True)
        assert row["id"].startswith("whd_")


async def test_enqueue_fans_out_to_each_subscribed_webhook(db: Database) -> None:
    first = await make_webhook(db, "https://a.example/1", ["message.status", "contact.opted_out"])
    second = await make_webhook(db, "https://a.example/2", ["contact.opted_out"])
    assert await put(db, "contact.opted_out", [{"contact_id": "ct_1"}], START) == 2
    assert len(await deliveries(db, first["id"])) == 1
    assert len(await deliveries(db, second["id"])) == 1


async def test_enqueue_without_webhooks_and_unknown_event(db: Database) -> None:
    assert await put(db, "message.status", [{"x": 1}], START) == 0
    with pytest.raises(ValueError, match="unknown webhook event type"):
        await put(db, "message.sent", [{"x": 1}], START)


async def test_enqueue_rolls_back_with_the_callers_transaction(db: Database) -> None:
    hook = await make_webhook(db, "https://a.example/1", ["message.status"])
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            assert await enqueue(conn, "ws_a", "message.status", [{"m": 1}], START) == 1
            raise RuntimeError("the state change failed")
    assert await deliveries(db, hook["id"]) == []


# -- sending ---------------------------------------------------------------------------------


@both_backends
async def test_delivery_is_signed_and_exact(
    db: Database, receiver: Receiver, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    hook = await make_webhook(db, receiver.url, ["message.status"])
    await put(db, "message.status", [{"message_id": "msg_1", "status": "delivered", "note": "héllo"}], clock.now())
    [stored] = await raw_rows(db)
    clock.advance(2)
    sender = sender_for(db, clock, http)

    assert await sender.deliver_due() == 1

    [request] = receiver.requests
    assert request.method == "POST"
    assert request.path == "/hooks/empathic?token=s3cr3t"
    assert request.body == stored["payload"].encode()
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["empathic-event"] == "message.status"
    assert headers["empathic-delivery"] == stored["id"]
    assert headers["user-agent"] == "Empathic-Webhooks/1"
    now = int(clock.now().timestamp())
    assert headers["empathic-signature"].startswith(f"t={now},v1=")
    assert verify(hook["secret"], headers["empathic-signature"], request.body, now=now)
    assert not verify("whsec_wrong", headers["empathic-signature"], request.body, now=now)

    [d] = await deliveries(db, hook["id"])
    assert d["status"] == "delivered"
    assert d["attempts"] == 1
    assert d["last_status_code"] == 200
    assert d["last_error"] is None
    assert d["next_attempt_at"] is None
    assert d["updated_at"] == clock.now().isoformat()

    assert await sender.deliver_due() == 0  # nothing sent twice
    assert len(receiver.requests) == 1


async def test_not_due_yet_is_not_sent(
    db: Database, receiver: Receiver, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    await make_webhook(db, receiver.url, ["message.status"])
    await put(db, "message.status", [{"m": 1}], clock.now() + timedelta(seconds=30))
    assert await sender_for(db, clock, http).deliver_due() == 0
    assert receiver.requests == []


@both_backends
async def test_fails_twice_then_succeeds_with_growing_jittered_backoff(
    db: Database, receiver: Receiver, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    receiver.script = [500, 503]
    hook = await make_webhook(db, receiver.url, ["message.status"])
    await put(db, "message.status", [{"m": 1}], clock.now())
    sender = sender_for(db, clock, http, base_delay=2.0, max_attempts=5)

    delays = []
    for attempt, expected_code in [(1, 500), (2, 503)]:
        assert await sender.deliver_due() == 1
        [d] = await deliveries(db, hook["id"])
        assert d["status"] == "pending"
        assert d["attempts"] == attempt
        assert d["last_status_code"] == expected_code
        assert d["last_error"] == f"HTTP {expected_code}"
        next_at = datetime.fromisoformat(d["next_attempt_at"])
        delay = (next_at - clock.now()).total_seconds()
        ceiling = 2.0 * 2 ** (attempt - 1)
        assert 0.5 * ceiling - 0.001 <= delay <= ceiling
        delays.append(delay)
        # Not due before its time...
        clock.set(next_at - timedelta(milliseconds=10))
        assert await sender.deliver_due() == 0
        clock.set(next_at)

    assert delays[1] > delays[0]
    assert await sender.deliver_due() == 1
    [d] = await deliveries(db, hook["id"])
    assert (d["status"], d["attempts"], d["last_status_code"], d["last_error"]) == ("delivered", 3, 200, None)
    assert len(receiver.requests) == 3
    # Every attempt sends the same bytes under the same delivery id, freshly signed.
    assert len({r.body for r in receiver.requests}) == 1
    assert {r.headers["empathic-delivery"] for r in receiver.requests} == {d["id"]}
    for r in receiver.requests:
        t = int(r.headers["empathic-signature"].split(",")[0][2:])
        assert verify(hook["secret"], r.headers["empathic-signature"], r.body, now=t)


async def test_backoff_is_capped_and_jitter_stays_in_bounds(
    db: Database, receiver: Receiver, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    receiver.default = 500
    hook = await make_webhook(db, receiver.url, ["message.status"])
    await put(db, "message.status", [{"m": 1}], clock.now())
    sender = sender_for(db, clock, http, base_delay=1.0, max_delay=5.0, max_attempts=50, random=Random(1))
    seen = []
    for attempt in range(1, 13):
        assert await sender.deliver_due() == 1
        [d] = await deliveries(db, hook["id"])
        next_at = datetime.fromisoformat(d["next_attempt_at"])
        delay = (next_at - clock.now()).total_seconds()
        ceiling = min(5.0, 2 ** (attempt - 1))
        assert 0.5 * ceiling - 0.001 <= delay <= ceiling, (attempt, delay)
        seen.append(delay / ceiling)
        clock.set(next_at)
    assert len(set(seen)) > 1  # jittered, not a fixed factor


async def test_always_failing_gives_up_after_max_attempts(
    db: Database, receiver: Receiver, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    receiver.default = 500
    hook = await make_webhook(db, receiver.url, ["message.status"])
    await put(db, "message.status", [{"m": 1}], clock.now())
    sender = sender_for(db, clock, http, base_delay=0.5, max_attempts=3)
    for _ in range(3):
        assert await sender.deliver_due() == 1
        clock.advance(3600)
    [d] = await deliveries(db, hook["id"])
    assert (d["status"], d["attempts"], d["last_status_code"], d["next_attempt_at"]) == ("failed", 3, 500, None)
    assert await sender.deliver_due() == 0
    assert len(receiver.requests) == 3


async def test_gone_fails_at_once(db: Database, receiver: Receiver, clock: FakeClock, http: httpx.AsyncClient) -> None:
    receiver.script = [410]
    hook = await make_webhook(db, receiver.url, ["message.status"])
    await put(db, "message.status", [{"m": 1}], clock.now())
    sender = sender_for(db, clock, http)
    assert await sender.deliver_due() == 1
    [d] = await deliveries(db, hook["id"])
    assert (d["status"], d["attempts"], d["last_status_code"], d["last_error"]) == ("failed", 1, 410, "HTTP 410")
    clock.advance(86_400)
    assert await sender.deliver_due() == 0


async def test_redirect_is_a_failed_attempt_not_followed(
    db: Database, receiver: Receiver, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    receiver.script = [302]
    hook = await make_webhook(db, receiver.url, ["message.status"])
    await put(db, "message.status", [{"m": 1}], clock.now())
    assert await sender_for(db, clock, http).deliver_due() == 1
    [d] = await deliveries(db, hook["id"])
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("pending", 1, 302)
    assert len(receiver.requests) == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_connection_error_is_a_failed_attempt_with_a_short_error(
    db: Database, clock: FakeClock, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://user:pa55word@127.0.0.1:{_closed_port()}/hook?token=s3cr3t"
    hook = await make_webhook(db, url, ["message.status"])
    await put(db, "message.status", [{"m": 1}], clock.now())
    with caplog.at_level(logging.DEBUG, logger="empathic"):
        assert await sender_for(db, clock, http).deliver_due() == 1
    [d] = await deliveries(db, hook["id"])
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("pending", 1, None)
    assert d["last_error"] == "ConnectError"
    for secret in ("pa55word", "s3cr3t", hook["secret"], '"m":1'):
        assert secret not in d["last_error"]
        assert secret not in caplog.text
    assert d["id"] in caplog.text


async def test_timeout_is_a_failed_attempt(
    db: Database, receiver: Receiver, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    receiver.delay = 1.0
    hook = await make_webhook(db, receiver.url, ["message.status"])
    await put(db, "message.status", [{"m": 1}], clock.now())
    assert await sender_for(db, clock, http, timeout=0.2).deliver_due() == 1
    [d] = await deliveries(db, hook["id"])
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("pending", 1, None)
    assert d["last_error"] == "timeout after 0.2s"


async def test_deleted_webhook_fails_its_pending_deliveries(
    db: Database, receiver: Receiver, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    hook = await make_webhook(db, receiver.url, ["message.status"])
    keep = await make_webhook(db, receiver.url, ["message.status"])
    await put(db, "message.status", [{"m": 1}, {"m": 2}], clock.now())
    async with db.transaction() as conn:
        assert await delete_webhook(conn, "ws_a", hook["id"], now=clock.now())
    for d in await deliveries(db, hook["id"]):
        assert (d["status"], d["last_error"], d["next_attempt_at"]) == ("failed", "webhook deleted", None)
    assert await sender_for(db, clock, http).deliver_due() == 2  # only the surviving webhook's
    sent = {r.headers["empathic-delivery"] for r in receiver.requests}
    assert sent == {d["id"] for d in await deliveries(db, keep["id"])}


async def test_webhook_removed_under_the_sender_fails_its_deliveries(
    db: Database, receiver: Receiver, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    # As when a delete commits between enqueue's SELECT and its INSERT on another process.
    hook = await make_webhook(db, receiver.url, ["message.status"])
    await put(db, "message.status", [{"m": 1}], clock.now())
    async with db.transaction() as conn:
        await conn.execute(delete(webhooks).where(webhooks.c.id == hook["id"]))
    assert await sender_for(db, clock, http).deliver_due() == 0
    [d] = await deliveries(db, hook["id"])
    assert (d["status"], d["last_error"], d["attempts"]) == ("failed", "webhook deleted", 0)
    assert receiver.requests == []


@both_backends
async def test_concurrent_passes_never_send_a_delivery_twice(
    db: Database, receiver: Receiver, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    receiver.delay = 0.05
    hook = await make_webhook(db, receiver.url, ["message.status"])
    await put(db, "message.status", [{"m": i} for i in range(30)], clock.now())
    sender = sender_for(db, clock, http, batch_size=10, concurrency=4)
    other = sender_for(db, clock, http, batch_size=10)  # as a second worker would
    attempted = await asyncio.gather(
        sender.deliver_due(), sender.deliver_due(), other.deliver_due(), other.deliver_due()
    )
    assert sum(attempted) == 30
    ids = [r.headers["empathic-delivery"] for r in receiver.requests]
    assert len(ids) == len(set(ids)) == 30
    assert {d["status"] for d in await deliveries(db, hook["id"])} == {"delivered"}


async def test_claim_lease_means_a_crash_mid_send_is_retried_later(
    db: Database, receiver: Receiver, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    receiver.delay = 5.0  # the "crash" happens while the receiver is still answering
    hook = await make_webhook(db, receiver.url, ["message.status"])
    await put(db, "message.status", [{"m": 1}], clock.now())
    crashing = sender_for(db, clock, http, timeout=10.0)
    task = asyncio.create_task(crashing.deliver_due())
    await asyncio.wait_for(receiver.got_one.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    [d] = await deliveries(db, hook["id"])
    assert d["status"] == "pending" and d["attempts"] == 0
    leased_until = datetime.fromisoformat(d["next_attempt_at"])
    assert leased_until - clock.now() == timedelta(seconds=15)  # timeout + 5 s

    receiver.delay = 0.0
    survivor = sender_for(db, clock, http)
    assert await survivor.deliver_due() == 0  # still leased
    clock.set(leased_until)
    assert await survivor.deliver_due() == 1
    [d] = await deliveries(db, hook["id"])
    assert (d["status"], d["attempts"]) == ("delivered", 1)
    assert len(receiver.requests) == 2  # at least once: the receiver dedupes by Empathic-Delivery
    assert receiver.requests[0].headers["empathic-delivery"] == receiver.requests[1].headers["empathic-delivery"]


async def test_background_loop_delivers_when_woken(db: Database, receiver: Receiver, clock: FakeClock) -> None:
    hook = await make_webhook(db, receiver.url, ["message.received"])
    sender = WebhookSender(db, clock)  # owns its HTTP client
    await sender.start()
    try:
        await asyncio.sleep(0.05)  # the loop is idle, waiting
        await put(db, "message.received", [{"message_id": "msg_9"}], clock.now())
        sender.wake()
        await asyncio.wait_for(receiver.got_one.wait(), 0.5)  # well under the 1 s idle poll
        for _ in range(50):
            [d] = await deliveries(db, hook["id"])
            if d["status"] == "delivered":
                break
            await asyncio.sleep(0.01)
        assert d["status"] == "delivered"
    finally:
        await sender.stop()
    assert sender._loop._task is None


async def test_a_commit_that_queued_no_delivery_does_not_make_the_sender_look(
    db: Database, receiver: Receiver, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    hook = await make_webhook(db, receiver.url, ["message.status"])
    sender = sender_for(db, clock, http)
    real = sender.deliver_due
    passes = 0

    async def counted() -> int:
        nonlocal passes
        passes += 1
        return await real()

    sender.deliver_due = counted  # type: ignore[method-assign]
    await sender.start()
    try:
        sender.wake()
        for _ in range(100):
            if passes:
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        assert passes == 1
        for _ in range(5):  # commits of texts nobody subscribed to (every dispatcher batch)
            await put(db, "message.received", [{"m": 1}], clock.now())
            sender.wake()
            await asyncio.sleep(0.02)
        assert passes == 1  # well under the 1 s idle poll: nobody looked
        sender.wake(force=True)  # another process woke us: its deliveries are not in our count
        for _ in range(100):
            if passes == 2:
                break
            await asyncio.sleep(0.005)
        assert passes == 2
        await put(db, "message.status", [{"m": 2}], clock.now())
        sender.wake()
        await asyncio.wait_for(receiver.got_one.wait(), 0.5)
        assert passes == 3
    finally:
        await sender.stop()
    [d] = await deliveries(db, hook["id"])
    assert d["id"] == receiver.requests[0].headers["empathic-delivery"]


async def test_background_loop_survives_a_failing_pass(
    db: Database, receiver: Receiver, clock: FakeClock, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    hook = await make_webhook(db, receiver.url, ["message.status"])
    sender = sender_for(db, clock, http)
    real = sender.deliver_due
    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")
        return await real()

    sender.deliver_due = flaky  # type: ignore[method-assign]
    await put(db, "message.status", [{"m": 1}], clock.now())
    await sender.start()
    try:
        for _ in range(100):  # waking skips the pause after a failed pass
            if receiver.got_one.is_set():
                break
            sender.wake()
            await asyncio.sleep(0.02)
        assert receiver.got_one.is_set()
    finally:
        await sender.stop()
    assert "webhook delivery pass failed" in caplog.text
    assert calls >= 2
    [d] = await deliveries(db, hook["id"])
    assert d["id"] == receiver.requests[0].headers["empathic-delivery"]


async def test_sender_rejects_nonsense_settings(db: Database) -> None:
    for bad in (
        {"max_attempts": 0},
        {"base_delay": 0},
        {"max_delay": 0.5, "base_delay": 1.0},
        {"timeout": 0},
        {"concurrency": 0},
        {"batch_size": 0},
    ):
        with pytest.raises(ValueError):
            WebhookSender(db, FakeClock(), **bad)  # type: ignore[arg-type]


async def test_stopping_mid_pass_leaves_the_database_usable(
    db: Database, receiver: Receiver, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    # A cancel inside an open SQLite transaction would leave its write lock held; stop()
    # must let the transaction finish. Stop at many different moments of busy passes.
    await make_webhook(db, receiver.url, ["message.status"])
    await put(db, "message.status", [{"m": i} for i in range(200)], clock.now())
    for i in range(25):
        sender = sender_for(db, clock, http, batch_size=5)
        await sender.start()
        await asyncio.sleep(0.001 * (i % 7))
        await sender.stop()
        async with asyncio.timeout(2):  # the busy timeout is 10 s: a leaked lock shows here
            async with db.transaction() as conn:
                await conn.execute(insert(workspaces).values(id=f"ws_{i}", name="x", created_at=START))
