"""/v1/contacts: create, read, update, list, erase, export; each contact's consent ledger and preferences."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.api import paging
from empathic.api.auth import workspace
from empathic.api.fields import CLOCK, DIGITS, PHONE_OR_EMAIL, PHONE_RULE, TIME_ZONE_RULE, WHOLE, Phone, Region, TimeZone
from empathic.engine.runtime import runtime_of
from empathic.api.problems import Problem, beyond_schema
from empathic.api.inputs import Attributes
from empathic.core import links
from empathic.core.consent import ALL_TOPICS, ConsentAction
from empathic.core.errors import InputError
from empathic.core.json import Json
from empathic.core.phones import normalize, timezone_for
from empathic.core.preferences import DAY_GROUPS, LANGUAGES, Preferences
from empathic.core.preferences import parse as parse_preferences
from empathic.core.topics import TopicKind, UnknownTopic
from empathic.core.limits import ATTRIBUTES_LIMIT, TooLarge, check_size
from empathic.engine import consents as consent_changes
from empathic.engine.runtime import Runtime
from empathic.store import consent as consent_store
from empathic.store import contacts as store
from empathic.store import preferences as preference_store
from empathic.store import privacy, suppressions

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])
Workspace = Annotated[str, Depends(workspace)]


def valid_timezone(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError("timezone", "unknown time zone",
                         message=f"timezone: {name!r} is not an IANA time zone (e.g. Europe/Paris)") from None
    return name


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": PHONE_OR_EMAIL})
    phone: Phone | None = None
    email: str | None = Field(None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    locale: str | None = Field(None, max_length=35)
    timezone: TimeZone | None = None
    region: Region | None = None
    attributes: Attributes = Field(default_factory=dict)


class ContactPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: Phone | None = None
    email: str | None = Field(None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    locale: str | None = Field(None, max_length=35)
    timezone: TimeZone | None = None
    region: Region | None = None
    attributes: Attributes | None = Field(None, description="merged; a null value removes a key")


async def _phone_taken(conn: AsyncConnection, ws: str, phone: str, other_than: str | None = None) -> None:
    found = (await store.by_phones(conn, ws, [phone])).get(phone)
    if found and found.id != other_than:
        raise Problem(409, f"Contact {found.id} already has phone {phone}.", extra={"contact_id": found.id})


CONTACT_RULES = {"phone": PHONE_RULE, "timezone": TIME_ZONE_RULE}


@router.post("", status_code=201, responses=beyond_schema(CONTACT_RULES))
async def create_contact(payload: ContactIn, request: Request, ws: Workspace) -> Json:
    rt = runtime_of(request)
    if not payload.phone and not payload.email:
        raise InputError("phone", "required without email", message="A contact needs a phone or an email.")
    phone = normalize(payload.phone, payload.region or rt.settings.default_region) if payload.phone else None
    async with rt.db.transaction() as conn:
        if phone:
            await _phone_taken(conn, ws, phone)
        contact = await store.create(
            conn, ws, rt.now(), phone=phone, email=payload.email, locale=payload.locale,
            timezone=valid_timezone(payload.timezone), attributes=payload.attributes,
        )
    return store.to_view(contact)


@router.get("/{contact_id}")
async def get_contact(contact_id: str, request: Request, ws: Workspace) -> Json:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        contact = await store.get(conn, ws, contact_id)
    if contact is None:
        raise Problem(404, f"No contact {contact_id!r} in this workspace.")
    return store.to_view(contact)


@router.patch("/{contact_id}", responses=beyond_schema(CONTACT_RULES))
async def update_contact(contact_id: str, payload: ContactPatch, request: Request, ws: Workspace) -> Json:
    rt = runtime_of(request)
    given = payload.model_dump(exclude_unset=True)
    region = given.pop("region", None)
    async with rt.db.transaction() as conn:
        contact = await store.get(conn, ws, contact_id)
        if contact is None:
            raise Problem(404, f"No contact {contact_id!r} in this workspace.")
        changes: store.ContactChanges = {}
        if "phone" in given:
            phone = normalize(given["phone"], region or rt.settings.default_region) if given["phone"] else None
            if phone:
                await _phone_taken(conn, ws, phone, other_than=contact_id)
            changes["phone"] = phone
            if phone and "timezone" not in given and not contact.timezone:
                changes["timezone"] = timezone_for(phone)
        if "email" in given:
            changes["email"] = given["email"]
        if "locale" in given:
            changes["locale"] = given["locale"]
        if "timezone" in given:
            changes["timezone"] = valid_timezone(given["timezone"])
        if given.get("attributes") is not None:
            merged = {**contact.attributes, **given["attributes"]}
            attributes = changes["attributes"] = {k: v for k, v in merged.items() if v is not None}
            try:
                check_size(attributes, ATTRIBUTES_LIMIT, "attributes, once merged,")
            except TooLarge as exc:
                raise InputError("attributes", str(exc), message=f"Some fields are invalid: attributes: {exc}") from None
        if changes:
            await store.update_fields(conn, ws, contact_id, rt.now(), changes)
            new_phone = changes.get("phone")
            if new_phone and new_phone != contact.phone:
                await suppressions.reapply(conn, ws, {new_phone: contact_id}, rt.now())
        updated = await store.get(conn, ws, contact_id)
    assert updated is not None
    return store.to_view(updated)


@router.delete("/{contact_id}", status_code=204)
async def erase_contact(contact_id: str, request: Request, ws: Workspace) -> Response:
    """Erase the contact and everything about them (messages, events, consent, preferences,
    inbox thread). A number that had opted out stays suppressed (as a salted hash)."""
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        try:
            if not await privacy.erase(conn, ws, contact_id, rt.now()):
                raise Problem(404, f"No contact {contact_id!r} in this workspace.")
        except privacy.MessageInFlight as exc:
            raise Problem(409, f"Message {exc.args[0]} to this contact is being handed to the carrier; "
                               "erase again once it is sent (a second or two).") from None
    return Response(status_code=204)


@router.get("/{contact_id}/export")
async def export_contact(contact_id: str, request: Request, ws: Workspace) -> Json:
    """Everything held about the contact, as one JSON document (a data subject access request)."""
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        data = await privacy.export(conn, ws, contact_id)
    if data is None:
        raise Problem(404, f"No contact {contact_id!r} in this workspace.")
    return {"exported_at": rt.now().isoformat(), **data}


@router.get("/{contact_id}/preferences")
async def get_preferences(contact_id: str, request: Request, ws: Workspace) -> Json:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        if await store.get(conn, ws, contact_id) is None:
            raise Problem(404, f"No contact {contact_id!r} in this workspace.")
        data = await preference_store.get(conn, ws, contact_id)
    return {"contact_id": contact_id, **parse_preferences(data or {}).to_data()}


class HoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_: str = Field(alias="from", pattern=CLOCK, examples=["21:00"])
    to: str = Field(pattern=CLOCK, examples=["08:00"])
    days: Literal[tuple(DAY_GROUPS)] = "every_day"  # type: ignore[valid-type]


class QuietHoursIn(HoursIn):
    days: Literal["every_day"] = "every_day"


class PreferencesIn(BaseModel):
    """core.preferences's shape; what crosses fields it checks itself (the 422's rules)."""
    model_config = ConfigDict(extra="forbid")
    channels: dict[str, Literal["sms", "email", "both"]] = Field(
        default_factory=dict, json_schema_extra={"x-topics": "choice"}, description="topic -> where its messages go")
    email_hours: HoursIn | None = Field(None, description="when emails may come (no crossing midnight)")
    quiet_hours: QuietHoursIn | None = Field(None, description="when no text may come, every day")
    language: Literal[LANGUAGES] | None = None  # type: ignore[valid-type]
    max_marketing_per_week: Annotated[int, Field(ge=1, le=100), WHOLE] | None = None


@router.put("/{contact_id}/preferences", responses=beyond_schema({
    "email_hours": "from before to, and some hour left for texts alongside the quiet hours",
    "quiet_hours": "from and to differ",
}))
async def put_preferences(contact_id: str, payload: PreferencesIn, request: Request, ws: Workspace) -> Json:
    """Replace the contact's preferences; they apply to the next message the gate sees."""
    rt = runtime_of(request)
    prefs = checked_preferences(payload.model_dump(by_alias=True, exclude_none=True), rt)
    async with rt.db.transaction() as conn:
        if await store.get(conn, ws, contact_id) is None:
            raise Problem(404, f"No contact {contact_id!r} in this workspace.")
        await preference_store.put(conn, ws, contact_id, prefs.to_data(), rt.now())
    return {"contact_id": contact_id, **prefs.to_data()}


