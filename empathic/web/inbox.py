"""The inbox: hand-off threads answered by people.

    GET  /inbox                  threads by last activity: ?show=open|mine|unassigned|closed, ?q=
                                 (a number in any format, or a name), unread badges, assignee;
                                 `PAGE` at a time (?after=<cursor>: the older ones)
    GET  /inbox/{id}             the timeline (every message with what was heard and decided,
                                 and the notes), the reply box, notes, assignment, close;
                                 reading it marks it read for this person
    POST /inbox/{id}/reply       (agent, admin) send; the form's idempotency key sends it once
                                 (its own key space: `web:{user id}:{key}`)
    POST /inbox/{id}/notes       (agent, admin) an internal note, never sent
    POST /inbox/{id}/assign      (agent, admin) to a teammate, to me, or to nobody
    POST /inbox/{id}/close       (agent, admin) the flow that handed it over goes on or ends

Pages work as plain forms; static/inbox.js adds the live counter and the gate's answer
(POST /v1/inbox/{id}/preview as the person types), the template picker, local times, and
live updates (GET /live). A viewer sees everything and no form.
"""

from __future__ import annotations

import secrets
from functools import partial
from urllib.parse import urlencode
from zoneinfo import ZoneInfo
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.errors import InputError
from empathic.core.json import Json
from empathic.core.templates import TemplateError
from empathic.engine import inbox as answers
from empathic.engine.runtime import Runtime, runtime_of
from empathic.store import contacts as contact_store
from empathic.store import flows as flow_store
from empathic.store import messages as message_store
from empathic.store import threads as store
from empathic.web.auth import Person, acting, signed_in
from empathic.web.pages import render

router = APIRouter(include_in_schema=False)
MAX_BODY = 5000
SHOWS: dict[str, tuple[store.ThreadStatus, str | None]] = {  # ?show= → (status, assigned to)
    "open": ("open", None),
    "mine": ("open", "me"),
    "unassigned": ("open", store.UNASSIGNED),
    "closed": ("closed", None),
}
SHOW_LABELS = {"open": "Open", "mine": "Mine", "unassigned": "Unassigned", "closed": "Closed"}
PAGE = 100
KEY = 150  # characters of a form's idempotency key kept (with `web:{user id}:`, at most the 200 stored)


def display_name(contact: contact_store.Contact | None) -> str:
    """How the inbox names a contact: their name attributes, else their number or address."""
    if contact is None:
        return "(erased contact)"
    attributes = contact.attributes or {}
    parts = [attributes.get("first_name"), attributes.get("last_name")]
    full = " ".join(str(p).strip() for p in parts if isinstance(p, str | int) and str(p).strip())
    if not full and isinstance(attributes.get("name"), str):
        full = str(attributes["name"]).strip()
    return full or contact.phone or contact.email or contact.id


@dataclass(frozen=True, slots=True)
class Row:
    """A thread as the list shows it."""

    thread: store.Thread
    name: str
    phone: str | None
    last: str | None  # the last message's body
    last_direction: str | None
    why: store.Why
    unread: int
    assignee: str | None


@router.get("/inbox", response_class=HTMLResponse)
async def inbox(
    request: Request, person: Annotated[Person, Depends(signed_in)], show: str = "open", q: str = "", after: str = "",
) -> Response:
    rt = runtime_of(request)
    error = None
    if show not in SHOWS:
        error, show = f"There is no list called {show[:40]!r}: showing the open threads.", "open"
    q = q.strip()[:200]
    status, assigned = SHOWS[show]
    try:
        cursor = str(store.Cursor.parse(after)) if after else None
    except InputError:
        error, cursor = "That link to older threads is not one this list gave: showing the newest.", None
    async with rt.db.transaction() as conn:
        found = await store.page(
            conn, person.workspace_id, status=status, limit=PAGE + 1, cursor=cursor,
            assigned_to=person.user_id if assigned == "me" else assigned, q=q or None,
            default_region=rt.acceptance.default_region,
        )
        rows = await _rows(conn, person, found[:PAGE])
    older = f"/inbox?{urlencode({'show': show, 'q': q, 'after': str(store.Cursor.of(found[PAGE - 1]))})}" if len(found) > PAGE else None
    return render(
        request, "inbox.html", status=422 if error else 200, person=person, rows=rows, show=show, q=q,
        shows=SHOW_LABELS, error=error, why_labels=store.WHY, older=older, first_page=cursor is None, page_size=PAGE,
    )


async def _rows(conn: AsyncConnection, person: Person, found: list[store.Thread]) -> list[Row]:
    ws = person.workspace_id
    people = await contact_store.by_ids(conn, ws, [t.contact_id for t in found])
    why = await store.why(conn, found)
    unread = await store.unread(conn, ws, person.user_id, found)
    assignees = await store.members(conn, ws, [t.assigned_to for t in found])
    last = {m.id: m for m in await message_store.read(conn, [t.last_message_id for t in found if t.last_message_id])}
    rows = []
    for t in found:
        contact, message = people.get(t.contact_id), last.get(t.last_message_id or "")
        member = assignees.get(t.assigned_to or "")
        rows.append(Row(
            t, display_name(contact), contact.phone if contact else None,
            message.body if message and message.workspace_id == ws else None,
            message.direction if message else None, why[t.id], unread.get(t.id, 0),
            member.label if member else None,
        ))
    return rows


