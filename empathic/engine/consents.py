"""Recording a consent change: one ledger row, and a `contact.opted_out` webhook for a revocation.

Every way a person's choice arrives (keywords, the API, the preference page, understood
replies) records it here, in the caller's transaction, so the change and its notification
commit together and the next gate decision sees it. Marketing subscriptions by keyword or
API are double opt-in: `request_subscription` records the request and asks for a yes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.consent import ConsentAction
from empathic.core.topics import COMPLIANCE_TOPIC
from empathic.engine import outbox, webhooks
from empathic.engine.project import SenderSettings
from empathic.store import consent as consent_store
from empathic.store.contacts import Contact


async def record(
    conn: AsyncConnection,
    workspace_id: str,
    contact: Contact,
    *,
    topic: str,
    action: ConsentAction,
    source: str,
    actor: str,
    evidence: str | None,
    now: datetime,
    channel: str = "sms",
    message_id: str | None = None,
) -> None:
    await consent_store.append(
        conn, workspace_id, contact.id, topic=topic, channel=channel, action=action,
        source=source, actor=actor, evidence=evidence, at=now,
    )
    if action is ConsentAction.REVOKED:
        await webhooks.enqueue(
            conn, workspace_id, "contact.opted_out",
            [{"contact_id": contact.id, "phone": contact.phone, "topic": topic, "channel": channel,
              "source": source, "message_id": message_id, "at": now.isoformat()}],
            now,
        )


REQUEST_TEMPLATE = "consent.subscribe_request"  # marks the texts that ask for a yes
REQUEST_VALID = timedelta(hours=48)  # a yes later than this no longer counts


async def request_subscription(
    conn: AsyncConnection,
    workspace_id: str,
    contact: Contact,
    topic: str,
    *,
    source: str,
    actor: str,
    evidence: str | None,
    now: datetime,
    sender: SenderSettings,
    acceptance: outbox.Acceptance,
) -> str | None:
    """Double opt-in, step one: record the request and text the person asking for a yes.

    Returns the request text's message id (None when the contact has no number to text).
    The grant is recorded only when they answer yes (engine.inbound).
    """
    await consent_store.append(
        conn, workspace_id, contact.id, topic=topic, channel="sms", action=ConsentAction.REQUESTED,
        source=source, actor=actor, evidence=evidence, at=now,
    )
    if not contact.phone or not contact.phone.startswith("+"):
        return None
    body = sender.subscribe_request_text.format(sender=sender.name, topic=topic)
    request = outbox.MessageRequest(
        to=contact.phone, body=body, topic=COMPLIANCE_TOPIC, template=REQUEST_TEMPLATE,
        idempotency_key=f"subscribe:{contact.id}:{topic}:{int(now.timestamp() * 1000)}",
    )
    return (await acceptance.submit(conn, workspace_id, [request], now))[0].id
