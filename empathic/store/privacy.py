"""Privacy: everything held about a person, erasing it, retention.

Erasure removes the contact and every row about them. What stays is one row on the
workspace's suppression list (store.suppressions) when they had opted out: an HMAC of the
number under the workspace's secret salt with the opt-outs they had. If the number comes
back (a new order, a new contact), those opt-outs are written to its new ledger at once, so
an erased opted-out number is never texted again, yet the person can still opt back in by
texting START.

Retention redacts message bodies older than a workspace's retention. A redacted marketing
body keeps its content key (a digest), so the same content still never goes twice.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.json import Json
from empathic.core.messages import FINAL, Status
from empathic.core.policy import content_key
from empathic.store import consent as consent_store
from empathic.store import contacts as contacts_store
from empathic.store import fallbacks as fallback_store
from empathic.store import messages as messages_store
from empathic.store import readings as readings_store
from empathic.store import suppressions as suppression_store
from empathic.store.schema import (
    carrier_ids,
    consent_ledger,
    contacts,
    events,
    flow_runs,
    message_events,
    message_keys,
    message_outcomes,
    message_readings,
    messages,
    preferences,
    thread_notes,
    thread_reads,
    threads,
    timers,
    workspaces,
)

REDACTED = ""
_CHUNK = 500


class MessageInFlight(Exception):
    """A message to the contact is being handed to a carrier right now; erase after it settles."""


async def link_key(conn: AsyncConnection, workspace_id: str) -> bytes:
    """The key signing the workspace's preference links (derived from its salt, not the salt)."""
    return hmac.new((await suppression_store.salt(conn, workspace_id)).encode(), b"preference-link", hashlib.sha256).digest()


async def export(conn: AsyncConnection, workspace_id: str, contact_id: str) -> dict[str, Any] | None:
    """Everything held about one contact, as JSON-ready data."""
    contact = await contacts_store.get(conn, workspace_id, contact_id)
    if contact is None:
        return None
    own = await _message_ids(conn, workspace_id, contact_id)
    history: dict[str, list[messages_store.MessageEvent]] = {mid: [] for mid in own}
    for start in range(0, len(own), _CHUNK):
        rows = await conn.execute(
            select(message_events).where(message_events.c.message_id.in_(own[start : start + _CHUNK])).order_by(message_events.c.id)
        )
        for r in rows.mappings():
            history[r["message_id"]].append(messages_store.MessageEvent(r["status"], r["reason"], r["at"], r["until"]))
    understood = await readings_store.of_messages(conn, workspace_id, own)
    message_rows = await messages_store.read(conn, own)
    pref = (
        await conn.execute(
            select(preferences.c.data).where(preferences.c.workspace_id == workspace_id, preferences.c.contact_id == contact_id)
        )
    ).scalar()
    thread_rows = (await conn.execute(
        select(threads).where(threads.c.workspace_id == workspace_id, threads.c.contact_id == contact_id)
    )).mappings().all()
    note_rows = await conn.execute(
        select(thread_notes).where(thread_notes.c.thread_id.in_([t["id"] for t in thread_rows])).order_by(thread_notes.c.id)
    )
    notes: dict[str, list[Json]] = {}
    for n in note_rows.mappings():
        notes.setdefault(n["thread_id"], []).append(
            {"author_id": n["author_id"], "body": n["body"], "created_at": n["created_at"].isoformat()}
        )
    event_rows = await conn.execute(
        select(events).where(events.c.workspace_id == workspace_id, events.c.contact_id == contact_id).order_by(events.c.id)
    )
    run_rows = await conn.execute(
        select(flow_runs).where(flow_runs.c.workspace_id == workspace_id, flow_runs.c.contact_id == contact_id).order_by(flow_runs.c.id)
    )
    planned = await fallback_store.of_messages(conn, own)
    return {
        "contact": contacts_store.to_view(contact),
        "preferences": pref,
        "consent_history": await consent_store.history(conn, workspace_id, contact_id),
        "messages": [
            messages_store.to_view(row, history[row.id]) for row in sorted(message_rows, key=lambda r: r.id)
        ],
        "readings": [  # what was understood of each text they sent
            {"message_id": mid, **readings_store.to_view(understood[mid])} for mid in sorted(understood)
        ],
        "email_fallbacks": [  # the email a text would become if it failed for good, or became
            {"message_id": f["message_id"], "email_id": f["email_id"], "subject": f["subject"], "body": f["body"],
             "html": f["html"], "created_at": f["created_at"].isoformat()}
            for f in sorted(planned.values(), key=lambda f: f["message_id"])
        ],
        "threads": [
            {"id": t["id"], "status": t["status"], "note": t["note"], "opened_at": t["opened_at"].isoformat(),
             "updated_at": t["updated_at"].isoformat(), "notes": notes.get(t["id"], [])}
            for t in thread_rows
        ],
        "events": [
            {"id": e["id"], "type": e["type"], "data": e["data"], "created_at": e["created_at"].isoformat()}
            for e in event_rows.mappings()
        ],
        "flow_runs": [
            {"id": r["id"], "flow": r["flow"], "status": r["status"], "outcome": r["outcome"],
             "vars": r["state"].get("vars", {}), "last_reply": r["state"].get("reply"),
             "created_at": r["created_at"].isoformat(), "ended_at": r["ended_at"].isoformat() if r["ended_at"] else None}
            for r in run_rows.mappings()
        ],
    }


