"""Recording what happens to messages: status changes with their history and webhooks.

The one place a message's status changes. Each change updates the row, appends to its
history and queues `message.status` webhooks, all in the caller's transaction.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Protocol

from prometheus_client import Counter as Metric
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.json import Json
from empathic.engine import fallback_timer, webhooks
from empathic.store import messages as store
from empathic.store.messages import Transition
from empathic.store.records import NewMessage

# Counted when recorded in a transaction that may still roll back: a rare over-count on
# error, fine for rates and alerts (the database is the source of truth for exact figures).
MESSAGE_STATUS = Metric("empathic_message_status", "Messages entering each status", ["direction", "status"])


def _count(entered: Iterable[tuple[str, str]]) -> None:
    for (direction, status), n in Counter(entered).items():  # a label lookup per status, not per message
        MESSAGE_STATUS.labels(direction, status).inc(n)


def _status_payload(message_id: str, contact_id: str | None, to: str, status: str, reason: str | None, at: datetime) -> Json:
    return {
        "message_id": message_id,
        "contact_id": contact_id,
        "to": to,
        "status": status,
        "reason": reason,
        "at": at.isoformat(),
    }


async def record_new(conn: AsyncConnection, rows: Sequence[NewMessage], reason: str, now: datetime) -> None:
    await store.insert_many(conn, rows, reason)
    _count((r.direction, r.status) for r in rows)
    by_workspace: dict[str, list[NewMessage]] = defaultdict(list)
    for r in rows:
        if r.direction == "outbound":
            by_workspace[r.workspace_id].append(r)
    for workspace_id, group in by_workspace.items():
        await webhooks.enqueue(conn, workspace_id, "message.status", partial(_new_payloads, group, reason, now), now)


class Addressed(Protocol):
    """What a status webhook says of a message besides its change (a MessageRow or a Claimed)."""

    @property
    def contact_id(self) -> str | None: ...

    @property
    def to_addr(self) -> str: ...


async def record(
    conn: AsyncConnection, transitions: Sequence[Transition], rows: Mapping[str, Addressed], now: datetime
) -> None:
    """Apply transitions; `rows` holds the current message rows by id (for webhook payloads)."""
    await store.apply_transitions(conn, transitions)
    await fallback_timer.on_status(conn, transitions, now)  # a text that failed for good may go by email
    _count(("outbound", t.status.value) for t in transitions)
    by_workspace: dict[str, list[Transition]] = defaultdict(list)
    for t in transitions:
        by_workspace[t.workspace_id].append(t)
    for workspace_id, group in by_workspace.items():
        await webhooks.enqueue(conn, workspace_id, "message.status", partial(_payloads, group, rows), now)


# Made only when a webhook takes `message.status` (webhooks.enqueue): most workspaces have none.
def _new_payloads(rows: list[NewMessage], reason: str, now: datetime) -> list[Json]:
    return [_status_payload(r.id, r.contact_id, r.to_addr, r.status, r.reason or reason, now) for r in rows]


def _payloads(transitions: list[Transition], rows: Mapping[str, Addressed]) -> list[Json]:
    return [
        _status_payload(t.message_id, rows[t.message_id].contact_id, rows[t.message_id].to_addr,
                        t.status.value, t.reason, t.at)
        for t in transitions
    ]
