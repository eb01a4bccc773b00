"""Contacts: search and list, one contact's page, export and erase.

Every role reads (a viewer too); exporting hands out personal data, so it takes an agent or an
admin; erasing takes an admin and the contact's number (or email address) typed exactly. The
export is the API's document (`store.privacy.export`), and erasing is the API's own call
(`store.privacy.erase`), so an opted-out number stays suppressed however it was erased.
Times show in the contact's zone; `static/contacts.js` adds the viewer's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.hours import format_clock
from empathic.core.json import Json
from empathic.core.phones import timezone_for
from empathic.core.policy import REASONS
from empathic.core.preferences import PreferencesError
from empathic.core.preferences import parse as parse_preferences
from empathic.engine.runtime import Runtime, runtime_of
from empathic.store import consent as consent_store
from empathic.store import contact_pages
from empathic.store import contacts as contact_store
from empathic.store import messages as message_store
from empathic.store import preferences as preference_store
from empathic.store import privacy
from empathic.store.contact_pages import NAME_ATTRIBUTES, ContactSearch
from empathic.store.contacts import Contact
from empathic.web.auth import Person, acting, administering, signed_in
from empathic.web.pages import render

router = APIRouter(include_in_schema=False)
PAGE = 50  # contacts, messages or runs on one page
SignedIn = Annotated[Person, Depends(signed_in)]
ERASED_NOTICE = "The contact and everything held about them was erased."
LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "pt": "Portuguese", "it": "Italian"}
DAYS = {"every_day": "every day", "weekdays": "on weekdays", "weekend": "at weekends"}
CHANNEL_CHOICES = {"sms": "text", "email": "email", "both": "text and email"}


@dataclass(frozen=True, slots=True)
class Moment:
    """An instant as a page shows it: in the contact's zone, and (for the script) in UTC."""

    utc: str  # ISO 8601
    local: str  # in the contact's zone, with the zone's abbreviation

    @classmethod
    def of(cls, at: datetime, zone: ZoneInfo) -> Moment:
        return cls(at.astimezone(UTC).isoformat(), at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"))


@dataclass(frozen=True, slots=True)
class MessageLine:
    id: str
    at: Moment
    direction: str
    channel: str | None
    to: str
    sender: str | None
    topic: str | None
    status: str
    reason: str | None
    reason_text: str | None  # the gate's sentence for its reason, where it has one
    until: Moment | None  # a deferred message: when it may go
    subject: str | None
    body: str
    redacted: bool


@dataclass(frozen=True, slots=True)
class RunLine:
    id: str
    flow: str
    status: str
    waiting: str | None
    trigger: str
    outcome: str | None
    error: str | None
    started: Moment
    ended: Moment | None


@dataclass(frozen=True, slots=True)
class LedgerLine:
    at: Moment
    topic: str
    channel: str
    action: str
    source: str
    actor: str
    evidence: str | None


@dataclass(frozen=True, slots=True)
class Listed:
    """A contact as the list shows it."""

    id: str
    name: str | None
    phone: str | None
    email: str | None
    added: Moment


def display_name(contact: Contact) -> str | None:
    """The contact's name from their attributes (first and last, else `name`), if any."""
    values = {key: contact.attributes.get(key) for key in NAME_ATTRIBUTES}
    parts = [str(v).strip() for v in (values["first_name"], values["last_name"]) if v not in (None, "")]
    if parts:
        return " ".join(parts)
    return str(values["name"]) if values["name"] not in (None, "") else None


def zone_of(contact: Contact) -> ZoneInfo:
    """The contact's own zone, else their number's (when it has one), else UTC."""
    for name in (contact.timezone, timezone_for(contact.phone) if contact.phone and contact.phone.startswith("+") else None):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def confirmation_of(contact: Contact) -> str:
    """What an admin types to confirm erasing the contact: their number, else their email address."""
    return contact.phone or contact.email or contact.id


# -- the list ------------------------------------------------------------------------------------


@router.get("/contacts", response_class=HTMLResponse)
async def list_contacts(
    request: Request, person: SignedIn, q: str = "", after: str | None = None, erased: str | None = None
) -> HTMLResponse:
    rt = runtime_of(request)
    wanted = ContactSearch.read(q, rt.settings.default_region)
    async with rt.db.transaction() as conn:
        found = await contact_pages.search(conn, person.workspace_id, wanted, limit=PAGE + 1, cursor=after or None)
    shown = found[:PAGE]
    utc = ZoneInfo("UTC")
    rows = [Listed(c.id, display_name(c), c.phone, c.email, Moment.of(c.created_at, utc)) for c in shown]
    more = len(found) > PAGE
    return render(
        request, "contacts.html", person=person, q=" ".join(q.split()), searched=wanted.given, contacts=rows,
        next_url=f"/contacts?{urlencode({'q': q, 'after': shown[-1].id})}" if more else None,
        first_url=f"/contacts?{urlencode({'q': q})}" if after else None,
        notice=ERASED_NOTICE if erased == "1" else None,
    )


# -- one contact ---------------------------------------------------------------------------------


@router.get("/contacts/{contact_id}", response_class=HTMLResponse)
async def show_contact(
    contact_id: str, request: Request, person: SignedIn,
    messages_after: str | None = None, runs_after: str | None = None,
) -> HTMLResponse:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        contact = await contact_store.get(conn, person.workspace_id, contact_id)
        if contact is None:
            return _missing(request, person, contact_id)
        context = await _contact_page(conn, rt, person, contact, messages_after, runs_after)
    return render(request, "contact.html", **context)


@router.get("/contacts/{contact_id}/export")
async def export_contact(contact_id: str, request: Request, person: Annotated[Person, Depends(acting)]) -> Response:
    """Everything held about the contact, the API's export document, as a download."""
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        data = await privacy.export(conn, person.workspace_id, contact_id)
    if data is None:
        return _missing(request, person, contact_id)
    document: Json = {"exported_at": rt.now().isoformat(), **data}
    return Response(
        json.dumps(document, ensure_ascii=False, indent=2), media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="contact-{contact_id}.json"', "Cache-Control": "no-store"},
    )


@router.post("/contacts/{contact_id}/erase", response_class=HTMLResponse)
async def erase_contact(
    contact_id: str, request: Request, person: Annotated[Person, Depends(administering)]
) -> Response:
    """Erase once the admin typed the contact's number (or email address) exactly; else nothing."""
    rt = runtime_of(request)
    typed = (await request.form()).get("confirm")
    typed = typed.strip() if isinstance(typed, str) else ""
    async with rt.db.transaction() as conn:
        contact = await contact_store.get(conn, person.workspace_id, contact_id)
        if contact is None:
            return _missing(request, person, contact_id)
        expected = confirmation_of(contact)
        problem = None
        if typed != expected:
            what = "number" if contact.phone else "email address" if contact.email else "id"
            problem = (f"Nothing was erased: to confirm, type the contact's {what} exactly as shown ({expected})."
                       if typed else f"Nothing was erased: type the contact's {what} ({expected}) to confirm.")
        else:
            try:
                await privacy.erase(conn, person.workspace_id, contact_id, rt.now())
            except privacy.MessageInFlight:
                problem = ("Nothing was erased: a message to this contact is being handed to the carrier right now. "
                           "Try again in a few seconds.")
        if problem is not None:
            context = {**await _contact_page(conn, rt, person, contact, None, None), "erase_error": problem, "typed": typed}
            return render(request, "contact.html", status=409 if typed == expected else 422, **context)
    return RedirectResponse("/contacts?erased=1", status_code=303)


def _missing(request: Request, person: Person, contact_id: str) -> HTMLResponse:
    return render(request, "contact_missing.html", status=404, person=person, contact_id=contact_id)


async def _contact_page(
    conn: AsyncConnection, rt: Runtime, person: Person, contact: Contact,
    messages_after: str | None, runs_after: str | None,
) -> Json:
    """What contact.html shows of one contact (the template's context)."""
    ws, zone = person.workspace_id, zone_of(contact)
    state = (await consent_store.states(conn, ws, [contact.id]))[contact.id]
    ledger = await consent_store.entries(conn, ws, contact.id)
    stored_preferences = await preference_store.get(conn, ws, contact.id)
    messages = await message_store.page(conn, ws, limit=PAGE + 1, cursor=messages_after or None, contact_id=contact.id)
    histories = await message_store.histories(conn, [m.id for m in messages[:PAGE] if m.status == "deferred"])
    runs = await contact_pages.runs(conn, ws, contact.id, limit=PAGE + 1, cursor=runs_after or None)
    thread_id = await contact_pages.thread_id(conn, ws, contact.id)

    def until(message_id: str) -> Moment | None:
        waits = [e.until for e in histories.get(message_id, []) if e.until is not None]
        return Moment.of(waits[-1], zone) if waits else None

    here = f"/contacts/{contact.id}"
    return {
        "person": person,
        "contact": contact,
        "name": display_name(contact),
        "zone": zone.key,
        "created": Moment.of(contact.created_at, zone),
        "updated": Moment.of(contact.updated_at, zone),
        "attributes": [(key, _shown(value)) for key, value in sorted(contact.attributes.items())],
        "thread_id": thread_id,
        "opted_out_of_all": {channel: state.opted_out_of_all(channel) for channel in ("sms", "email")},
        "topics": consent_store.by_topic(state, rt.project.topics.kinds),
        "ledger": [
            LedgerLine(Moment.of(e.at, zone), e.topic, e.channel, e.action, e.source, e.actor, e.evidence)
            for e in reversed(ledger)  # newest first, like every list here
        ],
        "preferences": _readable_preferences(stored_preferences),
        "messages": [
            MessageLine(
                m.id, Moment.of(m.created_at, zone), m.direction, m.channel, m.to_addr, m.from_addr, m.topic, m.status,
                m.reason, REASONS.get(m.reason or ""), until(m.id) if m.status == "deferred" else None, m.subject,
                m.body, m.redacted_at is not None,
            )
            for m in messages[:PAGE]
        ],
        "messages_next": f"{here}?{urlencode({'messages_after': messages[PAGE - 1].id})}#messages"
        if len(messages) > PAGE else None,
        "messages_paged": bool(messages_after),
        "runs": [
            RunLine(r.id, r.flow, r.status, r.waiting, r.trigger, r.outcome, r.error, Moment.of(r.created_at, zone),
                    Moment.of(r.ended_at, zone) if r.ended_at else None)
            for r in runs[:PAGE]
        ],
        "runs_next": f"{here}?{urlencode({'runs_after': runs[PAGE - 1].id})}#runs" if len(runs) > PAGE else None,
        "runs_paged": bool(runs_after),
        "confirmation": confirmation_of(contact),
        "erase_error": None,
        "typed": "",
    }


def _shown(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _readable_preferences(data: Json | None) -> list[tuple[str, str]] | None:
    """The contact's preferences in words, one (what, choice) a line; None when they set none."""
    if not data:
        return None
    try:
        prefs = parse_preferences(data)
    except PreferencesError as exc:  # stored by an older release, say: show what is there
        return [("Stored preferences", f"{_shown(data)} (not readable: {exc})")]
    lines = [(f"Channel for {topic}", CHANNEL_CHOICES[choice.value]) for topic, choice in sorted(prefs.channels.items())]
    if prefs.quiet_hours:
        q = prefs.quiet_hours
        lines.append(("Quiet hours", f"no texts from {format_clock(q.start)} to {format_clock(q.end)}, {DAYS[q.days]}"))
    if prefs.email_hours:
        e = prefs.email_hours
        lines.append(("Email hours", f"email rather than texts from {format_clock(e.start)} to {format_clock(e.end)}, "
                                     f"{DAYS[e.days]}"))
    if prefs.language:
        lines.append(("Language", LANGUAGE_NAMES.get(prefs.language, prefs.language)))
    if prefs.max_marketing_per_week is not None:
        lines.append(("Offers at most", f"{prefs.max_marketing_per_week} a week"))
    return lines
