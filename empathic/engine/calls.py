"""A flow's `call` step: the HTTP request to the business's system, made outside any transaction.

The run asks for the call by writing a `flow.call` timer in the transaction that moved it. This
loop leases due calls (pushes the timer past the request's time-out, so a process that dies
mid-call leaves it to be made again), makes them concurrently, and feeds each answer to its run
in a transaction that also removes the timer. Calls are therefore at least once: each carries
`Idempotency-Key: <run id>:<seq>` so the business's system can recognise a repeat.

2xx: success, the JSON answer is the data (else its text). 408, 429, 5xx, a time-out or a
connection error: retried with backoff (1 s, 2 s, 4 s … up to 60 s) up to `retries` times. Any
other status fails at once. A failure goes to the step's `on_failure`, or fails the run.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from collections.abc import Callable

import httpx

from empathic.core.clock import Clock
from empathic.engine.runs import CALL, UNREADABLE_RETRY, Flows
from empathic.flows.interpreter import CallResult
from empathic.flows.model import JsonValue
from empathic.loop import Loop
from empathic.store import timers
from empathic.store.db import Database

log = logging.getLogger(__name__)

BATCH = 50
RETRYABLE = frozenset({408, 425, 429})
USER_AGENT = "Empathic-Flows/1"


class FlowCalls:
    def __init__(
        self, db: Database, clock: Clock, flows: Flows, *, on_commit: Callable[[], None] | None = None, client: httpx.AsyncClient | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self.flows = flows
        self._client = client
        self._own_client = client is None
        self._on_commit = on_commit or (lambda: None)
        self._loop = Loop("flow-calls", self._pass)

    def wake(self) -> None:
        self._loop.wake()

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": USER_AGENT})
        return self._client

    async def _pass(self) -> float:
        if await self.call_due():
            return 0.0
        async with self.db.transaction() as conn:
            nxt = await timers.next_due(conn, kinds=(CALL,))
        if nxt is None:
            return 1.0
        return min(1.0, max(0.01, (nxt - self.clock.now()).total_seconds()))

    async def call_due(self) -> int:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            leased = await timers.lease_due(conn, CALL, now, BATCH, timedelta(seconds=90))
        if not leased:
            return 0
        async with self.db.transaction() as conn:  # a newer release's runs: not called, asked again later
            if held := await self.flows.unreadable(conn, [t.ref for _, t in leased]):
                for timer_id, timer in leased:
                    if timer.ref in held:
                        await timers.postpone(conn, timer_id, now + UNREADABLE_RETRY, timer.payload)
                leased = [(i, t) for i, t in leased if t.ref not in held]
        answers = await asyncio.gather(*(self._call(t) for _, t in leased))
        for (timer_id, timer), (ok, data, error, retry) in zip(leased, answers, strict=True):
            payload = timer.payload
            async with self.db.transaction() as conn:
                now = self.clock.now()
                if not ok and retry and payload["attempts"] < payload["retries"]:
                    delay = min(60.0, 2.0 ** payload["attempts"])
                    await timers.postpone(conn, timer_id, now + timedelta(seconds=delay),
                                          {**payload, "attempts": payload["attempts"] + 1, "last_error": error})
                    continue
                if not await timers.take(conn, timer_id):
                    continue  # another process answered it
                await self.flows.call_done(conn, timer.ref, CallResult(payload["seq"], ok, data, error), now)
        self._on_commit()
        return len(leased)

    async def _call(self, timer: timers.Timer) -> tuple[bool, JsonValue, str | None, bool]:
        """(ok, data, error, retryable)"""
        p = timer.payload
        headers = {**p.get("headers", {}), "Idempotency-Key": f"{timer.ref}:{p['seq']}"}
        try:
            response = await self._http().request(
                p["method"], p["url"], headers=headers, json=p.get("body") if p["method"] != "GET" else None,
                timeout=p["timeout"],
            )
        except httpx.HTTPError as exc:
            return False, None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, True
        if 200 <= response.status_code < 300:
            try:
                data: JsonValue = response.json()
            except ValueError:
                data = response.text
            return True, data, None, False
        retry = response.status_code in RETRYABLE or response.status_code >= 500
        return False, None, f"HTTP {response.status_code}", retry
