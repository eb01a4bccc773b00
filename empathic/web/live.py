"""Live updates for open pages: a server-sent event stream per signed-in person (`GET /live`).

The API and the workers may be separate processes on one database (`empathic serve --role
api` and `--role worker`), so the streams read the database, not this process's memory. One
poller per workspace with open streams in this process (`Hub`) asks, about once a second
while someone listens, what changed since its cursor (message history rows after the last one
seen, by id; threads after the last activity seen, by (updated_at, id)), a bounded page each
time (`BATCH`), and hands each stream the same events. Events, as JSON in `data`:

    event: message   {"id": "msg_…", "contact_id": "ct_…" | null, "thread_id": "th_…" | null,
                      "direction": "inbound" | "outbound", "status": "received" | "queued" | …}
                     a message was stored or changed status (one event per change; thread_id:
                     the contact's inbox thread, if they have one)
    event: thread    {"id": "th_…", "status": "open" | "closed", "assigned_to": "usr_…" | null}
                     a thread opened, got a text, a reply or a note, was assigned or closed

Each event's `id` is the stream's cursor: a browser that reconnects sends it back
(`Last-Event-ID`) and is first sent what changed since (one page). A comment line
(`: keep-alive`) goes every `HEARTBEAT` seconds so proxies keep the connection; the stream
ends when the browser goes. A history row committed later than one with a higher id (two
transactions racing) may be passed over: pages re-read what they show on every event, so
the next one brings it. `static/live.js` is the browser's side: `Empathic.live(handler)`.

The poll is a `Database.transaction()`: store/db.py has no read-only path, so on SQLite each
look takes this process's write turn; one look per workspace (not per tab) keeps that small.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated
from weakref import WeakKeyDictionary

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.json import Json
from empathic.engine.runtime import Runtime, runtime_of
from empathic.store import messages as message_store
from empathic.store.schema import EPOCH, message_events, threads, to_millis
from empathic.web.auth import Person, SessionWatch, signed_in

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)
POLL = 1.0  # seconds between two looks at the database
HEARTBEAT = 15.0  # seconds of silence before a keep-alive comment
BATCH = 200  # rows of each kind read per look at most
BACKLOG = 1000  # events waiting for a slow stream at most (more are dropped: pages re-read anyway)
_THREAD_ID = re.compile(r"[A-Za-z0-9_]{1,40}")


@dataclass(slots=True)
class Cursor:
    """How far a stream has shown its workspace: the last history row, and the last thread
    activity shown (threads go by (updated_at, id): many at one millisecond pass in turn)."""

    event_id: int
    thread_at: int  # epoch ms
    thread_id: str = ""  # the last thread shown at `thread_at` ("": none yet)

    def __str__(self) -> str:
        return f"{self.event_id}.{self.thread_at}.{self.thread_id}" if self.thread_id else f"{self.event_id}.{self.thread_at}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        event_id, _, rest = (text or "").partition(".")
        thread_at, _, thread_id = rest.partition(".")
        if not (event_id.isdigit() and thread_at.isdigit() and len(event_id) < 19 and len(thread_at) < 16):
            return None
        if thread_id and not _THREAD_ID.fullmatch(thread_id):
            return None
        return cls(int(event_id), int(thread_at), thread_id)


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
    """What changed in the workspace after `cursor` (which moves past it once all is read)."""
    e = message_events.c
    rows = (await conn.execute(
        select(e.id, e.message_id, e.status)
        .where(e.workspace_id == workspace_id, e.id > cursor.event_id)
        .order_by(e.id)
        .limit(BATCH)
    )).all()
    # The messages by id (their partitions, on PostgreSQL), not by a join across all of them.
    stored = {m.id: m for m in await message_store.read(conn, sorted({r.message_id for r in rows}))
              if m.workspace_id == workspace_id}
    contact_ids = {m.contact_id for m in stored.values() if m.contact_id}
    thread_of: dict[str, str] = {}
    if contact_ids:
        found = await conn.execute(
            select(threads.c.contact_id, threads.c.id)
            .where(threads.c.workspace_id == workspace_id, threads.c.contact_id.in_(sorted(contact_ids)))
        )
        thread_of = {contact_id: thread_id for contact_id, thread_id in found.all()}
    events = []
    for r in rows:
        if (m := stored.get(r.message_id)) is not None:
            events.append(Event("message", {"id": m.id, "contact_id": m.contact_id,
                                            "thread_id": thread_of.get(m.contact_id or ""),
                                            "direction": m.direction, "status": r.status}))
    t = threads.c
    at = EPOCH + timedelta(milliseconds=cursor.thread_at)
    moved = (await conn.execute(
        select(t.id, t.status, t.assigned_to, t.updated_at)
        .where(t.workspace_id == workspace_id,
               or_(t.updated_at > at, and_(t.updated_at == at, t.id > cursor.thread_id)))
        .order_by(t.updated_at, t.id)
        .limit(BATCH)
    )).all()
    events += [Event("thread", {"id": r.id, "status": r.status, "assigned_to": r.assigned_to}) for r in moved]
    if rows:
        cursor.event_id = rows[-1].id
    if moved:
        cursor.thread_at, cursor.thread_id = to_millis(moved[-1].updated_at) or 0, moved[-1].id
    return events


# -- one poller per workspace --------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Room:
    """A workspace's streams in this process and the one poller reading for them all."""

    cursor: Cursor
    listeners: set[asyncio.Queue[bytes]] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    busy: bool = False  # in a transaction now (not to be cancelled)


