"""The dashboard's figures: what a workspace's messages did, counted by hour and by what sent them.

A period's counts come from two places, read as one (`counts`):
  - `stats_hours`, the counts of each hour that is over, kept by the stats loop
    (engine/stats.py): an hour is counted again, whole, from `messages` whenever one of its
    messages changed (`changed_hours`, by `ix_messages_updated`) or an outcome of one was found;
  - `messages` and `message_outcomes` themselves for the rest: the hour not yet over, and the
    parts of hours at the period's edges (`ix_messages_workspace_created`).
Hours are those a message was written (accepted or received) in, UTC.

What followed a text (`follow`): an outbound text is `replied` when the contact's next text
after it (by id, so by the time each was written) is one from them; `opted_out` when an
opt-out of theirs (a `revoked` ledger entry, any topic) is the first thing after it, before
we wrote them another text; `handed_off` likewise for their inbox thread opening (or taking a
new message) for a person. Each counts a text once. Emails are not in these sequences.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy import BigInteger, FromClause, Table, ColumnElement, ScalarSelect, Select, delete, func, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.store.schema import (
    EPOCH,
    consent_ledger,
    message_events,
    message_outcomes,
    messages,
    queue_samples,
    stats_days,
    stats_hours,
    stats_marks,
    threads,
    to_millis,
    workspaces,
)

MINUTE: Final = 60_000
HOUR: Final = 3_600_000
DAY: Final = 86_400_000
Outcome = Literal["replied", "opted_out", "handed_off"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("replied", "opted_out", "handed_off")
MESSAGES: Final = "messages"  # the measure of message counts by status (the others are outcomes)


@dataclass(frozen=True, slots=True)
class Count:
    """How many messages of one kind: written in `bucket` (epoch ms of its start; 0 when not
    by time), of one `measure` (`messages` by status, or an outcome), by what sent them."""

    bucket: int
    measure: str
    direction: str
    flow: str | None
    trigger: str | None
    template: str | None
    topic: str | None
    status: str | None  # for `messages`
    reason: str | None  # for `messages`
    count: int


def ms(at: datetime) -> int:
    millis = to_millis(at)
    assert millis is not None
    return millis


def at(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def _bucket(column: ColumnElement[int], size: int | None) -> ColumnElement[int]:
    """The start of the bucket of `size` ms a stored instant is in (integer division on both)."""
    if size is None:
        return literal(0, BigInteger)
    as_int = type_coerce(column, BigInteger)
    return (as_int // size) * size


def _grouped(keys: tuple[ColumnElement[Any], ...], bucket: int | None) -> tuple[ColumnElement[Any], ...]:  # Any: columns of several types
    """The GROUP BY of `keys` (the bucket first): not by the bucket when it is the constant 0."""
    return keys if bucket is not None else keys[1:]


def _none(value: str | None) -> str | None:
    return value or None  # "" in stats_hours stands for none


async def counts(
    conn: AsyncConnection, workspace_id: str, start: datetime, end: datetime, now: datetime,
    *, bucket: int | None = None, senders: bool = True,
) -> list[Count]:
    """The counts of messages written in [start, end), by bucket of `bucket` ms or not by time
    (None); by what sent them, or not (`senders`: flow … topic left None). Whole days that are
    over come from stats_days, other whole hours that are over from stats_hours (when the
    bucket is a whole number of them), the rest from the messages."""
    a, z = ms(start), ms(end)
    over = ms(now) // HOUR * HOUR  # the hours before it are over
    first_hour, last_hour = -(-a // HOUR) * HOUR, min(z // HOUR * HOUR, over)
    spans: list[tuple[str, int, int]] = []  # (source, from, to)
    if (bucket is None or bucket % HOUR == 0) and first_hour < last_hour:
        first_day, last_day = -(-first_hour // DAY) * DAY, last_hour // DAY * DAY
        if (bucket is None or bucket % DAY == 0) and first_day < last_day:
            spans += [("hours", first_hour, first_day), ("days", first_day, last_day), ("hours", last_day, last_hour)]
        else:
            spans.append(("hours", first_hour, last_hour))
        spans += [("live", a, first_hour), ("live", last_hour, z)]
    else:
        spans.append(("live", a, z))
    found: list[Count] = []
    for source, lo, hi in spans:
        if lo >= hi:
            continue
        if source == "live":
            found += await _live(conn, workspace_id, at(lo), at(hi), bucket, senders)
        else:
            found += await _rolled(conn, stats_days if source == "days" else stats_hours, workspace_id, lo, hi,
                                   bucket, senders)
    return found


async def _rolled(
    conn: AsyncConnection, t: Table, ws: str, first: int, last: int, bucket: int | None, senders: bool
) -> list[Count]:
    start = t.c.day if t is stats_days else t.c.hour
    slot = _bucket(start, bucket)
    who = (t.c.flow, t.c.trigger, t.c.template, t.c.topic) if senders else ()
    keys = (slot, t.c.measure, t.c.direction, *who, t.c.status, t.c.reason)
    query = (select(*keys, func.sum(t.c.count))
             .where(t.c.workspace_id == ws, start >= first, start < last).group_by(*_grouped(keys, bucket)))
    found = []
    for r in (await conn.execute(query)).all():
        flow, trigger, template, topic = (_none(v) for v in r[3:7]) if senders else (None, None, None, None)
        status, reason, n = r[-3:]
        found.append(Count(int(r[0]), r[1], r[2], flow, trigger, template, topic, _none(status), _none(reason), int(n)))
    return found


def _live_messages(ws: str, start: datetime, end: datetime, bucket: int | None) -> Select[Any]:  # Any: rows of the grouped columns and their count
    m = messages
    slot = _bucket(m.c.created_at, bucket)
    keys = (slot, m.c.direction, m.c.flow, m.c.trigger, m.c.template, m.c.topic, m.c.status, m.c.reason)
    return (select(*keys, func.count())
            .where(m.c.workspace_id == ws, m.c.created_at >= start, m.c.created_at < end).group_by(*_grouped(keys, bucket)))


def _live_outcomes(ws: str, start: datetime, end: datetime, bucket: int | None) -> Select[Any]:  # Any: rows of the grouped columns and their count
    o = message_outcomes
    slot = _bucket(o.c.message_created_at, bucket)
    keys = (slot, o.c.outcome, o.c.flow, o.c.trigger, o.c.template, o.c.topic)
    return (select(*keys, func.count())
            .where(o.c.workspace_id == ws, o.c.message_created_at >= start, o.c.message_created_at < end)
            .group_by(*_grouped(keys, bucket)))


async def _live(
    conn: AsyncConnection, ws: str, start: datetime, end: datetime, bucket: int | None, senders: bool = True
) -> list[Count]:
    found = [Count(int(r[0]), MESSAGES, r[1], r[2], r[3], r[4], r[5], r[6], r[7], int(r[8]))
             for r in (await conn.execute(_live_messages(ws, start, end, bucket))).all()]
    found += [Count(int(r[0]), r[1], "outbound", r[2], r[3], r[4], r[5], None, None, int(r[6]))
              for r in (await conn.execute(_live_outcomes(ws, start, end, bucket))).all()]
    if not senders:  # the few rows of a live span: dropped here, not grouped again
        found = [replace(c, flow=None, trigger=None, template=None, topic=None) for c in found]
    return found


async def recount(conn: AsyncConnection, workspace_id: str, hours: Iterable[int]) -> None:
    """Count these hours (epoch ms of their starts) of the workspace again, whole, into
    stats_hours, and their days (stats_days)."""
    hours = sorted(set(hours))
    if conn.dialect.name == "postgresql":  # one counter of a workspace at a time (a lease handed over mid-pass)
        await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext("stats:" + workspace_id))))
    for hour in hours:
        await conn.execute(delete(stats_hours).where(stats_hours.c.workspace_id == workspace_id,
                                                    stats_hours.c.hour == hour))
        start, end = at(hour), at(hour + HOUR)
        rows = [{"workspace_id": workspace_id, "hour": hour, "measure": MESSAGES, "direction": r[1],
                 "flow": r[2] or "", "trigger": r[3] or "", "template": r[4] or "", "topic": r[5] or "",
                 "status": r[6], "reason": r[7] or "", "count": r[8]}
                for r in (await conn.execute(_live_messages(workspace_id, start, end, None))).all()]
        rows += [{"workspace_id": workspace_id, "hour": hour, "measure": r[1], "direction": "outbound",
                  "flow": r[2] or "", "trigger": r[3] or "", "template": r[4] or "", "topic": r[5] or "",
                  "status": "", "reason": "", "count": r[6]}
                 for r in (await conn.execute(_live_outcomes(workspace_id, start, end, None))).all()]
        if rows:
            await conn.execute(stats_hours.insert(), rows)
    for day in sorted({h // DAY * DAY for h in hours}):
        await _recount_day(conn, workspace_id, day)


_DAY_COLUMNS = ("measure", "direction", "flow", "trigger", "template", "topic", "status", "reason")


async def _recount_day(conn: AsyncConnection, workspace_id: str, day: int) -> None:
    """A day's counts in stats_days: the sum of its hours in stats_hours."""
    await conn.execute(delete(stats_days).where(stats_days.c.workspace_id == workspace_id, stats_days.c.day == day))
    h = stats_hours
    keys = [h.c[name] for name in _DAY_COLUMNS]
    summed = (select(h.c.workspace_id, literal(day, BigInteger), *keys, func.sum(h.c.count))
              .where(h.c.workspace_id == workspace_id, h.c.hour >= day, h.c.hour < day + DAY)
              .group_by(h.c.workspace_id, *keys))
    await conn.execute(stats_days.insert().from_select(["workspace_id", "day", *_DAY_COLUMNS, "count"], summed))


