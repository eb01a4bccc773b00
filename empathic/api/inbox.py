"""/v1/inbox: replies no keyword handled, by thread; a person answers, assigns, notes or closes.

    GET  /v1/inbox                      threads by last activity: ?status=open|closed|any
                                        (open), ?assigned_to=<user id>|none, ?q=<number or
                                        name>, each with why it is there and the reader's
                                        unread count (a signed-in person, or ?reader=<user id>)
    GET  /v1/inbox/{id}                 the thread with its messages
    GET  /v1/inbox/{id}/timeline        every message (SMS and email) with what was heard in
                                        it, each policy decision and delivery status, and notes
    POST /v1/inbox/{id}/preview         what a reply would be: characters, encoding, segments,
                                        and the policy gate's answer now (nothing stored)
    POST /v1/inbox/{id}/messages        reply (an idempotency key sends it once)
    POST /v1/inbox/{id}/notes           an internal note, never sent
    POST /v1/inbox/{id}/assign          {"user_id": …} or null: to nobody
    POST /v1/inbox/{id}/close           the flow that handed it over goes on or ends
"""

from __future__ import annotations

from typing import Annotated, Literal
from weakref import WeakKeyDictionary

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.api import paging
from empathic.api.auth import workspace
from empathic.api.fields import DIGITS, NOT_BLANK
from empathic.api.messages import RULES
from empathic.api.problems import Problem, beyond_schema
from empathic.core import policy, sms
from empathic.core.errors import InputError
from empathic.core.json import Json
from empathic.engine import inbox
from empathic.engine.gate import Gate
from empathic.engine.runtime import Runtime, runtime_of
from empathic.store import contacts as contact_store
from empathic.store import messages as message_store
from empathic.store import threads as store
from empathic.store.records import Claimed, NewMessage

router = APIRouter(prefix="/v1/inbox", tags=["inbox"])
Workspace = Annotated[str, Depends(workspace)]


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=5000, pattern=NOT_BLANK)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(max_length=5000)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=5000, pattern=NOT_BLANK)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str | None = Field(min_length=1, max_length=40)


async def _thread(conn: AsyncConnection, ws: str, thread_id: str) -> store.Thread:
    thread = await store.get(conn, ws, thread_id)
    if thread is None:
        raise Problem(404, f"No inbox thread {thread_id!r} in this workspace.")
    return thread


def _reader(request: Request, given: str | None) -> str | None:
    """Who is reading (unread counts) or writing (a note's author): the signed-in person whose
    session cookie came (api.auth sets `request.state.user_id`), else the user the caller names."""
    user_id = getattr(request.state, "user_id", None)
    return user_id if isinstance(user_id, str) else given


@router.get("")
async def list_threads(
    request: Request,
    ws: Workspace,
    status: store.ThreadStatus | Literal["any"] = "open",
    assigned_to: Annotated[str | None, Field(min_length=1, max_length=40)] = None,
    q: Annotated[str | None, Field(max_length=200)] = None,
    reader: Annotated[str | None, Field(min_length=1, max_length=40)] = None,
    limit: Annotated[int, Field(ge=1, le=200), DIGITS] = 50,
    cursor: Annotated[str | None, Field(pattern=r"^[0-9]{1,13}\.[A-Za-z0-9_]{1,40}$")] = None,
) -> Json:
    rt = runtime_of(request)
    reader = _reader(request, reader)
    async with rt.db.transaction() as conn:
        rows = await store.page(
            conn, ws, status=None if status == "any" else status, limit=paging.fetch(limit), cursor=cursor,
            assigned_to=store.UNASSIGNED if assigned_to == "none" else assigned_to, q=q,
            default_region=rt.acceptance.default_region,
        )
        page = paging.Page.of(rows, limit, lambda t: str(store.Cursor.of(t)))
        views = await list_views(conn, ws, page.rows, reader)
    return page.to_json(views)


