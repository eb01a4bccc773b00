"""Email fallback of texts: when a text that may fall back fails for good, one email goes.

A trigger or a flow step that sends a text the topic (`[fallback]` in empathic.toml) or the
step (`fallback: email`) allows to fall back writes, with the text, the email it would
become (`remember`). When the text then becomes `failed`, or `undelivered` by a carrier's
receipt, engine.fallback_timer (called by engine.lifecycle for every status change, in the
same transaction) schedules a `message.fallback` timer; the scheduler fires it and
`EmailFallback.fire` writes the email through the outbox, to the contact's address at that
moment, under the idempotency key `<text id>:fallback`. A crash before the commit loses
nothing (the status change and the timer commit together); a timer that fires twice finds
the email sent (the link is recorded, and the key would return the same email), so there
is never a second one. The email passes the policy gate on its own channel: email consent,
marketing consent and the person's channel preference apply to it.

`expired`, `blocked`, `unknown` and retried (`deferred`) texts never fall back: the text
may still arrive, or the person's own choices hold it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.emails import InvalidEmail, normalize_email
from empathic.core.fallback import PERMANENT_FAILURES
from empathic.core.messages import Status
from empathic.core.routing import NoRoute
from empathic.core.templates import Email
from empathic.engine import outbox
from empathic.store import contacts as contact_store
from empathic.store import fallbacks as store
from empathic.store import messages as message_store
from empathic.store import timers
from empathic.store.records import MessageRow, NewMessage

log = logging.getLogger(__name__)

_ANY_ADDRESS = "anyone@example.com"  # routing an email looks at its topic, not at the address


def usable_email(contact: contact_store.Contact) -> str | None:
    """The contact's email address if one can be sent to (an address stored by an older
    client may not be), normalised."""
    address = contact.email
    if not address:
        return None
    try:
        return normalize_email(address)
    except InvalidEmail:
        return None


def can_email(router: outbox.Router | None, topic: str) -> bool:
    """Whether a declared channel (smtp) carries email of this topic."""
    if router is None:
        return False
    try:
        router.route(router.destination(_ANY_ADDRESS, topic), None)
    except NoRoute:
        return False
    return True


async def remember(
    conn: AsyncConnection, workspace_id: str, texts: Sequence[tuple[NewMessage, Email, str]], now: datetime
) -> None:
    """Record the email each text becomes if it fails for good: (text row, email, reason),
    reason `topic` (the project's `[fallback]`) or `send` (the flow step said so)."""
    await store.add(conn, [
        {"message_id": row.id, "workspace_id": workspace_id, "reason": reason, "subject": email.subject,
         "body": email.text, "html": email.html, "created_at": now}
        for row, email, reason in texts
    ])


class EmailFallback:
    """Sends the fallback emails when their timers fire (the scheduler calls `fire`)."""

    def __init__(self, topics: frozenset[str], acceptance: outbox.Acceptance) -> None:
        self.topics = topics  # the project's `[fallback]` topics
        self.acceptance = acceptance

    async def fire(self, conn: AsyncConnection, due: list[timers.Timer], now: datetime) -> int:
        """Write the email of each due text that still has reason to fall back; returns how many."""
        plans = await store.of_messages(conn, [t.ref for t in due])
        waiting = [text_id for text_id, plan in plans.items() if plan["email_id"] is None]  # not sent before
        texts = {r.id: r for r in await message_store.read(conn, waiting)}
        people: dict[str, contact_store.Contact] = {}  # contact id -> contact, read per workspace in one query
        for workspace_id in {t.workspace_id for t in texts.values()}:
            ids = [t.contact_id for t in texts.values() if t.workspace_id == workspace_id and t.contact_id]
            people.update(await contact_store.by_ids(conn, workspace_id, ids))
        written = 0
        for text_id, text in texts.items():  # each text once, however many of its timers are due
            plan = plans[text_id]
            why_not, address = self._why_not(text, plan), None
            if why_not is None and text.contact_id is not None:  # it has one, or why_not says so
                contact = people.get(text.contact_id)
                address = usable_email(contact) if contact else None
            if why_not is not None or address is None:
                log.info("text %s failed (%s); no email fallback: %s", text_id, text.status,
                         why_not or "the contact has no usable email address")
                continue
            assert text.topic is not None  # a text we sent
            request = outbox.MessageRequest(
                to=address, body=plan["body"], topic=text.topic, idempotency_key=f"{text_id}:fallback",
                template=text.template, event_id=text.event_id, valid_until=text.valid_until,
                in_reply_to=text.in_reply_to, subject=plan["subject"], html=plan["html"],
                contact_id=text.contact_id, flow=text.flow, trigger=text.trigger,  # counted where the text was
            )
            try:
                (email,) = await self.acceptance.submit(conn, text.workspace_id, [request], now)
            except outbox.SubmitError as exc:
                log.warning("text %s failed; its email fallback cannot be sent: %s", text_id, exc)
                continue
            await store.sent(conn, text_id, email.id)
            written += 1
        return written

    def _why_not(self, text: MessageRow, plan: dict[str, Any]) -> str | None:
        if Status(text.status) not in PERMANENT_FAILURES:  # a late receipt said delivered after all
            return f"it is {text.status} now"
        if plan["reason"] == "topic" and text.topic not in self.topics:
            return f"topic {text.topic!r} no longer falls back to email"
        if text.contact_id is None:
            return "it has no contact"
        return None