def checked_preferences(payload: Json, rt: Runtime) -> Preferences:
    return parse_preferences(payload, rt.project.topics.kinds)  # a PreferencesError is answered 422


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    valid_days: Annotated[int, Field(ge=1, le=366), WHOLE] = Field(default=30, description="How long the link works")


@router.post("/{contact_id}/preference-link", status_code=201)
async def preference_link(contact_id: str, request: Request, ws: Workspace, payload: LinkIn | None = None) -> Json:
    """A signed link to the contact's preference page (`/p/{token}`), to put in a message."""
    rt = runtime_of(request)
    expires_at = rt.now() + timedelta(days=(payload or LinkIn()).valid_days)
    async with rt.db.transaction() as conn:
        if await store.get(conn, ws, contact_id) is None:
            raise Problem(404, f"No contact {contact_id!r} in this workspace.")
        token = links.sign(await privacy.link_key(conn, ws), ws, contact_id, expires_at)
    base = rt.settings.public_url or str(request.base_url)
    return {"url": f"{base.rstrip('/')}/p/{token}", "token": token, "expires_at": expires_at.isoformat()}


@router.get("", responses=beyond_schema({"phone": PHONE_RULE}))
async def list_contacts(
    request: Request,
    ws: Workspace,
    phone: Phone | None = None,
    email: str | None = None,
    limit: Annotated[int, Field(ge=1, le=500), DIGITS] = 50,
    cursor: str | None = None,
) -> Json:
    rt = runtime_of(request)
    wanted_phone = normalize(phone, rt.settings.default_region) if phone else None
    async with rt.db.transaction() as conn:
        rows = await store.page(conn, ws, limit=paging.fetch(limit), cursor=cursor, phone=wanted_phone, email=email)
    page = paging.Page.of(rows, limit, lambda c: c.id)
    return page.to_json([store.to_view(c) for c in page.rows])


