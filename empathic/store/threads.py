"""Inbox threads: one per contact, open while a reply waits for a person.

The repository returns `Thread` records and makes their JSON view (`to_view`) in this one
place. Besides the thread itself: who it is assigned to (a user of its workspace), how far
each person has read it (`thread_reads`: its unread count is the contact's texts after that
and since the thread (last) opened),
and the team's internal notes on it (`thread_notes`, never sent).

Why a thread is in the inbox (`Why`), derived from what opened it:
  `handoff`    a flow's `handoff` step gave it to a person (the thread names the run);
  `unclear`    a flow could not understand the reply and had no `on_unclear` step (its run
               ended with the outcome `unclear`);
  `free_text`  the person texted something no keyword, subscription or flow took.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, and_, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.emails import is_email
from empathic.core.errors import InputError
from empathic.core.ids import new_id
from empathic.core.json import Json
from empathic.core.messages import Direction
from empathic.core.phones import InvalidPhoneNumber, normalize
from empathic.core.policy import REASONS
from empathic.store import contacts, messages, readings
from empathic.store.contact_pages import Fold, unicode_lower  # the Unicode lower case contact search uses
from empathic.store.records import MessageRow
from empathic.store.schema import EPOCH, to_millis
from empathic.store.schema import contacts as contact_table
from empathic.store.schema import flow_runs, thread_notes, thread_reads, threads, users
from empathic.store.schema import messages as message_table

ThreadStatus = Literal["open", "closed"]
Why = Literal["handoff", "unclear", "free_text"]
WHY: dict[Why, str] = {
    "handoff": "A flow handed the conversation to a person.",
    "unclear": "A flow could not understand the reply.",
    "free_text": "The person wrote something no keyword or flow handles.",
}
UNASSIGNED: Final = ""  # `page(assigned_to=UNASSIGNED)`: the threads nobody has
NAME_FIELDS = ("first_name", "last_name", "name")  # the contact attributes a search by name reads


@dataclass(frozen=True, slots=True)
class Thread:
    """A stored inbox thread: the `threads` table's columns, by name."""

    id: str
    workspace_id: str
    contact_id: str
    status: ThreadStatus
    last_message_id: str | None
    note: str | None  # why a flow handed it over
    run_id: str | None  # the flow run waiting for a person to close it
    assigned_to: str | None  # the user answering it
    opened_at: datetime
    updated_at: datetime  # its last activity: a text in, a reply, an assignment, a close


@dataclass(frozen=True, slots=True)
class Member:
    """A user of the workspace, as a thread names them (its assignee, a note's author)."""

    id: str
    email: str
    name: str | None

    @property
    def label(self) -> str:
        return self.name or self.email


@dataclass(frozen=True, slots=True)
class Note:
    """An internal note on a thread: seen by the team, never sent."""

    id: str
    thread_id: str
    author_id: str | None  # None: written by the system
    body: str
    created_at: datetime


def member_view(member: Member | None) -> Json | None:
    return {"id": member.id, "email": member.email, "name": member.name} if member else None


def to_view(
    thread: Thread, contact: contacts.Contact | None, last: MessageRow | None, *,
    why: Why | None = None, unread: int | None = None, assignee: Member | None = None,
) -> Json:
    """The thread as the API shows it, with its contact and last message when given; the
    list adds why it is in the inbox, the reader's unread count and the assignee."""
    view: Json = {
        "id": thread.id,
        "status": thread.status,
        "contact": contacts.to_view(contact) if contact else None,
        "last_message": messages.to_view(last) if last else None,
        "note": thread.note,
        "run_id": thread.run_id,
        "assigned_to": thread.assigned_to,
        "opened_at": thread.opened_at.isoformat(),
        "updated_at": thread.updated_at.isoformat(),
    }
    if why is not None:
        view["why"] = why
    if unread is not None:
        view["unread"] = unread
    view["assignee"] = member_view(assignee)  # the caller reads it (`members`) when assigned_to is set
    return view


def note_view(note: Note, author: Member | None) -> Json:
    return {
        "id": note.id, "body": note.body, "author": member_view(author), "created_at": note.created_at.isoformat(),
    }