async def changed_hours(conn: AsyncConnection, since: datetime | None, upto: datetime) -> dict[str, set[int]]:
    """The hours (by workspace) of the messages changed in (since, upto]; every hour with a
    message when `since` is None."""
    m = messages
    hour = _bucket(m.c.created_at, HOUR)
    query = select(m.c.workspace_id, hour).distinct()
    if since is not None:
        query = query.where(m.c.updated_at > since, m.c.updated_at <= upto)
    found: dict[str, set[int]] = {}
    for ws, h in (await conn.execute(query)).all():
        found.setdefault(ws, set()).add(int(h))
    return found


@dataclass(frozen=True, slots=True)
class Followed:
    """An outcome found for a text: which, when it followed, and what sent the text."""

    message_id: str
    outcome: Outcome
    workspace_id: str
    message_created_at: datetime
    flow: str | None
    trigger: str | None
    template: str | None
    topic: str | None
    at: datetime


def _last_text_before(
    ws: ColumnElement[str], contact: ColumnElement[str], before: Callable[[FromClause], ColumnElement[bool]]
) -> ScalarSelect[str]:
    """The id of the contact's last outbound text (not an email) that `before` holds for."""
    p = messages.alias()
    # The contact's messages newest first (ix_messages_workspace_contact), never a range of the
    # workspace's by time: `before` compares instants as numbers plus 0, which no index serves.
    return (select(p.c.id)
            .where(p.c.workspace_id == ws, p.c.contact_id == contact, p.c.direction == "outbound",
                   func.coalesce(p.c.encoding, "") != "email", before(p))
            .order_by(p.c.id.desc()).limit(1).scalar_subquery())