async def list_views(conn: AsyncConnection, ws: str, found: list[store.Thread], reader: str | None) -> list[Json]:
    """The threads as the list shows them: contact, last message, why, assignee, unread."""
    people = await contact_store.by_ids(conn, ws, [t.contact_id for t in found])
    why = await store.why(conn, found)
    assignees = await store.members(conn, ws, [t.assigned_to for t in found])
    unread = await store.unread(conn, ws, reader, found) if reader else {}
    last = {m.id: m for m in await message_store.read(conn, [t.last_message_id for t in found if t.last_message_id])
            if m.workspace_id == ws}
    return [
        store.to_view(
            t, people.get(t.contact_id), last.get(t.last_message_id or ""), why=why[t.id], unread=unread.get(t.id),
            assignee=assignees.get(t.assigned_to or ""),
        )
        for t in found
    ]


@router.get("/{thread_id}")
async def get_thread(thread_id: str, request: Request, ws: Workspace) -> Json:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        thread = await _thread(conn, ws, thread_id)
        contact = await contact_store.get(conn, ws, thread.contact_id)
        transcript = await message_store.thread(conn, ws, thread.contact_id)
        why = (await store.why(conn, [thread]))[thread.id]
        assignee = (await store.members(conn, ws, [thread.assigned_to])).get(thread.assigned_to or "")
    view = store.to_view(thread, contact, transcript[-1] if transcript else None, why=why, assignee=assignee)
    view["messages"] = [message_store.to_view(m) for m in transcript]
    return view


@router.get("/{thread_id}/timeline")
async def timeline(thread_id: str, request: Request, ws: Workspace) -> Json:
    """The thread as a person reads it (a signed-in person has now read it: their unread count
    starts again from here)."""
    rt = runtime_of(request)
    reader = _reader(request, None)
    async with rt.db.transaction() as conn:
        thread = await _thread(conn, ws, thread_id)
        if reader is not None:
            await store.mark_read(conn, thread.id, reader, rt.now())
        contact = await contact_store.get(conn, ws, thread.contact_id)
        entries = await store.timeline(conn, ws, thread)
        authors = await store.members(conn, ws, [e.note.author_id for e in entries if e.note])
    view = store.timeline_view(entries, authors, contact.timezone if contact else None)
    view["thread_id"] = thread.id
    view["status"] = thread.status
    return view


@router.post("/{thread_id}/preview")
async def preview(thread_id: str, payload: PreviewIn, request: Request, ws: Workspace) -> Json:
    """What a reply with this body would be, counted as the server counts it, and what the
    policy gate would answer if it were sent now. Nothing is stored."""
    rt = runtime_of(request)
    count = sms.count(payload.body)
    async with rt.db.transaction() as conn:
        thread = await _thread(conn, ws, thread_id)
        contact = await contact_store.get(conn, ws, thread.contact_id)
        if contact is None or not contact.phone:
            gate: Json = {"decision": "block", "reason": "no_phone", "why": "The contact has no phone number to text.",
                          "until": None}
        else:
            answered = await message_store.last_inbound_id(conn, ws, contact.id)
            candidate = Claimed(
                id="preview", workspace_id=ws, contact_id=contact.id, to_addr=contact.phone, from_addr=None,
                body=payload.body or " ", subject=None, html=None, topic=inbox.REPLY_TOPIC, priority=0, attempts=0,
                channel=None, valid_until=None, in_reply_to=answered,
            )
            (decision,) = await gate_of(rt).decide(conn, [candidate], rt.now())
            gate = decision_view(decision)
    too_long = count.segments > rt.acceptance.max_segments
    return {
        "characters": len(payload.body),
        "encoding": count.encoding.value,
        "segments": count.segments,
        "units": count.units,
        "unit_limit": count.unit_limit,
        "max_segments": rt.acceptance.max_segments,
        "too_long": too_long,
        "gate": gate,
    }


