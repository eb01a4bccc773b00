"""Recording what happens to messages: status changes with their history and webhooks.

The one place a message's status changes. Each change updates the row, appends to its
history and queues `message.status` webhooks, all in the caller's transaction.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import Counter as Metric
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.engine import fallback, webhooks
from empathic.store import messages as store
from empathic.store.messages import Transition

# Counted when recorded in a transaction that may still roll back: a rare over-count on
# error, fine for rates and alerts (the database is the source of truth for exact figures).
MESSAGE_STATUS = Metric("empathic_message_status", "Messages entering each status", ["direction", "status"])


def _count(entered: Iterable[tuple[str, str]]) -> None:
    for (direction, status), n in Counter(entered).items():  # a label lookup per status, not per message
        MESSAGE_STATUS.labels(direction, status).inc(n)


def _status_payload(message_id: str, contact_id: str | None, to: str, status: str, reason: str | None, at: datetime) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "contact_id": contact_id,
        "to": to,
        "status": status,
        "reason": reason,
        "at": at.isoformat(),
    }


async def record_new(conn: AsyncConnection, rows: Sequence[dict[str, Any]], reason: str, now: datetime) -> None:
    await store.insert_many(conn, rows, reason)
    _count((r["direction"], r["status"]) for r in rows)
    by_workspace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["direction"] == "outbound":
            by_workspace[r["workspace_id"]].append(
                _status_payload(r["id"], r["contact_id"], r["to_addr"], r["status"], r["reason"] or reason, now)
            )
    for workspace_id, payloads in by_workspace.items():
        await webhooks.enqueue(conn, workspace_id, "message.status", payloads, now)


async def record(
    conn: AsyncConnection, transitions: Sequence[Transition], rows: dict[str, dict[str, Any]], now: datetime
) -> None:
    """Apply transitions; `rows` holds the current message rows by id (for webhook payloads)."""
    await store.apply_transitions(conn, transitions)
    await fallback.on_status(conn, transitions, now)  # a text that failed for good may go by email
    _count(("outbound", t.status.value) for t in transitions)
    by_workspace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in transitions:
        row = rows[t.message_id]
        by_workspace[t.workspace_id].append(
            _status_payload(t.message_id, row["contact_id"], row["to_addr"], t.status.value, t.reason, t.at)
        )
    for workspace_id, payloads in by_workspace.items():
        await webhooks.enqueue(conn, workspace_id, "message.status", payloads, now)
