"""/v1/inbox: replies no keyword handled, by thread; a person answers or closes a thread."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.api import paging
from empathic.api.auth import workspace
from empathic.api.fields import DIGITS, NOT_BLANK
from empathic.api.messages import RULES
from empathic.engine.runtime import runtime_of
from empathic.api.problems import Problem, beyond_schema
from empathic.core.json import Json
from empathic.engine.outbox import MessageRequest
from empathic.store import contacts as contact_store
from empathic.store import messages as message_store
from empathic.store import threads as store

router = APIRouter(prefix="/v1/inbox", tags=["inbox"])
Workspace = Annotated[str, Depends(workspace)]


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=5000, pattern=NOT_BLANK)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


async def _thread(conn: AsyncConnection, ws: str, thread_id: str) -> store.Thread:
    thread = await store.get(conn, ws, thread_id)
    if thread is None:
        raise Problem(404, f"No inbox thread {thread_id!r} in this workspace.")
    return thread


@router.get("")
async def list_threads(
    request: Request,
    ws: Workspace,
    status: store.ThreadStatus | None = "open",
    limit: Annotated[int, Field(ge=1, le=200), DIGITS] = 50,
    cursor: str | None = None,
) -> Json:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        rows = await store.page(conn, ws, status=status, limit=paging.fetch(limit), cursor=cursor)
        page = paging.Page.of(rows, limit, lambda t: t.id)
        views = []
        for t in page.rows:
            contact = await contact_store.get(conn, ws, t.contact_id)
            last = await message_store.get(conn, ws, t.last_message_id) if t.last_message_id else None
            views.append(store.to_view(t, contact, last))
    return page.to_json(views)


@router.get("/{thread_id}")
async def get_thread(thread_id: str, request: Request, ws: Workspace) -> Json:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        thread = await _thread(conn, ws, thread_id)
        contact = await contact_store.get(conn, ws, thread.contact_id)
        transcript = await message_store.thread(conn, ws, thread.contact_id)
    view = store.to_view(thread, contact, transcript[-1] if transcript else None)
    view["messages"] = [message_store.to_view(m) for m in transcript]
    return view


@router.post("/{thread_id}/messages", status_code=202, responses=beyond_schema({"body": RULES["body"]}))
async def reply(thread_id: str, payload: ReplyIn, request: Request, ws: Workspace) -> Json:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        thread = await _thread(conn, ws, thread_id)
        contact = await contact_store.get(conn, ws, thread.contact_id)
        if contact is None or not contact.phone:
            raise Problem(409, "This thread's contact has no phone number to answer.")
        answered = await message_store.last_inbound_id(conn, ws, contact.id)
        request_ = MessageRequest(
            contact.phone, payload.body, "conversational", payload.idempotency_key, in_reply_to=answered
        )
        (row,) = await rt.acceptance.submit(conn, ws, [request_], rt.now())
    rt.committed()
    return message_store.to_view(row)


@router.post("/{thread_id}/close")
async def close(thread_id: str, request: Request, ws: Workspace) -> Json:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        thread = await _thread(conn, ws, thread_id)
        await rt.flows.close_thread(conn, ws, thread, rt.now())
        thread = await _thread(conn, ws, thread_id)
    rt.flows_moved()
    return store.to_view(thread, None, None)
