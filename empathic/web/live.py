"""Live updates for open pages: a server-sent event stream per signed-in person (`GET /live`).

The API and the workers may be separate processes on one database (`empathic serve --role
api` and `--role worker`), so the stream reads the database, not this process's memory:
about once a second it asks for what changed in the person's workspace since its cursor
(message history rows after the last one seen, by id; threads whose last activity is at or
after the last one seen), a bounded page each time (`BATCH`). Events, as JSON in `data`:

    event: message   {"id": "msg_…", "contact_id": "ct_…" | null, "thread_id": "th_…" | null,
                      "direction": "inbound" | "outbound", "status": "received" | "queued" | …}
                     a message was stored or changed status (one event per change; thread_id:
                     the contact's inbox thread, if they have one)
    event: thread    {"id": "th_…", "status": "open" | "closed", "assigned_to": "usr_…" | null}
                     a thread opened, got a text, a reply or a note, was assigned or closed

Each event's `id` is the stream's cursor: a browser that reconnects sends it back
(`Last-Event-ID`) and misses nothing the database still shows in order. A comment line
(`: keep-alive`) goes every `HEARTBEAT` seconds so proxies keep the connection; the stream
ends when the browser goes. A history row committed later than one with a higher id (two
transactions racing) may be passed over: pages re-read what they show on every event, so
the next one brings it. `static/live.js` is the browser's side: `Empathic.live(handler)`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.json import Json
from empathic.engine.runtime import runtime_of
from empathic.store.schema import EPOCH, message_events, messages, threads, to_millis
from empathic.web.auth import Person, signed_in

router = APIRouter(include_in_schema=False)
POLL = 1.0  # seconds between two looks at the database
HEARTBEAT = 15.0  # seconds of silence before a keep-alive comment
BATCH = 200  # rows of each kind read per look at most


@dataclass(slots=True)
class Cursor:
    """How far a stream has shown its workspace: the last history row, the last thread
    activity (and the threads shown at that very millisecond, not to show them twice)."""

    event_id: int
    thread_at: int  # epoch ms
    seen_at_mark: set[str] = field(default_factory=set)

    def __str__(self) -> str:
        return f"{self.event_id}.{self.thread_at}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        event_id, _, thread_at = (text or "").partition(".")
        if not (event_id.isdigit() and thread_at.isdigit() and len(event_id) < 19 and len(thread_at) < 16):
            return None
        return cls(int(event_id), int(thread_at))


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # message | thread
    data: Json

    def encode(self, cursor: Cursor) -> bytes:
        return f"id: {cursor}\nevent: {self.kind}\ndata: {json.dumps(self.data)}\n\n".encode()


async def start(conn: AsyncConnection, workspace_id: str, now: datetime) -> Cursor:
    """A new stream starts from now: only what happens next is sent."""
    last = (await conn.execute(
        select(func.max(message_events.c.id)).where(message_events.c.workspace_id == workspace_id)
    )).scalar()
    return Cursor(int(last or 0), to_millis(now) or 0)


async def changes(conn: AsyncConnection, workspace_id: str, cursor: Cursor) -> list[Event]:
    """What changed in the workspace after `cursor` (which moves past it)."""
    e, m = message_events.c, messages.c
    rows = (await conn.execute(
        select(e.id, e.message_id, e.status, m.contact_id, m.direction)
        .join(messages, m.id == e.message_id)
        .where(e.workspace_id == workspace_id, e.id > cursor.event_id)
        .order_by(e.id)
        .limit(BATCH)
    )).all()
    contact_ids = {r.contact_id for r in rows if r.contact_id}
    thread_of: dict[str, str] = {}
    if contact_ids:
        found = await conn.execute(
            select(threads.c.contact_id, threads.c.id)
            .where(threads.c.workspace_id == workspace_id, threads.c.contact_id.in_(sorted(contact_ids)))
        )
        thread_of = {contact_id: thread_id for contact_id, thread_id in found.all()}
    events = [
        Event("message", {"id": r.message_id, "contact_id": r.contact_id, "thread_id": thread_of.get(r.contact_id or ""),
                          "direction": r.direction, "status": r.status})
        for r in rows
    ]
    if rows:
        cursor.event_id = rows[-1].id
    t = threads.c
    moved = (await conn.execute(
        select(t.id, t.status, t.assigned_to, t.updated_at)
        .where(t.workspace_id == workspace_id, t.updated_at >= EPOCH + timedelta(milliseconds=cursor.thread_at))
        .order_by(t.updated_at, t.id)
        .limit(BATCH)
    )).all()
    for r in moved:
        at = to_millis(r.updated_at) or 0
        if at == cursor.thread_at and r.id in cursor.seen_at_mark:
            continue
        if at > cursor.thread_at:
            cursor.thread_at, cursor.seen_at_mark = at, set()
        cursor.seen_at_mark.add(r.id)
        events.append(Event("thread", {"id": r.id, "status": r.status, "assigned_to": r.assigned_to}))
    return events


@router.get("/live")
async def live(request: Request, person: Annotated[Person, Depends(signed_in)]) -> StreamingResponse:
    """The person's workspace's changes as server-sent events (see the module's docstring)."""
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        cursor = Cursor.parse(request.headers.get("last-event-id")) or await start(conn, person.workspace_id, rt.now())

    async def stream() -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        quiet_since = time.monotonic()
        while not await request.is_disconnected():
            async with rt.db.transaction() as conn:
                events = await changes(conn, person.workspace_id, cursor)
            for event in events:
                yield event.encode(cursor)
            if events:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= HEARTBEAT:
                yield b": keep-alive\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(POLL)

    return StreamingResponse(
        stream(), media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