async def open_for(
    conn: AsyncConnection, workspace_id: str, contact_id: str, message_id: str | None, now: datetime,
    *, note: str | None = None, run_id: str | None = None,
) -> str:
    """Open (or keep open) the contact's thread with this message as its latest; a flow handing
    the thread over says why (`note`) and which run waits for it to close. A closed thread the
    person's own text opens again is theirs: the flow's note and run of before are let go, and
    it counts as opened now (unread counts start there)."""
    row = (
        await conn.execute(
            select(threads.c.id, threads.c.status)
            .where(threads.c.workspace_id == workspace_id, threads.c.contact_id == contact_id)
        )
    ).first()
    if row:
        found, status = row
        handed = note is not None or run_id is not None
        await conn.execute(
            update(threads)
            .where(threads.c.id == found)
            .values(
                status="open",
                updated_at=now,
                **({"last_message_id": message_id} if message_id is not None else {}),
                **({"note": note, "run_id": run_id} if handed or status == "closed" else {}),
                **({"opened_at": now} if status == "closed" else {}),
            )
        )
        return found
    thread_id = new_id("th")
    await conn.execute(
        insert(threads).values(
            id=thread_id,
            workspace_id=workspace_id,
            contact_id=contact_id,
            status="open",
            last_message_id=message_id,
            note=note,
            run_id=run_id,
            opened_at=now,
            updated_at=now,
        )
    )
    return thread_id


async def get(conn: AsyncConnection, workspace_id: str, thread_id: str) -> Thread | None:
    row = (
        await conn.execute(select(threads).where(threads.c.workspace_id == workspace_id, threads.c.id == thread_id))
    ).mappings().first()
    return Thread(**row) if row else None


async def of_contact(conn: AsyncConnection, workspace_id: str, contact_id: str) -> Thread | None:
    row = (
        await conn.execute(select(threads).where(threads.c.workspace_id == workspace_id, threads.c.contact_id == contact_id))
    ).mappings().first()
    return Thread(**row) if row else None


async def set_status(conn: AsyncConnection, thread_id: str, status: ThreadStatus, now: datetime) -> None:
    await conn.execute(update(threads).where(threads.c.id == thread_id).values(status=status, updated_at=now))


async def touch(conn: AsyncConnection, thread_id: str, now: datetime) -> None:
    """Something happened on the thread (a reply, a note): it moves up the list."""
    await conn.execute(update(threads).where(threads.c.id == thread_id).values(updated_at=now))


async def assign(conn: AsyncConnection, thread_id: str, user_id: str | None, now: datetime) -> None:
    """Give the thread to this user (None: to nobody). The caller checked the user is the
    thread's workspace's (`member`)."""
    await conn.execute(update(threads).where(threads.c.id == thread_id).values(assigned_to=user_id, updated_at=now))


# -- lists --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page of the list by last activity ends: the last thread shown."""

    updated_at: datetime
    id: str

    def __str__(self) -> str:
        return f"{to_millis(self.updated_at)}.{self.id}"

    @classmethod
    def of(cls, thread: Thread) -> Cursor:
        return cls(thread.updated_at, thread.id)

    @classmethod
    def parse(cls, text: str) -> Cursor:
        millis, _, thread_id = text.partition(".")
        if not millis.isdigit() or not thread_id or len(millis) > 13:
            raise InputError("cursor", "is not a cursor this list gave (use next_cursor as it is)")
        return cls(datetime.fromtimestamp(int(millis) / 1000, EPOCH.tzinfo), thread_id)


async def page(
    conn: AsyncConnection, workspace_id: str, *, status: ThreadStatus | None, limit: int, cursor: str | None,
    assigned_to: str | None = None, q: str | None = None, default_region: str | None = None,
) -> list[Thread]:
    """Threads by last activity, newest first, after `cursor` (a `Cursor` as text): in this
    status (None: any), assigned to this user (`UNASSIGNED`: to nobody; None: whoever), whose
    contact matches `q` (`matching`)."""
    query = select(threads).where(threads.c.workspace_id == workspace_id)
    if status:
        query = query.where(threads.c.status == status)
    if assigned_to == UNASSIGNED:
        query = query.where(threads.c.assigned_to.is_(None))
    elif assigned_to is not None:
        query = query.where(threads.c.assigned_to == assigned_to)
    if q and q.strip():
        wanted = matching(q, await unicode_lower(conn), default_region)
        query = query.where(
            threads.c.contact_id.in_(select(contact_table.c.id).where(contact_table.c.workspace_id == workspace_id, wanted))
        )
    if cursor:
        after = Cursor.parse(cursor)
        query = query.where(
            or_(threads.c.updated_at < after.updated_at,
                and_(threads.c.updated_at == after.updated_at, threads.c.id < after.id))
        )
    rows = await conn.execute(query.order_by(threads.c.updated_at.desc(), threads.c.id.desc()).limit(limit))
    return [Thread(**r) for r in rows.mappings()]


