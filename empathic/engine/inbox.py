"""A person's answer to an inbox thread: one text to the contact, as a reply to their last one
(so quiet hours and caps do not hold it), and the thread's activity moved on. The API's
`POST /v1/inbox/{id}/messages` and the inbox page both answer through here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.engine.outbox import Acceptance, MessageRequest
from empathic.store import messages as message_store
from empathic.store import threads
from empathic.store.records import NewMessage

REPLY_TOPIC = "conversational"  # what a person's answer in the inbox is sent as


async def answer(
    conn: AsyncConnection, acceptance: Acceptance, thread: threads.Thread, phone: str, body: str,
    idempotency_key: str | None, now: datetime,
) -> NewMessage:
    """Write the answer in the caller's transaction (`SubmitError` when it cannot be sent)."""
    answered = await message_store.last_inbound_id(conn, thread.workspace_id, thread.contact_id)
    request = MessageRequest(phone, body, REPLY_TOPIC, idempotency_key, in_reply_to=answered)
    (row,) = await acceptance.submit(conn, thread.workspace_id, [request], now)
    await threads.touch(conn, thread.id, now)
    return row