def _late(earlier: ColumnElement[datetime], later: ColumnElement[datetime]) -> ColumnElement[bool]:
    """earlier < later, as numbers no index is read for (SQLite would take the time index)."""
    return type_coerce(earlier, BigInteger) + 0 < type_coerce(later, BigInteger)


async def follow(conn: AsyncConnection, workspace_id: str, since: datetime, upto: datetime) -> list[Followed]:
    """What followed texts in (since, upto]: replies, opt-outs and hand-offs of that time, each
    given to the contact's text before it; stored (once per text and outcome) and returned
    (those new and those already stored alike)."""
    found: list[Followed] = []
    o = messages.alias("o")
    cols = (o.c.id, o.c.created_at, o.c.flow, o.c.trigger, o.c.template, o.c.topic)
    r, c, t = messages.alias("r"), consent_ledger, threads
    sources: list[tuple[Outcome, Select[Any]]] = [  # Any: rows of cols and the instant
        # Replies: inbound texts; their contact's text before them by id.
        ("replied", select(*cols, r.c.created_at)
         .select_from(r.join(o, o.c.id == _last_text_before(r.c.workspace_id, r.c.contact_id, lambda p: p.c.id < r.c.id)))
         .where(r.c.workspace_id == workspace_id, r.c.created_at > since, r.c.created_at <= upto,
                r.c.direction == "inbound")),
        # Opt-outs: the ledger's revocations; the text written before their instant (one
        # written at it, such as the confirmation, is after).
        ("opted_out", select(*cols, c.c.at)
         .select_from(c.join(o, o.c.id == _last_text_before(c.c.workspace_id, c.c.contact_id,
                                                            lambda p: _late(p.c.created_at, c.c.at))))
         .where(c.c.workspace_id == workspace_id, c.c.at > since, c.c.at <= upto, c.c.action == "revoked")),
        # Hand-offs: open threads that took something in the time.
        ("handed_off", select(*cols, t.c.updated_at)
         .select_from(t.join(o, o.c.id == _last_text_before(t.c.workspace_id, t.c.contact_id,
                                                            lambda p: _late(p.c.created_at, t.c.updated_at))))
         .where(t.c.workspace_id == workspace_id, t.c.status == "open", t.c.updated_at > since,
                t.c.updated_at <= upto)),
    ]
    for outcome, query in sources:
        for row in (await conn.execute(query)).all():
            found.append(Followed(row[0], outcome, workspace_id, row[1], row[2], row[3], row[4], row[5], row[6]))
    if found:
        unique = {(f.message_id, f.outcome): f for f in found}
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        await conn.execute(
            insert(message_outcomes).on_conflict_do_nothing(),
            [{"message_id": f.message_id, "outcome": f.outcome, "workspace_id": f.workspace_id,
              "message_created_at": f.message_created_at, "flow": f.flow, "trigger": f.trigger,
              "template": f.template, "topic": f.topic, "at": f.at} for f in unique.values()],
        )
    return found