def decision_view(decision: policy.Decision) -> Json:
    if isinstance(decision, policy.Defer):
        return {"decision": "defer", "reason": decision.reason, "why": policy.REASONS.get(decision.reason),
                "until": decision.until.isoformat()}
    if isinstance(decision, policy.Block):
        return {"decision": "block", "reason": decision.reason, "why": policy.REASONS.get(decision.reason),
                "until": None}
    return {"decision": "send", "reason": None, "why": None, "until": None}


_GATES: WeakKeyDictionary[Runtime, Gate] = WeakKeyDictionary()


def gate_of(rt: Runtime) -> Gate:
    """The policy gate the runtime's dispatchers decide with (a runtime without one: its own,
    made the same way)."""
    if rt not in _GATES:
        dispatcher = next(iter(rt.dispatchers.values()), None)
        _GATES[rt] = dispatcher.gate if dispatcher is not None else Gate(rt.project.topics, rt.project.regulations)
    return _GATES[rt]


@router.post("/{thread_id}/messages", status_code=202, responses=beyond_schema({"body": RULES["body"]}))
async def reply(thread_id: str, payload: ReplyIn, request: Request, ws: Workspace) -> Json:
    """Answer the contact; the same idempotency key sends once, even twice at the same time."""
    rt = runtime_of(request)
    try:
        row = await _reply(rt, ws, thread_id, payload)
    except IntegrityError:  # the same key at once: the second finds the first's message now
        row = await _reply(rt, ws, thread_id, payload)
    rt.committed()
    return message_store.to_view(row)


async def _reply(rt: Runtime, ws: str, thread_id: str, payload: ReplyIn) -> NewMessage:
    async with rt.db.transaction() as conn:
        thread = await _thread(conn, ws, thread_id)
        contact = await contact_store.get(conn, ws, thread.contact_id)
        if contact is None or not contact.phone:
            raise Problem(409, "This thread's contact has no phone number to answer.")
        row = await inbox.answer(conn, rt.acceptance, thread, contact.phone, payload.body, payload.idempotency_key, rt.now())
    return row


@router.post("/{thread_id}/notes", status_code=201)
async def add_note(thread_id: str, payload: NoteIn, request: Request, ws: Workspace) -> Json:
    """An internal note: the team sees it in the timeline; it is never sent."""
    rt = runtime_of(request)
    author = _reader(request, None)
    async with rt.db.transaction() as conn:
        thread = await _thread(conn, ws, thread_id)
        note = await store.add_note(conn, ws, thread.id, author, payload.body, rt.now())
        await store.touch(conn, thread.id, rt.now())
        writer = (await store.members(conn, ws, [author])).get(author or "")
    return store.note_view(note, writer)


@router.post("/{thread_id}/assign", responses=beyond_schema({"user_id": "an agent or admin of this workspace"}))
async def assign(thread_id: str, payload: AssignIn, request: Request, ws: Workspace) -> Json:
    """Give the thread to a user of this workspace (an agent or admin), or to nobody (null)."""
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        thread = await _thread(conn, ws, thread_id)
        member = None
        if payload.user_id is not None:
            member = next((m for m in await store.team(conn, ws) if m.id == payload.user_id), None)
            if member is None:
                raise InputError("user_id", "is not an agent or admin of this workspace")
        await store.assign(conn, thread.id, payload.user_id, rt.now())
        thread = await _thread(conn, ws, thread_id)
    return store.to_view(thread, None, None, assignee=member)


@router.post("/{thread_id}/close")
async def close(thread_id: str, request: Request, ws: Workspace) -> Json:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        thread = await _thread(conn, ws, thread_id)
        await rt.flows.close_thread(conn, ws, thread, rt.now())
        thread = await _thread(conn, ws, thread_id)
        assignee = (await store.members(conn, ws, [thread.assigned_to])).get(thread.assigned_to or "")
    rt.flows_moved()
    return store.to_view(thread, None, None, assignee=assignee)
