"""Webhooks out: the endpoints a workspace registers, and the signed, retried POSTs to them.

The engine records what happened with `enqueue`, inside the same transaction as the state
change that caused it (the outbox pattern): a status change and its webhook delivery commit
together or not at all. `WebhookSender` then claims due deliveries, POSTs them, and records
the outcome with retries and backoff.

Each request carries::

    Content-Type: application/json
    Empathic-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>   (see empathic.core.signing)
    Empathic-Event: message.status
    Empathic-Delivery: whd_01J...
    User-Agent: Empathic-Webhooks/1

and the body `{"created_at": ..., "data": {...}, "id": "whd_...", "type": "message.status"}`,
stored at enqueue time and sent byte for byte on every attempt.

Delivery is at least once. A delivery is claimed by pushing its `next_attempt_at` forward by
a lease before it is sent, so two passes (or two processes) never send it at the same time;
if the process dies mid-send the lease runs out and it is sent again. Receivers should
therefore ignore an `Empathic-Delivery` id they have already processed.

A 2xx answer means delivered. Anything else (another status, a timeout, a connection error)
is a failed attempt, retried after `min(max_delay, base_delay * 2**(attempts-1))` seconds
scaled by a random factor between 0.5 and 1 ("equal jitter": retries from many deliveries
spread out, yet never collapse to an immediate retry the way full 0-100 % jitter can).
After `max_attempts`, or at once on `410 Gone`, the delivery is `failed`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from random import Random
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from sqlalchemy import RowMapping, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.json import Json
from empathic.core.clock import Clock
from empathic.core.errors import InputError
from empathic.core.ids import new_id
from empathic.core.signing import HEADER as SIGNATURE_HEADER
from empathic.core.signing import new_secret, sign
from empathic.loop import Loop
from empathic.store.db import Database, after_commit
from empathic.store.schema import Instant, webhook_deliveries, webhooks

log = logging.getLogger(__name__)
T = TypeVar("T")

WEBHOOK_EVENTS = frozenset({"message.status", "message.received", "contact.opted_out", "flow.run.ended"})

USER_AGENT = "Empathic-Webhooks/1"
_MAX_URL = 2000  # the width of webhooks.url
_LEASE_MARGIN = 5.0  # seconds a claim outlives the longest time its sends can take
_MAX_IDLE = 1.0  # the loop looks for due deliveries at least this often (other processes enqueue too)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookInputError(InputError):
    """A webhook definition we cannot accept; `field` is "url" or "events", and the
    message says it (it names the field itself)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message, message=message)


# -- the webhooks a workspace registers --------------------------------------------------


async def create_webhook(
    conn: AsyncConnection, workspace_id: str, url: str, events: list[str], now: datetime
) -> dict[str, Any]:
    """Register an endpoint; the answer is the only place its signing secret is ever shown."""
    _check_url(url)
    wanted = _check_events(events)
    now = _to_ms(now)
    row = {
        "id": new_id("wh"),
        "workspace_id": workspace_id,
        "url": url,
        "events": wanted,
        "secret": new_secret(),
        "created_at": now,
    }
    await conn.execute(insert(webhooks).values(**row))
    return {
        "id": row["id"],
        "url": url,
        "events": wanted,
        "secret": row["secret"],
        "created_at": now.isoformat(),
    }


async def list_webhooks(conn: AsyncConnection, workspace_id: str) -> list[dict[str, Any]]:
    result = await conn.execute(
        select(webhooks.c.id, webhooks.c.url, webhooks.c.events, webhooks.c.created_at)
        .where(webhooks.c.workspace_id == workspace_id)
        .order_by(webhooks.c.id)
    )
    return [_webhook_out(row) for row in result.mappings()]


async def get_webhook(conn: AsyncConnection, workspace_id: str, webhook_id: str) -> dict[str, Any] | None:
    result = await conn.execute(
        select(webhooks.c.id, webhooks.c.url, webhooks.c.events, webhooks.c.created_at).where(
            webhooks.c.workspace_id == workspace_id, webhooks.c.id == webhook_id
        )
    )
    row = result.mappings().first()
    return None if row is None else _webhook_out(row)