@router.get("/{contact_id}/consents")
async def consents(contact_id: str, request: Request, ws: Workspace) -> Json:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        if await store.get(conn, ws, contact_id) is None:
            raise Problem(404, f"No contact {contact_id!r} in this workspace.")
        return await _consents_view(conn, rt, ws, contact_id)


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    topic: str = Field(max_length=64, json_schema_extra={"x-topics": "consent"},
                       description='A topic name, or "*" for every non-essential topic')
    channel: Literal["sms", "email"] = "sms"
    action: ConsentAction
    source: Literal["api", "web_form", "import", "agent"] = "api"
    evidence: str | None = Field(None, max_length=500, description="What shows the person's choice (a form id, a call note)")
    actor: str | None = Field(None, max_length=200, description="Who records it; defaults to the API key's workspace")


@router.post("/{contact_id}/consents", status_code=201, responses=beyond_schema({
    "action": "`requested` (or an `api` grant under double opt-in) needs a marketing topic on sms",
}))
async def record_consent(contact_id: str, payload: ConsentIn, request: Request, ws: Workspace) -> Json:
    """Append to the ledger (never an update); it takes effect before the next send.

    A marketing subscription from `api` (action `granted` or `requested`) is double opt-in:
    it is recorded as `requested` and the person gets one text asking for a yes; consent
    counts once they answer. Grants from `web_form`, `import` or `agent` record consent the
    business already collected, with its evidence.
    """
    rt = runtime_of(request)
    kind = None
    if payload.topic != ALL_TOPICS:
        try:
            kind = rt.project.topics.kind(payload.topic)
        except UnknownTopic as exc:
            raise InputError("topic", "unknown topic", message=f"topic: {exc}") from None
        if kind.essential:
            raise InputError("topic", "essential topic",
                             message=f"topic: {payload.topic!r} is essential ({kind.value}); consent does not apply to it")
    double_opt_in = payload.action is ConsentAction.REQUESTED or (
        payload.action is ConsentAction.GRANTED and kind is TopicKind.MARKETING and payload.source == "api"
        and rt.project.sender.double_opt_in
    )
    if double_opt_in and (kind is not TopicKind.MARKETING or payload.channel != "sms"):
        raise InputError("action", "requested needs a marketing topic on sms",
                         message="action: a subscription request asks for a yes by text, for a marketing topic")
    now = rt.now()
    actor = payload.actor or f"api:{ws}"
    async with rt.db.transaction() as conn:
        contact = await store.get(conn, ws, contact_id)
        if contact is None:
            raise Problem(404, f"No contact {contact_id!r} in this workspace.")
        if double_opt_in:
            state = (await consent_store.states(conn, ws, [contact_id]))[contact_id]
            if not state.granted(payload.topic, "sms"):
                await consent_changes.request_subscription(
                    conn, ws, contact, payload.topic, source=payload.source, actor=actor, evidence=payload.evidence,
                    now=now, sender=rt.project.sender, acceptance=rt.acceptance,
                )
        else:
            await consent_changes.record(
                conn, ws, contact, topic=payload.topic, channel=payload.channel, action=payload.action,
                source=payload.source, actor=actor, evidence=payload.evidence, now=now,
            )
        view = await _consents_view(conn, rt, ws, contact_id)
    rt.committed()
    return view


async def _consents_view(conn: AsyncConnection, rt: Runtime, ws: str, contact_id: str) -> Json:
    state = (await consent_store.states(conn, ws, [contact_id]))[contact_id]
    history = await consent_store.history(conn, ws, contact_id)
    topics = {t.topic: {"sms": t.sms, "email": t.email} for t in consent_store.by_topic(state, rt.project.topics.kinds)}
    return {
        "contact_id": contact_id,
        "sms": {"opted_out_of_all": state.opted_out_of_all("sms")},
        "email": {"opted_out_of_all": state.opted_out_of_all("email")},
        "topics": topics,
        "history": history,
    }
