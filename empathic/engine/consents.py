"""Recording a consent change: one ledger row, and a `contact.opted_out` webhook for a revocation.

Every way a person's choice arrives (keywords, the API, the preference page, understood
replies) records it here, in the caller's transaction, so the change and its notification
commit together and the next gate decision sees it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.consent import ConsentAction
from empathic.engine import webhooks
from empathic.store import consent as consent_store


async def record(
    conn: AsyncConnection,
    workspace_id: str,
    contact: dict[str, Any],
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
        conn, workspace_id, contact["id"], topic=topic, channel=channel, action=action,
        source=source, actor=actor, evidence=evidence, at=now,
    )
    if action is ConsentAction.REVOKED:
        await webhooks.enqueue(
            conn, workspace_id, "contact.opted_out",
            [{"contact_id": contact["id"], "phone": contact.get("phone"), "topic": topic, "channel": channel,
              "source": source, "message_id": message_id, "at": now.isoformat()}],
            now,
        )