class Hub:
    """The rooms of one runtime: a workspace is polled while some stream of it is open."""

    def __init__(self) -> None:
        self.rooms: dict[str, Room] = {}

    async def join(self, rt: Runtime, workspace_id: str, since: Cursor | None) -> asyncio.Queue[bytes]:
        """A new stream's queue of encoded events; `since` (a reconnecting browser's cursor):
        what changed after it comes first."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(BACKLOG)
        room = self.rooms.get(workspace_id)
        if room is None:
            async with rt.db.transaction() as conn:
                cursor = await start(conn, workspace_id, rt.now())
            room = self.rooms.get(workspace_id)  # another stream may have opened it meanwhile
            if room is None:
                room = self.rooms[workspace_id] = Room(cursor)
                room.task = asyncio.create_task(self._poll(rt, workspace_id, room), name=f"live {workspace_id}")
        room.listeners.add(queue)
        if since is not None:  # joined first: what the room reads from now on is not missed
            try:
                async with rt.db.transaction() as conn:
                    missed = await changes(conn, workspace_id, since)
            except BaseException:
                self.leave(workspace_id, queue)
                raise
            _hand(queue, missed, since)
        return queue

    def leave(self, workspace_id: str, queue: asyncio.Queue[bytes]) -> None:
        room = self.rooms.get(workspace_id)
        if room is None:
            return
        room.listeners.discard(queue)
        if not room.listeners:
            del self.rooms[workspace_id]
            if not room.busy and room.task is not None:
                room.task.cancel()  # asleep: no transaction is cut (a busy one ends by itself)

    async def _poll(self, rt: Runtime, workspace_id: str, room: Room) -> None:
        while True:
            await asyncio.sleep(POLL)
            if not room.listeners:
                return
            room.busy = True
            try:
                async with rt.db.transaction() as conn:
                    events = await changes(conn, workspace_id, room.cursor)
            except Exception:  # the database out of reach a moment: the next look tries again
                log.warning("live updates of %s could not be read", workspace_id, exc_info=True)
                events = []
            finally:
                room.busy = False
            for queue in list(room.listeners):
                _hand(queue, events, room.cursor)


def _hand(queue: asyncio.Queue[bytes], events: list[Event], cursor: Cursor) -> None:
    for event in events:
        try:
            queue.put_nowait(event.encode(cursor))
        except asyncio.QueueFull:  # a stream that does not keep up misses some: its page re-reads on the next
            return


_HUBS: WeakKeyDictionary[Runtime, Hub] = WeakKeyDictionary()


def hub_of(rt: Runtime) -> Hub:
    """The runtime's streams (one hub per runtime: a test's runtimes are apart)."""
    if rt not in _HUBS:
        _HUBS[rt] = Hub()
    return _HUBS[rt]


@router.get("/live")
async def live(request: Request, person: Annotated[Person, Depends(signed_in)]) -> StreamingResponse:
    """The person's workspace's changes as server-sent events (see the module's docstring)."""
    rt, ws = runtime_of(request), person.workspace_id
    since = Cursor.parse(request.headers.get("last-event-id"))

    async def stream() -> AsyncIterator[bytes]:
        hub = hub_of(rt)
        queue = await hub.join(rt, ws, since)  # before the first line: what happens after it is sent
        try:
            yield b"retry: 2000\n\n"
            quiet_since = time.monotonic()
            session = SessionWatch(request, person)  # signed out, disabled, expired: the stream ends
            while not await request.is_disconnected() and await session.holds():
                try:
                    chunk = await asyncio.wait_for(queue.get(), POLL)
                except TimeoutError:
                    if time.monotonic() - quiet_since >= HEARTBEAT:
                        yield b": keep-alive\n\n"
                        quiet_since = time.monotonic()
                    continue
                yield chunk
                quiet_since = time.monotonic()
        finally:
            hub.leave(ws, queue)

    return StreamingResponse(
        stream(), media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
