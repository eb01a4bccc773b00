"""/v1/messages: send one or a batch, read one with its history, list with filters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from empathic.api import paging
from empathic.api.auth import workspace
from empathic.api.fields import DIGITS, NOT_BLANK, Instant, Region
from empathic.api.problems import Problem, beyond_schema
from empathic.core.messages import Direction, Status
from empathic.engine.outbox import MessageRequest
from empathic.engine.runtime import runtime_of
from empathic.store import fallbacks
from empathic.store import messages as store

router = APIRouter(prefix="/v1/messages", tags=["messages"])

MAX_BATCH = 1000


class SendMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(max_length=254, examples=["+14155550100"], description="a phone number, or an email address")
    body: str = Field(max_length=5000, pattern=NOT_BLANK, description="the text (an email's plain-text part)")
    subject: str | None = Field(None, max_length=998, description="email only, required there")
    html: str | None = Field(None, max_length=200_000, description="email only: the HTML alternative")
    topic: str = Field("transactional", max_length=64, json_schema_extra={"x-topics": "all"})
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    region: Region | None = Field(None, description="ISO region for national numbers")
    valid_until: Instant | None = Field(
        None, description="After this instant (with offset) the message is worthless: it becomes `expired`, never sent late."
    )

    def request(self) -> MessageRequest:
        return MessageRequest(
            self.to, self.body, self.topic, self.idempotency_key, self.region, valid_until=self.valid_until,
            subject=self.subject, html=self.html,
        )


class SendBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: list[SendMessage] = Field(min_length=1, max_length=MAX_BATCH)


Workspace = Annotated[str, Depends(workspace)]


# What the schema cannot say about a message: kept in the document as the 422's rules.
RULES = {
    "to": "a phone number libphonenumber accepts (E.164, or national with `region`) or an email address, "
          "that a declared channel serves",
    "body": "at most 10 SMS segments (GSM-7 or UCS-2, counted after encoding)",
    "subject": "an email needs one, of one line; a text has none",
    "html": "an email's only",
}


@router.post("", status_code=202, responses=beyond_schema(RULES))
async def send(payload: SendMessage, request: Request, ws: Workspace) -> dict[str, Any]:
    (row,) = await runtime_of(request).outbox.submit(ws, [payload.request()])
    return store.to_view(row)


@router.post("/batch", status_code=202, responses=beyond_schema(
    {f"messages[].{field}": rule for field, rule in RULES.items()}
    | {"messages[].topic": "a one-time code (`otp` topic) is sent alone, never in a batch"}))
async def send_batch(payload: SendBatch, request: Request, ws: Workspace) -> dict[str, Any]:
    rows = await runtime_of(request).outbox.submit(ws, [m.request() for m in payload.messages], numbered=True)
    return {"messages": [store.to_view(r) for r in rows]}


@router.get("/{message_id}")
async def get_message(message_id: str, request: Request, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        row = await store.get(conn, ws, message_id)
        if row is None:
            raise Problem(404, f"No message {message_id!r} in this workspace.")
        events = await store.history(conn, message_id)
        link = await fallbacks.link(conn, ws, message_id) or {}
    # A text that failed for good names the email it became, and that email names the text.
    return {**store.to_view(row, events), "fallback": link.get("fallback"), "fallback_of": link.get("fallback_of")}


@router.get("")
async def list_messages(
    request: Request,
    ws: Workspace,
    contact_id: str | None = None,
    status: Status | None = None,
    direction: Direction | None = None,
    since: Instant | None = Query(None, description="ISO 8601 instant with offset"),
    limit: Annotated[int, Field(ge=1, le=500), DIGITS] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        rows = await store.page(
            conn, ws, limit=paging.fetch(limit), cursor=cursor, contact_id=contact_id,
            status=status.value if status else None, direction=direction.value if direction else None, since=since,
        )
    page = paging.Page.of(rows, limit, lambda m: m.id)
    return page.to_json([store.to_view(m) for m in page.rows])
