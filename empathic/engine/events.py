"""Events from business systems: upsert the contact, fire the event type's triggers.

A trigger texts the contact; where its template has an email variant and an smtp channel
serves the topic, the contact's channel preference for the topic may send the email too
(`both`) or instead (`email`), and a `[fallback]` topic emails a contact without a number
and records the email a text becomes if it fails for good (core.fallback, engine.fallback).

An event is all or nothing: if any trigger's template cannot render (a variable the event
lacks), nothing is stored and the caller gets the reason, never a text with a hole in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.errors import InputError
from empathic.core.ids import new_id
from empathic.core.json import Json
from empathic.core.phones import InvalidPhoneNumber, normalize, timezone_for
from empathic.core.fallback import plan as fallback_plan
from empathic.core.preferences import NO_PREFERENCES, Preferences
from empathic.core.templates import Email, TemplateError
from empathic.core.limits import ATTRIBUTES_LIMIT, TooLarge, check_size
from empathic.engine import fallback, outbox
from empathic.engine.catalog import Catalog
from empathic.engine.gate import stored_preferences
from empathic.engine.runs import Flows, RunError
from empathic.store import contacts as contact_store
from empathic.store import events as store
from empathic.store.flows import Run
from empathic.store import messages as message_store
from empathic.store import preferences as preference_store


class EventError(InputError):
    """An event we cannot take in: which field, and why."""


@dataclass(frozen=True)
class ContactInput:
    phone: str | None = None
    email: str | None = None
    timezone: str | None = None
    locale: str | None = None
    region: str | None = None
    attributes: Json = field(default_factory=dict)


@dataclass(frozen=True)
class EventInput:
    type: str
    contact: ContactInput
    data: Json
    idempotency_key: str | None = None


async def ingest(
    conn: AsyncConnection,
    workspace_id: str,
    event: EventInput,
    catalog: Catalog,
    acceptance: outbox.Acceptance,
    now: datetime,
    flows: Flows | None = None,
) -> Json:
    if event.idempotency_key:
        seen = await store.by_key(conn, workspace_id, event.idempotency_key)
        if seen:
            return await _view(conn, seen, replayed=True)

    contact = await upsert_contact(conn, workspace_id, event.contact, acceptance.default_region, now)
    event_id = new_id("ev")
    scope_contact = contact_store.to_view(contact)
    scope_event = {"id": event_id, "type": event.type, "data": event.data}
    address = fallback.usable_email(contact)
    choices: Preferences | None = None  # the contact's, read when an email is possible
    requests: list[outbox.MessageRequest] = []
    fallbacks: list[tuple[int, Email]] = []  # (index in requests of a text, the email it becomes)
    skipped: list[dict[str, str]] = []
    for trigger in await catalog.triggers_for(conn, workspace_id, event.type):
        template = await catalog.template(conn, workspace_id, trigger.template)
        if template is None:
            raise EventError("type", f"trigger {trigger.name!r} uses template {trigger.template!r}, which does not exist")
        variant = catalog.email(trigger.template)
        emailable = bool(address and variant and fallback.can_email(acceptance.router, trigger.topic))
        if emailable and choices is None:
            stored = await preference_store.get(conn, workspace_id, contact.id)
            choices = stored_preferences(stored, contact.id) if stored else NO_PREFERENCES
        plan = fallback_plan(
            preference=choices.channel_for(trigger.topic) if emailable and choices else None,
            phone=bool(contact.phone), email=emailable, fallback=trigger.topic in catalog.project.fallback,
        )
        if plan.nothing:
            skipped.append({"trigger": trigger.name, "reason": "contact_has_no_phone"})
            continue
        try:
            body = template.render(contact=scope_contact, event=scope_event)
            email = None  # rendered only when it may go: an email never sent cannot refuse the event
            if variant is not None and (plan.email or plan.fallback):
                email = variant.render(body, contact=scope_contact, event=scope_event)
        except TemplateError as exc:
            raise EventError("data", f"trigger {trigger.name!r}: {exc}") from None
        if plan.sms:
            if plan.fallback and email is not None:
                fallbacks.append((len(requests), email))
            assert contact.phone is not None  # a plan texts only a contact with a number
            requests.append(outbox.MessageRequest(
                to=contact.phone, body=body, topic=trigger.topic, template=trigger.template, event_id=event_id,
                trigger=trigger.name, idempotency_key=f"{event_id}:{trigger.name}",
            ))
        if plan.email:
            assert email is not None and address is not None  # a plan emails only when it can
            requests.append(outbox.MessageRequest(
                to=address, body=email.text, subject=email.subject, html=email.html, contact_id=contact.id,
                topic=trigger.topic, template=trigger.template, event_id=event_id,
                trigger=trigger.name, idempotency_key=f"{event_id}:{trigger.name}:email",
            ))
    try:
        sent = await acceptance.submit(conn, workspace_id, requests, now)
    except outbox.SubmitError as exc:
        raise EventError("data", f"a triggered message cannot be sent: {exc.detail}") from None
    await fallback.remember(conn, workspace_id, [(sent[i], email, "topic") for i, email in fallbacks], now)
    message_ids = [m.id for m in sent]  # and those the flows it starts send at once
    row = {
        "id": event_id,
        "workspace_id": workspace_id,
        "type": event.type,
        "contact_id": contact.id,
        "data": event.data,
        "idempotency_key": event.idempotency_key,
        "message_ids": message_ids,
        "created_at": now,
    }
    runs: list[Run] = []
    if flows is not None:
        try:
            started = await flows.start_for_event(conn, workspace_id, contact, scope_event, now)
        except RunError as exc:
            raise EventError(exc.field, exc.detail) from None
        for each in started:
            run = each.run
            if run.status == "failed":  # e.g. a text of its first step lacks event data: refuse the event
                raise EventError("data", f"flow {run.flow!r}: {run.error}")
            runs.append(run)
            message_ids += each.sent
    await store.add(conn, row)
    view = await _view(conn, row, replayed=False)
    view["skipped"] = skipped
    view["runs"] = [{"id": r.id, "flow": r.flow, "status": r.status} for r in runs]
    return view


async def upsert_contact(
    conn: AsyncConnection, workspace_id: str, given: ContactInput, default_region: str | None, now: datetime
) -> contact_store.Contact:
    """The event's contact, created or brought up to date; a number without `+` is read in
    `given.region`, else `default_region`."""
    if not given.phone and not given.email:
        raise EventError("contact", "needs a phone or an email")
    phone = None
    if given.phone:
        try:
            phone = normalize(given.phone, given.region or default_region)
        except InvalidPhoneNumber as exc:
            raise EventError("contact.phone", str(exc)) from None
    found = None
    if phone:
        found = (await contact_store.by_phones(conn, workspace_id, [phone])).get(phone)
    elif given.email:
        matches = await contact_store.page(conn, workspace_id, limit=1, email=given.email)
        found = matches[0] if matches else None
    if found is None:
        return await contact_store.create(
            conn, workspace_id, now, phone=phone, email=given.email, locale=given.locale,
            timezone=given.timezone, attributes=given.attributes,
        )
    changes: contact_store.ContactChanges = {}
    if given.email and given.email != found.email:
        changes["email"] = given.email
    if given.locale and given.locale != found.locale:
        changes["locale"] = given.locale
    if given.timezone and given.timezone != found.timezone:
        changes["timezone"] = given.timezone
    if phone and not found.phone:
        changes["phone"] = phone
        changes.setdefault("timezone", found.timezone or timezone_for(phone))
    if given.attributes:
        attributes = changes["attributes"] = {**found.attributes, **given.attributes}
        try:
            check_size(attributes, ATTRIBUTES_LIMIT, "attributes, once merged,")
        except TooLarge as exc:
            raise EventError("contact.attributes", str(exc)) from None
    if changes:
        await contact_store.update_fields(conn, workspace_id, found.id, now, changes)
        found = replace(found, **changes, updated_at=now)
    return found


async def _view(conn: AsyncConnection, row: dict[str, Any], *, replayed: bool) -> Json:
    sent = await message_store.read(conn, row["message_ids"])
    order = {mid: i for i, mid in enumerate(row["message_ids"])}
    sent.sort(key=lambda m: order[m.id])
    return {
        "id": row["id"],
        "type": row["type"],
        "contact_id": row["contact_id"],
        "replayed": replayed,
        "messages": [
            {k: message_store.to_view(m)[k] for k in ("id", "to", "status", "segments", "encoding", "body", "template")}
            for m in sent
        ],
    }