def matching(q: str, lower: Fold, default_region: str | None = None) -> ColumnElement[bool]:
    """Contacts a search finds: a number in any format (normalised to E.164; a few digits
    find the numbers holding them), else every word in one of the name attributes
    (`NAME_FIELDS`), case-insensitively (`lower`: the database's Unicode lower case, so
    "josé" finds "JOSÉ" on SQLite too)."""
    text = q.strip()
    digits = re.sub(r"\D", "", text)
    if digits and re.fullmatch(r"[\d\s().+\-/]+", text):
        try:
            return contact_table.c.phone == normalize(text, default_region)
        except InvalidPhoneNumber:
            return contact_table.c.phone.contains(digits, autoescape=True)
    words = [w for w in text.lower().split() if w][:8]
    names = [lower(contact_table.c.attributes[f].as_string()) for f in NAME_FIELDS]
    return and_(*(or_(*(n.contains(w, autoescape=True) for n in names)) for w in words))


async def why(conn: AsyncConnection, found: Sequence[Thread]) -> dict[str, Why]:
    """Why each thread is in the inbox (see the module's docstring), by thread id."""
    run_ids = sorted({t.run_id for t in found if t.run_id})
    outcomes: dict[str, str | None] = {}
    if run_ids:
        rows = await conn.execute(select(flow_runs.c.id, flow_runs.c.outcome).where(flow_runs.c.id.in_(run_ids)))
        outcomes = {run_id: outcome for run_id, outcome in rows.all()}
    return {
        t.id: "free_text" if not t.run_id else "unclear" if outcomes.get(t.run_id) == "unclear" else "handoff"
        for t in found
    }


# -- reading ------------------------------------------------------------------------------


async def unread(conn: AsyncConnection, workspace_id: str, user_id: str, found: Sequence[Thread]) -> dict[str, int]:
    """How many texts each thread's contact sent since it (last) opened and after this person
    last read it, by thread id: one grouped count for the whole page."""
    if not found:
        return {}
    m, t, r = message_table.c, threads.c, thread_reads.c
    read = and_(r.thread_id == t.id, r.user_id == user_id)
    counted = (
        select(t.id, func.count(m.id))
        .select_from(
            threads.join(
                message_table,
                and_(m.workspace_id == t.workspace_id, m.contact_id == t.contact_id,
                     m.direction == Direction.INBOUND.value, m.created_at >= t.opened_at),
            ).outerjoin(thread_reads, read)
        )
        .where(t.workspace_id == workspace_id, t.id.in_([thread.id for thread in found]),
               or_(r.read_at.is_(None), m.created_at > r.read_at))
        .group_by(t.id)
    )
    counts = {thread_id: int(n) for thread_id, n in (await conn.execute(counted)).all()}
    return {thread.id: counts.get(thread.id, 0) for thread in found}


async def mark_read(conn: AsyncConnection, thread_id: str, user_id: str, now: datetime) -> None:
    """This person has read the thread up to now."""
    upsert = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(thread_reads)
    await conn.execute(
        upsert.values(thread_id=thread_id, user_id=user_id, read_at=now).on_conflict_do_update(
            index_elements=["thread_id", "user_id"], set_={"read_at": now}
        )
    )


# -- people and notes -----------------------------------------------------------------------


async def members(conn: AsyncConnection, workspace_id: str, user_ids: Iterable[str | None]) -> dict[str, Member]:
    """These users of the workspace, by id (another workspace's, or none such: absent)."""
    ids = sorted({i for i in user_ids if i})
    if not ids:
        return {}
    rows = await conn.execute(
        select(users.c.id, users.c.email, users.c.name).where(users.c.workspace_id == workspace_id, users.c.id.in_(ids))
    )
    return {r.id: Member(r.id, r.email, r.name) for r in rows.all()}