# -- one thread -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Draft:
    """The reply box as the page shows it: its text, its key, what the sender saw."""

    body: str = ""
    key: str = ""
    anyway: bool = False  # send although someone replied since the page was read


@dataclass(frozen=True, slots=True)
class Choice:
    """A template the reply box offers: its name and its text for this contact."""

    name: str
    text: str


async def _thread_page(
    request: Request, person: Person, thread_id: str, *, status: int = 200, error: str | None = None,
    notice: str | None = None, draft: Draft | None = None,
) -> Response:
    rt = runtime_of(request)
    ws = person.workspace_id
    async with rt.db.transaction() as conn:
        thread = await store.get(conn, ws, thread_id)
        if thread is None:
            return render(request, "inbox_missing.html", status=404, person=person, thread_id=thread_id)
        await store.mark_read(conn, thread.id, person.user_id, rt.now())
        contact = await contact_store.get(conn, ws, thread.contact_id)
        entries = await store.timeline(conn, ws, thread)
        authors = await store.members(conn, ws, [e.note.author_id for e in entries if e.note])
        why = (await store.why(conn, [thread]))[thread.id]
        team = await store.team(conn, ws) if person.can_act else []
        assignee = (await store.members(conn, ws, [thread.assigned_to])).get(thread.assigned_to or "")
        choices = await _choices(rt, conn, ws, contact) if person.can_act else []
    timeline = store.timeline_view(entries, authors, contact.timezone if contact else None)
    messages = [e for e in timeline["entries"] if e["kind"] == "message"]
    draft = draft or Draft()
    return render(
        request, "inbox_thread.html", status=status, person=person, thread=thread, contact=contact,
        name=display_name(contact), why=why, why_labels=store.WHY, timeline=timeline, assignee=assignee, team=team,
        choices=choices, error=error, notice=notice, body=draft.body, key=draft.key or secrets.token_urlsafe(18),
        anyway=draft.anyway, last_seen=messages[-1]["id"] if messages else "", max_body=MAX_BODY,
        when=partial(local_time, zone=timeline["timezone"]),
    )


def local_time(instant: Json | None, zone: str) -> str:
    """An instant of the timeline (`{"utc", "contact"}`) as text in the contact's zone, with
    the zone's abbreviation (PST, CET …)."""
    if not instant:
        return ""
    at = datetime.fromisoformat(str(instant["utc"])).astimezone(ZoneInfo(zone))
    return at.strftime("%Y-%m-%d %H:%M %Z")


async def _choices(rt: Runtime, conn: AsyncConnection, ws: str, contact: contact_store.Contact | None) -> list[Choice]:
    """The workspace's templates that render for this contact with nothing but `contact`
    in scope (those needing an event's data cannot be used by hand)."""
    if contact is None:
        return []
    scope = contact_store.to_view(contact)
    found = []
    for name, (template, _source) in sorted((await rt.catalog.templates(conn, ws)).items()):
        try:
            found.append(Choice(name, template.render(contact=scope)))
        except TemplateError:
            continue
    return found


@router.get("/inbox/{thread_id}", response_class=HTMLResponse)
async def thread_page(
    thread_id: str, request: Request, person: Annotated[Person, Depends(signed_in)], sent: str = "",
    closed: str = "", noted: str = "",
) -> Response:
    notice = ("Your reply is on its way." if sent else "The thread is closed." if closed
              else "Note added." if noted else None)
    return await _thread_page(request, person, thread_id, notice=notice)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _back(thread_id: str, flag: str) -> RedirectResponse:
    return RedirectResponse(f"/inbox/{thread_id}?{flag}=1", status_code=303)


@router.post("/inbox/{thread_id}/reply")
async def reply(thread_id: str, request: Request, person: Annotated[Person, Depends(acting)]) -> Response:
    """Send the reply once: the form's key (made when the page was drawn) makes a second
    submit of the same form send nothing more, and the same form with other words is refused
    (409, the draft kept). A reply someone else sent since the page was read is shown first;
    sending again then is deliberate (`anyway`)."""
    form = await _form(request)
    body, key = form.get("body", ""), form.get("idempotency_key", "")[:KEY]
    draft = Draft(body[:MAX_BODY], key, anyway=True)
    if not body.strip() or len(body) > MAX_BODY:
        detail = "Write a reply first." if not body.strip() else f"A reply is at most {MAX_BODY} characters."
        return await _thread_page(request, person, thread_id, status=422, error=detail, draft=draft)
    rt = runtime_of(request)
    try:
        outcome = await _send(rt, person, thread_id, form, body, key)
    except IntegrityError:  # the same form, twice at once: the second finds the first's message now
        outcome = await _send(rt, person, thread_id, form, body, key)
    if outcome == "missing":
        return render(request, "inbox_missing.html", status=404, person=person, thread_id=thread_id)
    if outcome == "replied":  # drawn after the transaction: one connection at a time on SQLite
        return await _thread_page(
            request, person, thread_id, status=409, draft=draft,
            notice="Someone else replied since you opened this thread (see below). Send yours too if you still want to.",
        )
    if outcome == "reused":  # Back, edit, send again: the form's first text went; this one did not
        return await _thread_page(
            request, person, thread_id, status=409, draft=Draft(body[:MAX_BODY]),
            error="This form already sent a different reply (see below), so this text was not sent. "
                  "Send it now as a new reply if you still want it to go.",
        )
    if isinstance(outcome, Refusal):
        return await _thread_page(request, person, thread_id, status=422, error=outcome.reason, draft=draft)
    rt.committed()
    return _back(thread_id, "sent")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a reply was not sent (shown on the page)."""

    reason: str


def web_key(person: Person, key: str) -> str | None:
    """The idempotency key of a reply form: the person's own, apart from the API's clients'."""
    return f"web:{person.user_id}:{key}" if key else None


