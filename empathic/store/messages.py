"""Messages and their status history.

Every status change goes through `apply_transitions`, which updates the row and appends a
`message_events` row in the same transaction, in batches (one statement per shape of change).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, func, literal_column, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import ColumnClause

from empathic.core.json import Json
from empathic.core.messages import Direction, Status
from empathic.core.policy import content_key
from empathic.store import bulk
from empathic.store.paging import newest_first
from empathic.store.records import Claimed, MessageRow, NewMessage
from empathic.store.schema import carrier_ids, message_events, message_keys, messages

_CHUNK = 500
# Written into the SQL, not bound, so the planner can use the partial indexes on them (schema.py).
_QUEUED: ColumnClause[str] = literal_column("'queued'")
_SENT: ColumnClause[str] = literal_column("'sent'")


@dataclass(frozen=True, slots=True)
class Transition:
    message_id: str
    workspace_id: str
    status: Status
    reason: str | None
    at: datetime
    # Other columns to set with the status (carrier_id, channel, attempts, next_attempt_at).
    values: dict[str, Any] = field(default_factory=dict)


async def insert_many(conn: AsyncConnection, rows: Sequence[NewMessage], reason: str) -> None:
    """Insert new messages with the first event of each history (and their idempotency keys
    and carrier ids, which are unique: a repeat fails the transaction with IntegrityError)."""
    if not rows:
        return
    await bulk.insert_records(conn, messages, rows)
    keys = [
        {"workspace_id": r.workspace_id, "idempotency_key": r.idempotency_key, "message_id": r.id}
        for r in rows if r.idempotency_key
    ]
    if keys:
        await bulk.insert_rows(conn, message_keys, keys)
    by_channel: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in rows:
        if r.carrier_id:
            assert r.channel is not None  # a carrier id is its channel's
            by_channel[r.channel].append((r.carrier_id, r.id))
    for channel, held in by_channel.items():
        await hold_carrier_ids(conn, channel, held)
    await bulk.insert_rows(
        conn,
        message_events,
        [
            {
                "workspace_id": r.workspace_id,
                "message_id": r.id,
                "status": r.status,
                "reason": r.reason or reason,
                "at": r.created_at,
            }
            for r in rows
        ],
    )


async def apply_transitions(conn: AsyncConnection, transitions: Sequence[Transition]) -> None:
    if not transitions:
        return
    by_shape: dict[tuple[str, ...], list[Transition]] = defaultdict(list)
    for t in transitions:
        by_shape[tuple(sorted(t.values))].append(t)
    for shape, group in by_shape.items():
        if conn.dialect.name == "postgresql":
            await _update_from_arrays(conn, shape, group)
            continue
        await bulk.update_by_id(
            conn,
            messages,
            ("status", "reason", "updated_at", *shape),
            [(t.status.value, t.reason, t.at, *(t.values[col] for col in shape), t.message_id) for t in group],
        )
    await bulk.insert_rows(
        conn,
        message_events,
        [
            {
                "workspace_id": t.workspace_id,
                "message_id": t.message_id,
                "status": t.status.value,
                "reason": t.reason,
                "at": t.at,
                # a deferral says until when (the gate's answer, or the retry's time)
                "until": t.values.get("next_attempt_at") if t.status is Status.DEFERRED else None,
            }
            for t in transitions
        ],
    )


async def _update_from_arrays(conn: AsyncConnection, shape: tuple[str, ...], group: Sequence[Transition]) -> None:
    """PostgreSQL: one UPDATE for the whole group, its values as arrays joined by id
    (`UPDATE … FROM unnest(…)`). Row by row, each execution on the partitioned table is
    planned or locks every partition (and its indexes) again: that doubled the database's
    CPU per message (docs/scaling.md)."""
    columns = ("id", "status", "reason", "updated_at", *shape)
    values: dict[str, list[Any]] = {
        "id": [t.message_id for t in group],
        "status": [t.status.value for t in group],
        "reason": [t.reason for t in group],
        "updated_at": [t.at for t in group],
        **{col: [t.values[col] for t in group] for col in shape},
    }
    for start in range(0, len(group), _CHUNK):
        arrays = [
            # ids as plain text: the column's collation ("C") is the comparison's
            bindparam(f"a_{col}", values[col][start : start + _CHUNK],
                      type_=ARRAY(String() if col == "id" else messages.c[col].type))
            for col in columns
        ]
        given = func.unnest(*arrays).table_valued(*columns).render_derived(name="given")
        await conn.execute(
            update(messages)
            .where(messages.c.id == given.c.id)
            .values({col: given.c[col] for col in columns if col != "id"})
        )


async def hold_carrier_ids(conn: AsyncConnection, channel: str, held: Iterable[tuple[str, str]]) -> None:
    """Record the ids `channel` gave these messages, as (carrier id, message id), so receipts
    find them (`by_carrier_ids`); an id the channel gave before fails with IntegrityError."""
    rows = [{"channel": channel, "carrier_id": cid, "message_id": mid} for cid, mid in held]
    await bulk.insert_rows(conn, carrier_ids, rows)


async def by_idempotency_keys(conn: AsyncConnection, workspace_id: str, keys: Iterable[str]) -> dict[str, MessageRow]:
    wanted = list(set(keys))
    held: dict[str, str] = {}  # message id -> key
    k = message_keys.c
    for start in range(0, len(wanted), _CHUNK):
        rows = await conn.execute(
            select(k.message_id, k.idempotency_key)
            .where(k.workspace_id == workspace_id, k.idempotency_key.in_(wanted[start : start + _CHUNK]))
        )
        held.update(((mid, other) for mid, other in rows))
    return {held[r.id]: r for r in await read(conn, held)}


async def read(conn: AsyncConnection, ids: Iterable[str]) -> list[MessageRow]:
    """Messages by id, looked up by id alone: on PostgreSQL the id names its partition, where
    a join from a lookup table is planned across them all (a hash join over a month's rows)."""
    wanted = list(ids)
    found: list[MessageRow] = []
    for start in range(0, len(wanted), _CHUNK):
        found += _records(await conn.execute(select(messages).where(messages.c.id.in_(wanted[start : start + _CHUNK]))))
    return found


def _records(result: Result[Any]) -> list[MessageRow]:  # Any: a select(messages) row's column types
    """Whole rows as records, made from their tuples: from RowMappings, 2 µs a row more
    (SQLite, 500 rows: 10.8 µs a row against 13.1, read included)."""
    names = tuple(result.keys())
    return [MessageRow(**dict(zip(names, row))) for row in result.all()]


async def by_carrier_ids(conn: AsyncConnection, channel: str, ids: Iterable[str]) -> dict[str, MessageRow]:
    """The messages `channel` gave these ids, by id."""
    wanted = list(set(ids))
    held: dict[str, str] = {}  # message id -> carrier id
    c = carrier_ids.c
    for start in range(0, len(wanted), _CHUNK):
        rows = await conn.execute(
            select(c.message_id, c.carrier_id).where(c.channel == channel, c.carrier_id.in_(wanted[start : start + _CHUNK]))
        )
        held.update(((mid, other) for mid, other in rows))
    return {held[r.id]: r for r in await read(conn, held)}


_CLAIMED = [messages.c[name] for name in Claimed.__struct_fields__]


async def queued_batch(
    conn: AsyncConnection, limit: int, *, channel: str, max_priority: int | None = None
) -> list[Claimed]:
    """A channel's next queued messages, most urgent topic kind first, oldest first within it
    (only those of priority `max_priority` or more urgent, if given)."""
    query = select(*_CLAIMED).where(messages.c.status == _QUEUED, messages.c.channel == channel)
    if max_priority is not None:
        query = query.where(messages.c.priority <= max_priority)
    query = query.order_by(messages.c.priority, messages.c.id).limit(limit)
    if conn.dialect.name == "postgresql":  # claimers never take the same rows
        query = query.with_for_update(skip_locked=True, of=messages)
    return [Claimed(*r) for r in (await conn.execute(query)).all()]  # tuples: cheaper than mappings


async def claim_marks(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
    """(status, attempts) of these messages, locked to the caller's transaction on
    PostgreSQL: what a batch's outcome may be recorded over (engine.dispatcher)."""
    found: dict[str, tuple[str, int]] = {}
    for start in range(0, len(ids), _CHUNK):
        query = select(messages.c.id, messages.c.status, messages.c.attempts).where(
            messages.c.id.in_(ids[start : start + _CHUNK])
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        found.update({i: (s, a) for i, s, a in (await conn.execute(query)).all()})
    return found


async def sent_before(
    conn: AsyncConnection, cutoff: datetime, limit: int, *, on: str | None = None, not_on: Sequence[str] = ()
) -> list[MessageRow]:
    """Messages `sent` (handed to a carrier) before `cutoff` and not heard of since: those of
    channel `on`, if given (a range of ix_messages_sent_channel), else those of any channel
    not in `not_on` (ix_messages_sent, oldest first)."""
    query = select(messages).where(messages.c.status == _SENT, messages.c.updated_at < cutoff)
    if on is not None:
        query = query.where(messages.c.channel == on)
    elif not_on:
        query = query.where(or_(messages.c.channel.is_(None), messages.c.channel.not_in(not_on)))
    return _records(await conn.execute(query.order_by(messages.c.updated_at).limit(limit)))


@dataclass(frozen=True, slots=True)
class OverdueText:
    """A text `sent` without news (`overdue`): what its carrier is asked by, and the cursor."""

    id: str
    carrier_id: str
    raw_carrier_id: str | None  # the id as the carrier gave it, where carrier_id is another form
    from_addr: str | None
    updated_at: datetime


async def overdue(
    conn: AsyncConnection, channel: str, cutoff: datetime, after: tuple[datetime, str] | None, limit: int
) -> list[OverdueText]:
    """Texts of `channel` `sent` before `cutoff` and not heard of since, in (updated_at, id)
    order, after `after` (a cursor: the last one read). One range of ix_messages_sent_channel:
    the cursor is a row comparison, which the index can seek to (an OR of its halves cannot)."""
    c = messages.c
    query = select(c.id, c.carrier_id, c.raw_carrier_id, c.from_addr, c.updated_at).where(
        c.status == _SENT, c.channel == channel, c.updated_at < cutoff, c.carrier_id.is_not(None)
    )
    if after is not None:
        query = query.where(tuple_(c.updated_at, c.id) > after)
    rows = await conn.execute(query.order_by(c.updated_at, c.id).limit(limit))
    return [OverdueText(*row) for row in rows.all()]


_WAITING = (Status.QUEUED.value, Status.DEFERRED.value)


@dataclass(frozen=True, slots=True)
class WaitingText:
    """A message not yet handed to a channel (`waiting`): what routing it again needs."""

    id: str
    to_addr: str
    topic: str  # outbound: always one
    channel: str | None


async def waiting(
    conn: AsyncConnection, *, on: list[str] | None = None, not_on: list[str] | None = None
) -> list[WaitingText]:
    """Messages still to be handed to a channel (queued or deferred): those routed to a
    channel `on`, or those routed to none or to one not in `not_on`; with what routing needs."""
    query = select(messages.c.id, messages.c.to_addr, messages.c.topic, messages.c.channel).where(
        messages.c.status.in_(_WAITING)
    )
    if on is not None:
        query = query.where(messages.c.channel.in_(on))
    if not_on is not None:
        query = query.where(or_(messages.c.channel.is_(None), messages.c.channel.not_in(not_on)))
    return [WaitingText(*r) for r in (await conn.execute(query)).all()]


async def move_waiting(conn: AsyncConnection, ids: list[str], channel: str, sender: str) -> None:
    """Route these messages, if they are still waiting, to another channel and its number."""
    for start in range(0, len(ids), 500):
        await conn.execute(
            update(messages)
            .where(messages.c.id.in_(ids[start : start + 500]), messages.c.status.in_(_WAITING))
            .values(channel=channel, from_addr=sender)
        )


async def left_sending(conn: AsyncConnection, limit: int, *, channel: str, shard: int) -> list[Claimed]:
    """Messages `sending` on `channel`, claimed by its dispatcher `shard` (0 includes those
    claimed before shards were written): what a crash left between hand-off and record."""
    query = select(*_CLAIMED).where(messages.c.status == Status.SENDING.value, messages.c.channel == channel)
    if shard == 0:
        query = query.where(or_(messages.c.shard == 0, messages.c.shard.is_(None)))
    else:
        query = query.where(messages.c.shard == shard)
    return [Claimed(*r) for r in (await conn.execute(query.limit(limit))).all()]


async def get(conn: AsyncConnection, workspace_id: str, message_id: str) -> MessageRow | None:
    row = (
        await conn.execute(
            select(messages).where(messages.c.workspace_id == workspace_id, messages.c.id == message_id)
        )
    ).mappings().first()
    return MessageRow(**row) if row else None


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """One step of a message's history: the status it entered, why, when, and (a deferral)
    until when it waits."""

    status: str
    reason: str | None
    at: datetime
    until: datetime | None = None


_EVENT = (message_events.c.status, message_events.c.reason, message_events.c.at, message_events.c.until)


async def history(conn: AsyncConnection, message_id: str) -> list[MessageEvent]:
    rows = await conn.execute(
        select(*_EVENT).where(message_events.c.message_id == message_id).order_by(message_events.c.id)
    )
    return [MessageEvent(*r) for r in rows.all()]


async def histories(conn: AsyncConnection, message_ids: Sequence[str]) -> dict[str, list[MessageEvent]]:
    """The history of each of these messages, in order (a message without one: absent)."""
    found: dict[str, list[MessageEvent]] = defaultdict(list)
    for start in range(0, len(message_ids), _CHUNK):
        rows = await conn.execute(
            select(message_events.c.message_id, *_EVENT)
            .where(message_events.c.message_id.in_(message_ids[start : start + _CHUNK]))
            .order_by(message_events.c.message_id, message_events.c.id)
        )
        for message_id, *event in rows.all():
            found[message_id].append(MessageEvent(*event))
    return dict(found)


async def reason_counts(conn: AsyncConnection, ids: Sequence[str], reason: str) -> dict[str, int]:
    """How many history rows of each of these messages have `reason` (absent: none)."""
    found: dict[str, int] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = await conn.execute(
            select(message_events.c.message_id, func.count())
            .where(message_events.c.message_id.in_(ids[start : start + _CHUNK]), message_events.c.reason == reason)
            .group_by(message_events.c.message_id)
        )
        found.update({i: n for i, n in rows.all()})
    return found


async def page(
    conn: AsyncConnection,
    workspace_id: str,
    *,
    limit: int,
    cursor: str | None = None,
    contact_id: str | None = None,
    status: str | None = None,
    direction: str | None = None,
    since: datetime | None = None,
) -> list[MessageRow]:
    query = select(messages).where(messages.c.workspace_id == workspace_id)
    if contact_id:
        query = query.where(messages.c.contact_id == contact_id)
    if status:
        query = query.where(messages.c.status == status)
    if direction:
        query = query.where(messages.c.direction == direction)
    if since:
        query = query.where(messages.c.created_at >= since)
    rows = await conn.execute(newest_first(query, messages.c.id, limit=limit, cursor=cursor))
    return [MessageRow(**r) for r in rows.mappings()]


async def thread(conn: AsyncConnection, workspace_id: str, contact_id: str, limit: int = 200) -> list[MessageRow]:
    rows = await conn.execute(
        select(messages)
        .where(messages.c.workspace_id == workspace_id, messages.c.contact_id == contact_id)
        .order_by(messages.c.id.desc())
        .limit(limit)
    )
    return list(reversed([MessageRow(**r) for r in rows.mappings()]))


_HANDED_OFF = [s.value for s in (Status.SENDING, Status.SENT, Status.DELIVERED, Status.UNDELIVERED)]


@dataclass(frozen=True, slots=True)
class HandedOff:
    """A message that went out to a contact (`handed_off`): what caps and de-duplication read."""

    contact_id: str
    topic: str
    sent_at: datetime  # its first `sending` event
    content_key: str  # of its body (policy.content_key)


async def handed_off(
    conn: AsyncConnection, workspace_id: str, contact_ids: Iterable[str], topics: Iterable[str]
) -> list[HandedOff]:
    """Messages in these topics that went out to these contacts, each with when it first left
    (`sent_at`, its first `sending` event) and the `content_key` of its body: what frequency
    caps and de-duplication look at. A redacted marketing body already is its content key
    (store.privacy)."""
    ids, wanted = sorted(set(contact_ids)), sorted(set(topics))
    if not ids or not wanted:
        return []
    m, e = messages.c, message_events.c
    found: list[HandedOff] = []
    for start in range(0, len(ids), _CHUNK):
        rows = await conn.execute(
            select(m.contact_id, m.topic, func.min(e.at), m.body, m.redacted_at)
            .join(message_events, (e.message_id == m.id) & (e.status == Status.SENDING.value))
            .where(
                m.workspace_id == workspace_id,
                m.contact_id.in_(ids[start : start + _CHUNK]),
                m.topic.in_(wanted),
                m.direction == Direction.OUTBOUND.value,
                m.status.in_(_HANDED_OFF),
            )
            .group_by(m.id, m.contact_id, m.topic, m.body, m.redacted_at)
        )
        found.extend(
            HandedOff(contact_id, topic, sent_at, body if redacted_at else content_key(body))
            for contact_id, topic, sent_at, body, redacted_at in rows.all()
        )
    return found


async def last_handed_off(conn: AsyncConnection, workspace_id: str, contact_id: str) -> MessageRow | None:
    """The newest message that went out to this contact (blocked or queued ones never reached them)."""
    m = messages.c
    row = (
        await conn.execute(
            select(messages)
            .where(
                m.workspace_id == workspace_id, m.contact_id == contact_id, m.direction == Direction.OUTBOUND.value,
                m.status.in_(_HANDED_OFF),
            )
            .order_by(m.id.desc())
            .limit(1)
        )
    ).mappings().first()
    return MessageRow(**row) if row else None


async def last_inbound_id(conn: AsyncConnection, workspace_id: str, contact_id: str) -> str | None:
    """The newest message this contact sent us, if any."""
    m = messages.c
    return (
        await conn.execute(
            select(m.id)
            .where(m.workspace_id == workspace_id, m.contact_id == contact_id, m.direction == Direction.INBOUND.value)
            .order_by(m.id.desc())
            .limit(1)
        )
    ).scalar()


def to_view(row: NewMessage, events: Sequence[MessageEvent] | None = None) -> Json:
    """A message as the API shows it (a new one, or a stored one: a MessageRow is one too)."""
    view: Json = {
        "id": row.id,
        "direction": row.direction,
        "contact_id": row.contact_id,
        "to": row.to_addr,
        "from": row.from_addr,
        "body": row.body,
        "subject": row.subject,
        "html": row.html,
        "topic": row.topic,
        "status": row.status,
        "reason": row.reason,
        "encoding": row.encoding,
        "segments": row.segments,
        "channel": row.channel,
        "carrier_id": row.carrier_id,  # the carrier's or provider's id, once it took the message
        "idempotency_key": row.idempotency_key,
        "template": row.template,
        "event_id": row.event_id,
        "valid_until": row.valid_until.isoformat() if row.valid_until else None,
        "in_reply_to": row.in_reply_to,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }
    if events is not None:
        view["events"] = [
            {"status": e.status, "reason": e.reason, "at": e.at.isoformat(),
             "until": e.until.isoformat() if e.until else None}
            for e in events
        ]
    return view