async def delete_webhook(
    conn: AsyncConnection, workspace_id: str, webhook_id: str, *, now: datetime | None = None
) -> bool:
    """Remove an endpoint; its deliveries still pending become `failed` ("webhook deleted")."""
    result = await conn.execute(
        delete(webhooks).where(webhooks.c.workspace_id == workspace_id, webhooks.c.id == webhook_id)
    )
    if result.rowcount == 0:
        return False
    await _fail_orphans(conn, workspace_id, [webhook_id], now or datetime.now(UTC))
    return True


async def list_deliveries(
    conn: AsyncConnection, workspace_id: str, webhook_id: str, limit: int = 100
) -> list[dict[str, Any]]:
    """A webhook's deliveries, newest first (ids are time-ordered)."""
    d = webhook_deliveries.c
    result = await conn.execute(
        select(
            d.id,
            d.event_type,
            d.status,
            d.attempts,
            d.last_status_code,
            d.last_error,
            d.next_attempt_at,
            d.created_at,
            d.updated_at,
            d.payload,
        )
        .where(d.workspace_id == workspace_id, d.webhook_id == webhook_id)
        .order_by(d.id.desc())
        .limit(max(1, limit))
    )
    return [
        {
            "id": row["id"],
            "event_type": row["event_type"],
            "status": row["status"],
            "attempts": row["attempts"],
            "last_status_code": row["last_status_code"],
            "last_error": row["last_error"],
            "next_attempt_at": _iso(row["next_attempt_at"]),
            "created_at": _iso(row["created_at"]),
            "updated_at": _iso(row["updated_at"]),
            "payload": json.loads(row["payload"]),
        }
        for row in result.mappings()
    ]


# -- the outbox --------------------------------------------------------------------------


# Built once: every status write asks it (see leases._CURRENT).
_SUBSCRIBED = select(webhooks.c.id, webhooks.c.events).where(webhooks.c.workspace_id == bindparam("workspace_id"))


class _Queued:
    """Deliveries this process has queued and committed, counted: the sender looks for
    work when woken only if the count moved (other processes' are found within _MAX_IDLE)."""

    count = 0

    @classmethod
    def more(cls) -> None:
        cls.count += 1