async def team(conn: AsyncConnection, workspace_id: str) -> list[Member]:
    """Who a thread may be assigned to: the workspace's agents and admins still enabled."""
    rows = await conn.execute(
        select(users.c.id, users.c.email, users.c.name)
        .where(users.c.workspace_id == workspace_id, users.c.role.in_(["admin", "agent"]), users.c.disabled_at.is_(None))
        .order_by(users.c.email)
    )
    return [Member(r.id, r.email, r.name) for r in rows.all()]


async def add_note(
    conn: AsyncConnection, workspace_id: str, thread_id: str, author_id: str | None, body: str, now: datetime
) -> Note:
    note = Note(new_id("tn"), thread_id, author_id, body, now)
    await conn.execute(
        insert(thread_notes).values(
            id=note.id, workspace_id=workspace_id, thread_id=thread_id, author_id=author_id, body=body, created_at=now
        )
    )
    return note


async def notes(conn: AsyncConnection, workspace_id: str, thread_id: str, limit: int = 500) -> list[Note]:
    """The thread's notes, oldest first (the newest `limit`)."""
    n = thread_notes.c
    rows = await conn.execute(
        select(n.id, n.thread_id, n.author_id, n.body, n.created_at)
        .where(n.workspace_id == workspace_id, n.thread_id == thread_id)
        .order_by(n.id.desc())
        .limit(limit)
    )
    return list(reversed([Note(*r) for r in rows.all()]))


# -- the timeline -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a thread's timeline: a message (with its history and, coming in, what was
    heard in it) or a note."""

    at: datetime
    message: MessageRow | None = None
    history: tuple[messages.MessageEvent, ...] = ()
    reading: readings.Reading | None = None
    note: Note | None = None


async def timeline(conn: AsyncConnection, workspace_id: str, thread: Thread, limit: int = 200) -> list[Entry]:
    """Every message of the thread's contact (texts and emails, the newest `limit`) with its
    history and reading, and the thread's notes, in order."""
    rows = await messages.thread(conn, workspace_id, thread.contact_id, limit)
    ids = [r.id for r in rows]
    events = await messages.histories(conn, ids)
    heard = await readings.of_messages(conn, workspace_id, [r.id for r in rows if r.direction == Direction.INBOUND.value])
    entries = [Entry(r.created_at, r, tuple(events.get(r.id, ())), heard.get(r.id)) for r in rows]
    entries += [Entry(n.created_at, note=n) for n in await notes(conn, workspace_id, thread.id)]
    return sorted(entries, key=lambda e: (e.at, e.note is not None))


def _instant(at: datetime | None, zone: ZoneInfo) -> Json | None:
    """An instant as the timeline shows it: UTC, and the wall time in the contact's zone."""
    if at is None:
        return None
    return {"utc": at.isoformat(), "contact": at.astimezone(zone).isoformat()}


def timeline_view(entries: Sequence[Entry], authors: dict[str, Member], zone_name: str | None) -> Json:
    """The timeline as the API shows it: each instant in UTC and in the contact's time zone
    (the page shows the viewer's from the UTC one); each decision with its reason's sentence."""
    zone = _zone(zone_name)
    shown: list[Json] = []
    for e in entries:
        if e.note is not None:
            shown.append({"kind": "note", "at": _instant(e.at, zone), **note_view(e.note, authors.get(e.note.author_id or ""))})
            continue
        m = e.message
        assert m is not None
        shown.append({
            "kind": "message",
            "at": _instant(e.at, zone),
            "id": m.id,
            "direction": m.direction,
            "reach": "email" if is_email(m.to_addr) or is_email(m.from_addr or "") else "sms",
            "to": m.to_addr,
            "from": m.from_addr,
            "body": m.body,
            "subject": m.subject,
            "topic": m.topic,
            "status": m.status,
            "reason": m.reason,
            "encoding": m.encoding,
            "segments": m.segments,
            "template": m.template,
            "reading": readings.to_view(e.reading) if e.reading else None,
            "history": [
                {"status": h.status, "reason": h.reason, "why": REASONS.get(h.reason or ""),
                 "at": _instant(h.at, zone), "until": _instant(h.until, zone)}
                for h in e.history
            ],
        })
    return {"timezone": zone.key, "entries": shown}


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