async def erase(conn: AsyncConnection, workspace_id: str, contact_id: str, now: datetime) -> bool:
    """Delete the contact and every row about them; suppress the number if they had opted out."""
    contact = await contacts_store.get(conn, workspace_id, contact_id)
    if contact is None:
        return False
    # Lock the contact's messages first, in id order: receipts and timers lock a message
    # before its timers, so taking them in the same order cannot deadlock with them.
    own_rows = (
        await conn.execute(
            select(messages.c.id, messages.c.status, messages.c.idempotency_key, messages.c.channel, messages.c.carrier_id)
            .where(messages.c.workspace_id == workspace_id, messages.c.contact_id == contact_id)
            .order_by(messages.c.id)
            .with_for_update()
        )
    ).all()
    in_flight = next((mid for mid, status, *_ in own_rows if status == Status.SENDING.value), None)
    if in_flight is not None:
        raise MessageInFlight(in_flight)
    if contact.phone:
        await suppression_store.suppress(conn, workspace_id, contact_id, contact.phone, now)
    own = [mid for mid, *_ in own_rows]
    for start in range(0, len(own), _CHUNK):
        chunk = own[start : start + _CHUNK]
        await conn.execute(delete(message_events).where(message_events.c.message_id.in_(chunk)))
        await conn.execute(delete(message_readings).where(message_readings.c.message_id.in_(chunk)))
        await conn.execute(delete(message_outcomes).where(message_outcomes.c.message_id.in_(chunk)))
        await conn.execute(delete(timers).where(timers.c.ref.in_(chunk)))
        await conn.execute(delete(messages).where(messages.c.id.in_(chunk)))
    await forget_keys(conn, workspace_id, [(key, channel, cid) for _, _, key, channel, cid in own_rows])
    await fallback_store.forget(conn, own)
    run_ids = [
        r for (r,) in await conn.execute(
            select(flow_runs.c.id).where(flow_runs.c.workspace_id == workspace_id, flow_runs.c.contact_id == contact_id)
        )
    ]
    for start in range(0, len(run_ids), _CHUNK):  # their waits and calls, then the runs (vars, replies)
        await conn.execute(delete(timers).where(timers.c.ref.in_(run_ids[start : start + _CHUNK])))
    thread_ids = [t for (t,) in await conn.execute(
        select(threads.c.id).where(threads.c.workspace_id == workspace_id, threads.c.contact_id == contact_id)
    )]
    await conn.execute(delete(thread_notes).where(thread_notes.c.thread_id.in_(thread_ids)))  # may name them
    await conn.execute(delete(thread_reads).where(thread_reads.c.thread_id.in_(thread_ids)))
    for table in (events, threads, consent_ledger, preferences, flow_runs):
        await conn.execute(delete(table).where(table.c.workspace_id == workspace_id, table.c.contact_id == contact_id))
    await conn.execute(delete(contacts).where(contacts.c.workspace_id == workspace_id, contacts.c.id == contact_id))
    return True


async def forget_keys(
    conn: AsyncConnection, workspace_id: str, held: list[tuple[str | None, str | None, str | None]]
) -> None:
    """Free the idempotency keys and carrier ids of deleted messages, as (key, channel,
    carrier id): a key sent again makes a new message."""
    keys = sorted({key for key, _, _ in held if key})
    for start in range(0, len(keys), _CHUNK):
        await conn.execute(delete(message_keys).where(
            message_keys.c.workspace_id == workspace_id, message_keys.c.idempotency_key.in_(keys[start : start + _CHUNK])
        ))
    by_channel: dict[str, list[str]] = {}
    for _, channel, cid in held:
        if channel and cid:
            by_channel.setdefault(channel, []).append(cid)
    for channel, ids in by_channel.items():
        for start in range(0, len(ids), _CHUNK):
            await conn.execute(delete(carrier_ids).where(
                carrier_ids.c.channel == channel, carrier_ids.c.carrier_id.in_(ids[start : start + _CHUNK])
            ))


async def _message_ids(conn: AsyncConnection, workspace_id: str, contact_id: str) -> list[str]:
    rows = await conn.execute(
        select(messages.c.id).where(messages.c.workspace_id == workspace_id, messages.c.contact_id == contact_id)
    )
    return [r[0] for r in rows]


async def redact_older_than(
    conn: AsyncConnection, cutoff: datetime, now: datetime, *, limit: int = 1000,
    digest_topics: frozenset[str] = frozenset(),
) -> int:
    """Redact up to `limit` settled message bodies created before `cutoff`; returns how many.

    Bodies of `digest_topics` (marketing) keep their content key so de-duplication still
    holds; every other body is emptied.
    """
    final = [s.value for s in FINAL]
    rows = (
        await conn.execute(
            select(messages.c.id, messages.c.topic, messages.c.body)
            .where(
                messages.c.redacted_at.is_(None),
                messages.c.created_at < cutoff,
                messages.c.status.in_(final + [Status.SENT.value]),
            )
            .limit(limit)
        )
    ).all()
    if rows:
        await conn.execute(
            update(messages).where(messages.c.id == bindparam("b_id")).values(
                body=bindparam("b_body"), subject=None, html=None, redacted_at=now
            ),
            [{"b_id": mid, "b_body": content_key(body) if topic in digest_topics else REDACTED} for mid, topic, body in rows],
        )
    return len(rows)