async def enqueue(
    conn: AsyncConnection,
    workspace_id: str,
    event_type: str,
    payloads: Sequence[dict[str, Any]] | Callable[[], Sequence[dict[str, Any]]],
    now: datetime,
) -> int:
    """Queue one delivery per payload to each of the workspace's webhooks taking `event_type`.

    Call it inside the transaction (a `Database.transaction`) that makes the change the
    payloads describe, then wake the sender after commit. `payloads` may be a function that
    makes them, called only if a webhook takes the event. Returns the number of deliveries
    queued. With no webhooks it costs one small SELECT.
    """
    if event_type not in WEBHOOK_EVENTS:
        # The engine's own event names are fixed; a typo here is a bug, not bad input.
        raise ValueError(f"unknown webhook event type {event_type!r}")
    if not callable(payloads) and not payloads:
        return 0
    result = await conn.execute(_SUBSCRIBED, {"workspace_id": workspace_id})
    targets = [webhook_id for webhook_id, events in result.all() if event_type in events]
    if not targets:
        return 0
    if callable(payloads):
        payloads = payloads()
        if not payloads:
            return 0
    now = _to_ms(now)
    created_at = now.isoformat()
    rows = []
    for webhook_id in targets:
        for data in payloads:
            delivery_id = new_id("whd")
            body = json.dumps(
                {"id": delivery_id, "type": event_type, "created_at": created_at, "data": data},
                separators=(",", ":"),
                sort_keys=True,
            )
            rows.append(
                {
                    "id": delivery_id,
                    "workspace_id": workspace_id,
                    "webhook_id": webhook_id,
                    "event_type": event_type,
                    "payload": body,
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "last_status_code": None,
                    "last_error": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    await conn.execute(insert(webhook_deliveries), rows)
    after_commit(conn, _Queued.more)
    return len(rows)


# -- the sender ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: str
    webhook_id: str
    event_type: str
    payload: str
    attempts: int  # before this attempt
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class _Outcome:
    delivery: _Claimed
    status_code: int | None
    error: str | None  # short, for people; never the URL, body or secret

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    """Sends due webhook deliveries: one background loop per process, woken after enqueue."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        client: httpx.AsyncClient | None = None,
        max_attempts: int = 10,
        base_delay: float = 1.0,
        max_delay: float = 3600.0,
        timeout: float = 10.0,
        concurrency: int = 16,
        random: Random | None = None,
        batch_size: int = 100,
    ) -> None:
        if max_attempts < 1 or concurrency < 1 or batch_size < 1:
            raise ValueError("max_attempts, concurrency and batch_size must be at least 1")
        if base_delay <= 0 or max_delay < base_delay or timeout <= 0:
            raise ValueError("need 0 < base_delay <= max_delay and timeout > 0")
        self.db = db
        self.clock = clock
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self.concurrency = concurrency
        self.batch_size = batch_size
        self._client = client
        self._owns_client = client is None
        self._random = random or Random()
        self._semaphore = asyncio.Semaphore(concurrency)
        self._in_flight: set[str] = set()
        self._loop = Loop("webhook delivery", self._pass)
        self._seen = -1  # _Queued.count at the last wake

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop(grace=self.timeout + _LEASE_MARGIN)
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def wake(self, force: bool = False) -> None:
        """Something was committed: look for deliveries now if this process queued any
        since the last look, or if another process woke us (`force`); deliveries queued
        elsewhere without a wake are found within _MAX_IDLE."""
        if force or _Queued.count != self._seen:
            self._seen = _Queued.count
            self._loop.wake()

    async def deliver_due(self) -> int:
        """One pass: claim due deliveries, POST them, record the outcomes; returns how many were tried."""
        claimed = await _to_the_end(self._claim())
        if not claimed:
            return 0
        self._in_flight.update(c.id for c in claimed)
        try:
            outcomes = await asyncio.gather(*(self._send(c) for c in claimed))
            await _to_the_end(self._record(outcomes))
        finally:
            self._in_flight.difference_update(c.id for c in claimed)
        return len(claimed)

    # -- internals -----------------------------------------------------------------------

    async def _pass(self) -> float:
        try:
            attempted = await self.deliver_due()
        except Exception:
            self._seen = -1  # the next wake tries again, whatever was queued
            raise
        if attempted >= self.batch_size:
            return 0  # probably more due
        delay = await _to_the_end(self._seconds_until_next_due())
        return max(delay, 0.05) if attempted == 0 else delay  # due but claimed elsewhere: do not spin

    async def _seconds_until_next_due(self) -> float:
        d = webhook_deliveries.c
        async with self.db.transaction() as conn:
            nxt = (
                await conn.execute(select(func.min(d.next_attempt_at)).where(d.status == DeliveryStatus.PENDING.value))
            ).scalar()
        if nxt is None:
            return _MAX_IDLE
        return max(0.0, min(_MAX_IDLE, (nxt - self.clock.now()).total_seconds()))

    def _lease(self, count: int) -> timedelta:
        # Sends wait for a slot, so the last of a batch may start ceil(count/concurrency)-1
        # timeouts late; the lease covers the whole batch so no claim expires while queued here.
        return timedelta(seconds=self.timeout * math.ceil(count / self.concurrency) + _LEASE_MARGIN)

    async def _claim(self) -> list[_Claimed]:
        d = webhook_deliveries.c
        now = self.clock.now()
        async with self.db.transaction() as conn:
            rows = (
                await conn.execute(
                    select(d.id, d.workspace_id, d.webhook_id, d.event_type, d.payload, d.attempts)
                    .where(d.status == DeliveryStatus.PENDING.value, d.next_attempt_at <= now)
                    .order_by(d.next_attempt_at)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer anyway
                )
            ).all()
            rows = [row for row in rows if row.id not in self._in_flight]
            if not rows:
                return []
            hooks = {
                hook.id: hook
                for hook in (
                    await conn.execute(
                        select(webhooks.c.id, webhooks.c.workspace_id, webhooks.c.url, webhooks.c.secret).where(
                            webhooks.c.id.in_({row.webhook_id for row in rows})
                        )
                    )
                ).all()
            }
            claimed: list[_Claimed] = []
            orphans: dict[str, set[str]] = {}
            for row in rows:
                hook = hooks.get(row.webhook_id)
                if hook is None or hook.workspace_id != row.workspace_id:
                    orphans.setdefault(row.workspace_id, set()).add(row.webhook_id)
                    continue
                claimed.append(
                    _Claimed(row.id, row.webhook_id, row.event_type, row.payload, row.attempts, hook.url, hook.secret)
                )
            for workspace_id, webhook_ids in orphans.items():
                await _fail_orphans(conn, workspace_id, sorted(webhook_ids), now)
            if claimed:
                await conn.execute(
                    update(webhook_deliveries)
                    .where(d.id.in_([c.id for c in claimed]))
                    .values(next_attempt_at=now + self._lease(len(claimed)), updated_at=now)
                )
        return claimed

    async def _send(self, delivery: _Claimed) -> _Outcome:
        async with self._semaphore:
            body = delivery.payload.encode()
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(delivery.secret, int(self.clock.now().timestamp()), body),
                "Empathic-Event": delivery.event_type,
                "Empathic-Delivery": delivery.id,
                "User-Agent": USER_AGENT,
            }
            try:
                # httpx's timeout is per read/write; this bounds the whole exchange, which
                # the claim's lease relies on. The answer's body is never read.
                async with asyncio.timeout(self.timeout):
                    async with self._http().stream(
                        "POST", delivery.url, content=body, headers=headers, timeout=self.timeout
                    ) as response:
                        code = response.status_code
            except (TimeoutError, httpx.TimeoutException):
                return _Outcome(delivery, None, f"timeout after {self.timeout:g}s")
            except httpx.HTTPError as exc:
                return _Outcome(delivery, None, type(exc).__name__)
            except Exception as exc:  # e.g. httpx.InvalidURL; a bad endpoint must not stop the batch
                log.warning("webhook delivery %s could not be sent: %s", delivery.id, type(exc).__name__)
                return _Outcome(delivery, None, type(exc).__name__)
            return _Outcome(delivery, code, None if 200 <= code < 300 else f"HTTP {code}")

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    def _retry_delay(self, attempts: int) -> float:
        """Seconds before retry number `attempts` (1 after the first failure), jittered 50-100 %."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(attempts - 1, 64))
        return self._random.uniform(0.5 * ceiling, ceiling)

    async def _record(self, outcomes: Iterable[_Outcome]) -> None:
        now = self.clock.now()
        params = []
        for outcome in outcomes:
            c = outcome.delivery
            attempts = c.attempts + 1
            next_at: datetime | None = None
            if outcome.ok:
                status = DeliveryStatus.DELIVERED
            elif outcome.status_code == 410 or attempts >= self.max_attempts:
                status = DeliveryStatus.FAILED
            else:
                status = DeliveryStatus.PENDING
                next_at = now + timedelta(seconds=self._retry_delay(attempts))
            # Routine successes at debug; retries at info; giving up is worth a warning.
            level = {
                DeliveryStatus.DELIVERED: logging.DEBUG,
                DeliveryStatus.PENDING: logging.INFO,
                DeliveryStatus.FAILED: logging.WARNING,
            }[status]
            log.log(
                level,
                "webhook delivery %s (%s, webhook %s) attempt %d: %s -> %s",
                c.id,
                c.event_type,
                c.webhook_id,
                attempts,
                outcome.status_code if outcome.error is None else outcome.error,
                status.value,
            )
            params.append(
                {
                    "b_id": c.id,
                    "b_claimed_attempts": c.attempts,
                    "b_status": status.value,
                    "b_attempts": attempts,
                    "b_code": outcome.status_code,
                    "b_error": outcome.error,
                    "b_next": next_at,
                    "b_now": now,
                }
            )
        d = webhook_deliveries.c
        # Only if still ours: not failed by a delete meanwhile, nor re-claimed after a lapsed lease.
        statement = (
            update(webhook_deliveries)
            .where(
                d.id == bindparam("b_id"),
                d.status == DeliveryStatus.PENDING.value,
                d.attempts == bindparam("b_claimed_attempts"),
            )
            .values(
                status=bindparam("b_status"),
                attempts=bindparam("b_attempts"),
                last_status_code=bindparam("b_code"),
                last_error=bindparam("b_error"),
                next_attempt_at=bindparam("b_next", type_=Instant()),
                updated_at=bindparam("b_now", type_=Instant()),
            )
        )
        async with self.db.transaction() as conn:
            await conn.execute(statement, params)


# -- helpers ------------------------------------------------------------------------------


async def _to_the_end(step: Coroutine[Any, Any, T]) -> T:
    """Run a database step to completion even if our task is cancelled (by `stop()`) meanwhile.

    Cancelling a task inside an open SQLite transaction abandons the connection with its
    write lock still held, and every later transaction then fails with "database is locked".
    So a cancel waits for the step's commit or rollback, then takes effect.
    """
    task = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None:
            log.warning("webhook database step failed while stopping", exc_info=task.exception())
        raise


async def _fail_orphans(conn: AsyncConnection, workspace_id: str, webhook_ids: list[str], now: datetime) -> None:
    d = webhook_deliveries.c
    await conn.execute(
        update(webhook_deliveries)
        .where(
            d.workspace_id == workspace_id,
            d.webhook_id.in_(webhook_ids),
            d.status == DeliveryStatus.PENDING.value,
        )
        .values(status=DeliveryStatus.FAILED.value, last_error="webhook deleted", next_attempt_at=None, updated_at=now)
    )


def _check_url(url: object) -> None:
    if not isinstance(url, str) or not url:
        raise WebhookInputError("url", "url is required: an http:// or https:// address")
    if len(url) > _MAX_URL:
        raise WebhookInputError("url", f"url is longer than {_MAX_URL} characters")
    if any(ch.isspace() for ch in url):
        raise WebhookInputError("url", "url must not contain spaces")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError as exc:
        raise WebhookInputError("url", f"url is not a valid address: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        got = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise WebhookInputError("url", f"url must start with http:// or https:// (got {got})")
    if not parts.hostname:
        raise WebhookInputError("url", "url has no host name")


def _check_events(events: object) -> list[str]:
    valid = ", ".join(sorted(WEBHOOK_EVENTS))
    if isinstance(events, str) or not isinstance(events, (list, tuple, set, frozenset)):
        raise WebhookInputError("events", f"events must be a list of event names; valid events are {valid}")
    unknown = sorted({repr(e) for e in events if not isinstance(e, str) or e not in WEBHOOK_EVENTS})
    if unknown:
        raise WebhookInputError("events", f"unknown webhook events: {', '.join(unknown)}; valid events are {valid}")
    if not events:
        raise WebhookInputError("events", f"a webhook needs at least one event; valid events are {valid}")
    return sorted(set(events))


def _webhook_out(row: RowMapping) -> Json:
    return {
        "id": row["id"],
        "url": row["url"],
        "events": list(row["events"]),
        "created_at": row["created_at"].isoformat(),
    }


def _to_ms(at: datetime) -> datetime:
    """`at` cut to the millisecond the database keeps, so what we return is what we stored."""
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