async def _send(
    rt: Runtime, person: Person, thread_id: str, form: dict[str, str], body: str, key: str
) -> Literal["sent", "missing", "replied", "reused"] | Refusal:
    """Send the reply in one transaction: `sent` (now, or by this form before), `missing` (no
    such thread), `replied` (someone else did since the page was read, and this is not a
    deliberate resend), `reused` (this form sent another text before), or why not. The
    contact is locked first, so two people answering at once take turns: the second sees the
    first's reply."""
    ws, idempotency_key = person.workspace_id, web_key(person, key)
    async with rt.db.transaction() as conn:
        thread = await store.get(conn, ws, thread_id)
        if thread is None:
            return "missing"
        contact = await contact_store.get(conn, ws, thread.contact_id)
        if contact is None or not contact.phone:
            return Refusal("This contact has no phone number to answer.")
        await flow_store.lock_contact(conn, ws, contact.id)
        earlier = await message_store.by_idempotency_keys(conn, ws, [idempotency_key]) if idempotency_key else {}
        if idempotency_key in earlier:
            return "sent" if earlier[idempotency_key].body == body else "reused"
        if form.get("anyway") != "1" and await _replied_since(conn, ws, contact.id, form.get("last_seen", "")):
            return "replied"
        try:
            await answers.answer(conn, rt.acceptance, thread, contact.phone, body, idempotency_key, rt.now())
        except InputError as exc:
            return Refusal(f"{exc.field}: {exc.detail}" if exc.field else exc.detail)
    return "sent"


async def _replied_since(conn: AsyncConnection, ws: str, contact_id: str, last_seen: str) -> bool:
    """A text went to the contact after the message the sender's page ended with."""
    latest = await message_store.thread(conn, ws, contact_id, limit=20)
    return any(m.direction == "outbound" and m.id > last_seen for m in latest) if last_seen else False


@router.post("/inbox/{thread_id}/notes")
async def add_note(thread_id: str, request: Request, person: Annotated[Person, Depends(acting)]) -> Response:
    form = await _form(request)
    body = form.get("body", "")
    if not body.strip() or len(body) > MAX_BODY:
        detail = "Write the note first." if not body.strip() else f"A note is at most {MAX_BODY} characters."
        return await _thread_page(request, person, thread_id, status=422, error=detail)
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        thread = await store.get(conn, person.workspace_id, thread_id)
        if thread is None:
            return render(request, "inbox_missing.html", status=404, person=person, thread_id=thread_id)
        await store.add_note(conn, person.workspace_id, thread.id, person.user_id, body, rt.now())
        await store.touch(conn, thread.id, rt.now())
    return _back(thread_id, "noted")


@router.post("/inbox/{thread_id}/assign")
async def assign(thread_id: str, request: Request, person: Annotated[Person, Depends(acting)]) -> Response:
    form = await _form(request)
    wanted = form.get("user_id", "")
    user_id = person.user_id if wanted == "me" else wanted or None
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        thread = await store.get(conn, person.workspace_id, thread_id)
        if thread is None:
            return render(request, "inbox_missing.html", status=404, person=person, thread_id=thread_id)
        if user_id is not None and user_id not in {m.id for m in await store.team(conn, person.workspace_id)}:
            error: str | None = "Threads go to an agent or admin of this workspace: choose one from the list."
        else:
            error = None
            await store.assign(conn, thread.id, user_id, rt.now())
    if error:
        return await _thread_page(request, person, thread_id, status=422, error=error)
    return RedirectResponse(f"/inbox/{thread_id}", status_code=303)


@router.post("/inbox/{thread_id}/close")
async def close(thread_id: str, request: Request, person: Annotated[Person, Depends(acting)]) -> Response:
    """Close the thread: a flow waiting on it goes on or ends, as its hand-off step says."""
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        thread = await store.get(conn, person.workspace_id, thread_id)
        if thread is None:
            return render(request, "inbox_missing.html", status=404, person=person, thread_id=thread_id)
        await rt.flows.close_thread(conn, person.workspace_id, thread, rt.now())
    rt.flows_moved()
    return _back(thread_id, "closed")
