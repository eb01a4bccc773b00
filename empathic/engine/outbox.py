"""Accepting messages to send: validate, de-duplicate, attach the contact, queue durably.

`submit` is the one way a message enters the outbox, whether it comes from the API, a
trigger, a keyword reply or a person in the inbox. It validates everything before it
writes anything, so a bad item in a batch stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core import sms
from empathic.core.ids import new_id
from empathic.core.messages import Direction, Status
from empathic.core.phones import InvalidPhoneNumber, normalize
from empathic.core.topics import Topics, UnknownTopic
from empathic.engine import lifecycle
from empathic.store import contacts as contact_store
from empathic.store import messages as store


@dataclass(frozen=True, slots=True)
class MessageRequest:
    to: str
    body: str
    topic: str = "transactional"
    idempotency_key: str | None = None
    region: str | None = None
    template: str | None = None
    event_id: str | None = None


class SubmitError(ValueError):
    """A message that cannot be accepted: which item, which field, and why."""

    def __init__(self, field: str, detail: str, index: int | None = None) -> None:
        where = field if index is None else f"messages[{index}].{field}"
        super().__init__(f"{where}: {detail}")
        self.field = where
        self.detail = detail


@dataclass(frozen=True)
class OutboxRules:
    topics: Topics
    sender: str
    default_region: str | None = "US"
    max_segments: int = 10


def _validate(req: MessageRequest, rules: OutboxRules, index: int | None) -> tuple[str, sms.SegmentCount, int]:
    try:
        to = normalize(req.to, req.region or rules.default_region)
    except InvalidPhoneNumber as exc:
        raise SubmitError("to", str(exc), index) from None
    try:
        kind = rules.topics.kind(req.topic)
    except UnknownTopic as exc:
        raise SubmitError("topic", str(exc), index) from None
    if not req.body.strip():
        raise SubmitError("body", "must not be empty", index)
    count = sms.count(req.body)
    if count.segments > rules.max_segments:
        raise SubmitError(
            "body",
            f"is {count.segments} segments ({count.encoding.value}, {count.units} units); "
            f"the limit is {rules.max_segments}",
            index,
        )
    if req.idempotency_key is not None and not 0 < len(req.idempotency_key) <= 200:
        raise SubmitError("idempotency_key", "must be 1 to 200 characters", index)
    return to, count, kind.priority


async def submit(
    conn: AsyncConnection,
    workspace_id: str,
    requests: list[MessageRequest],
    rules: OutboxRules,
    now: datetime,
    *,
    numbered: bool = False,
) -> list[dict[str, Any]]:
    """Queue the requests; returns one message row per request, in order.

    A request whose idempotency key was seen before returns the first message, unchanged.
    """
    checked = [_validate(r, rules, i if numbered else None) for i, r in enumerate(requests)]
    keys = [r.idempotency_key for r in requests if r.idempotency_key]
    existing = await store.by_idempotency_keys(conn, workspace_id, keys) if keys else {}
    fresh_phones = [to for (to, _, _), r in zip(checked, requests) if r.idempotency_key not in existing]
    people = await contact_store.ensure_by_phone(conn, workspace_id, fresh_phones, now) if fresh_phones else {}

    results: list[dict[str, Any]] = []
    new_rows: list[dict[str, Any]] = []
    for req, (to, count, priority) in zip(requests, checked):
        if req.idempotency_key and req.idempotency_key in existing:
            results.append(existing[req.idempotency_key])
            continue
        row = {
            "id": new_id("msg"),
            "workspace_id": workspace_id,
            "direction": Direction.OUTBOUND.value,
            "contact_id": people[to]["id"],
            "to_addr": to,
            "from_addr": rules.sender,
            "body": req.body,
            "topic": req.topic,
            "priority": priority,
            "status": Status.QUEUED.value,
            "reason": "accepted",
            "encoding": count.encoding.value,
            "segments": count.segments,
            "idempotency_key": req.idempotency_key,
            "channel": None,
            "carrier_id": None,
            "attempts": 0,
            "next_attempt_at": None,
            "template": req.template,
            "event_id": req.event_id,
            "created_at": now,
            "updated_at": now,
        }
        if req.idempotency_key:
            existing[req.idempotency_key] = row  # a repeat inside the same batch too
        new_rows.append(row)
        results.append(row)
    await lifecycle.record_new(conn, new_rows, "accepted", now)
    return results