async def oldest(conn: AsyncConnection) -> datetime | None:
    """When the oldest message was written (None: there is none), a workspace at a time (by index)."""
    found = [await conn.scalar(select(func.min(messages.c.created_at)).where(messages.c.workspace_id == ws))
             for ws in await workspace_ids(conn)]
    return min((f for f in found if f is not None), default=None)


async def workspace_ids(conn: AsyncConnection) -> list[str]:
    return list((await conn.execute(select(workspaces.c.id).order_by(workspaces.c.id))).scalars())


@dataclass(frozen=True, slots=True)
class Queue:
    queued: int
    deferred: int
    sending: int


async def queue_now(conn: AsyncConnection, workspace_id: str) -> Queue:
    """How many of the workspace's messages wait now: queued, deferred, being handed over."""
    m = messages
    got = {}
    for status in ("queued", "deferred", "sending"):
        got[status] = (await conn.execute(
            select(func.count()).select_from(m).where(m.c.workspace_id == workspace_id, m.c.status == status)
        )).scalar_one()
    return Queue(got["queued"], got["deferred"], got["sending"])


async def sample_queue(conn: AsyncConnection, workspace_id: str, at: datetime) -> Queue:
    queue = await queue_now(conn, workspace_id)
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(insert(queue_samples).on_conflict_do_nothing(), [{
        "workspace_id": workspace_id, "at": at, "queued": queue.queued, "deferred": queue.deferred,
        "sending": queue.sending,
    }])
    return queue


async def forget_samples(conn: AsyncConnection, before: datetime) -> None:
    await conn.execute(delete(queue_samples).where(queue_samples.c.at < before))


@dataclass(frozen=True, slots=True)
class QueuePoint:
    """The queue in one bucket: the most of each kind any sample of it saw."""

    at: datetime
    queued: int
    deferred: int
    sending: int


async def queue_series(
    conn: AsyncConnection, workspace_id: str, start: datetime, end: datetime, bucket: int
) -> list[QueuePoint]:
    s = queue_samples
    slot = _bucket(s.c.at, bucket)
    query = (select(slot, func.max(s.c.queued), func.max(s.c.deferred), func.max(s.c.sending))
             .where(s.c.workspace_id == workspace_id, s.c.at >= start, s.c.at < end).group_by(slot).order_by(slot))
    return [QueuePoint(at(int(r[0])), int(r[1]), int(r[2]), int(r[3])) for r in (await conn.execute(query)).all()]


async def deferred_now(conn: AsyncConnection, workspace_id: str) -> dict[str, int]:
    """The workspace's messages deferred now, by reason."""
    m = messages
    query = (select(m.c.reason, func.count())
             .where(m.c.workspace_id == workspace_id, m.c.status == "deferred").group_by(m.c.reason))
    return {r[0] or "": int(r[1]) for r in (await conn.execute(query)).all()}


async def deferred_between(conn: AsyncConnection, workspace_id: str, start: datetime, end: datetime) -> dict[str, int]:
    """How many messages were deferred in [start, end), by reason (a message deferred for two
    reasons counts under each, once under one)."""
    e = message_events
    query = (select(e.c.reason, func.count(e.c.message_id.distinct()))
             .where(e.c.workspace_id == workspace_id, e.c.status == "deferred", e.c.at >= start, e.c.at < end)
             .group_by(e.c.reason))
    return {r[0] or "": int(r[1]) for r in (await conn.execute(query)).all()}


async def mark(conn: AsyncConnection, name: str) -> datetime | None:
    found = (await conn.execute(select(stats_marks.c.at).where(stats_marks.c.name == name))).scalar()
    return None if found is None else at(int(found))


async def set_mark(conn: AsyncConnection, name: str, at: datetime) -> None:
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(stats_marks).values(name=name, at=ms(at))
    await conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"at": stmt.excluded.at}))


def hours_of(found: Sequence[Followed]) -> dict[str, set[int]]:
    """The hours (by workspace) of the texts these outcomes are of."""
    hours: dict[str, set[int]] = {}
    for f in found:
        hours.setdefault(f.workspace_id, set()).add(ms(f.message_created_at) // HOUR * HOUR)
    return hours

