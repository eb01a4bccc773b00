"""Contacts: the people a workspace texts, keyed by E.164 phone (and optionally email).

The repository takes and returns `Contact` records (every column) and makes their JSON view
(`to_view`) in this one place; the send path, which reads only who a number is and their
sticky channel, gets an `Addressee` instead. A contact created for a number on the suppression
list gets its old opt-outs back at once (store.privacy)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TypedDict

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.ids import new_id
from empathic.core.json import Json
from empathic.core.phones import timezone_for
from empathic.store import suppressions
from empathic.store.paging import newest_first
from empathic.store.schema import contacts

@dataclass(frozen=True, slots=True)
class Contact:
    """A stored contact: the `contacts` table's columns, by name."""

    id: str
    workspace_id: str
    phone: str | None  # E.164, or a short code that texted us
    email: str | None
    locale: str | None
    timezone: str | None
    attributes: Json
    channel: str | None  # sticky: the SMS channel their conversation is on
    created_at: datetime
    updated_at: datetime


_COLUMNS = tuple(f.name for f in fields(Contact))


@dataclass(frozen=True, slots=True)
class Addressee:
    """What sending to a number reads of its contact: who they are and their sticky channel
    (two columns, not the whole row: the send path reads it for every text)."""

    id: str
    channel: str | None


class ContactChanges(TypedDict, total=False):
    """The fields an update sets; those left out keep their value."""

    phone: str | None
    email: str | None
    locale: str | None
    timezone: str | None
    attributes: Json


def to_view(contact: Contact) -> Json:
    return {
        "id": contact.id,
        "phone": contact.phone,
        "email": contact.email,
        "locale": contact.locale,
        "timezone": contact.timezone,
        "attributes": contact.attributes,
        "created_at": contact.created_at.isoformat(),
        "updated_at": contact.updated_at.isoformat(),
    }


def _values(contact: Contact) -> dict[str, object]:
    return {name: getattr(contact, name) for name in _COLUMNS}


async def get(conn: AsyncConnection, workspace_id: str, contact_id: str) -> Contact | None:
    row = (
        await conn.execute(
            select(contacts).where(contacts.c.workspace_id == workspace_id, contacts.c.id == contact_id)
        )
    ).mappings().first()
    return Contact(**row) if row else None


async def by_ids(conn: AsyncConnection, workspace_id: str, contact_ids: Iterable[str]) -> dict[str, Contact]:
    ids = sorted(set(contact_ids))
    found: dict[str, Contact] = {}
    for start in range(0, len(ids), 500):
        rows = await conn.execute(
            select(contacts).where(contacts.c.workspace_id == workspace_id, contacts.c.id.in_(ids[start : start + 500]))
        )
        found.update({r["id"]: Contact(**r) for r in rows.mappings()})
    return found


async def by_phones(conn: AsyncConnection, workspace_id: str, phones: Iterable[str]) -> dict[str, Contact]:
    """The contacts with these numbers, by number."""
    wanted = list(set(phones))
    found: dict[str, Contact] = {}
    for start in range(0, len(wanted), 500):
        rows = await conn.execute(
            select(contacts).where(contacts.c.workspace_id == workspace_id, contacts.c.phone.in_(wanted[start : start + 500]))
        )
        found.update({r["phone"]: Contact(**r) for r in rows.mappings()})
    return found


async def addressees_by_phones(conn: AsyncConnection, workspace_id: str, phones: Iterable[str]) -> dict[str, Addressee]:
    """`by_phones`, reading only the two columns sending needs."""
    wanted = list(set(phones))
    found: dict[str, Addressee] = {}
    for start in range(0, len(wanted), 500):
        rows = await conn.execute(
            select(contacts.c.phone, contacts.c.id, contacts.c.channel)
            .where(contacts.c.workspace_id == workspace_id, contacts.c.phone.in_(wanted[start : start + 500]))
        )
        found.update({phone: Addressee(contact_id, channel) for phone, contact_id, channel in rows})
    return found


async def create(
    conn: AsyncConnection,
    workspace_id: str,
    now: datetime,
    *,
    phone: str | None,
    email: str | None = None,
    locale: str | None = None,
    timezone: str | None = None,
    attributes: Json | None = None,
) -> Contact:
    contact = Contact(
        id=new_id("ct"), workspace_id=workspace_id, phone=phone, email=email, locale=locale,
        timezone=timezone or (timezone_for(phone) if phone else None), attributes=dict(attributes or {}),
        channel=None, created_at=now, updated_at=now,
    )
    await conn.execute(insert(contacts), [_values(contact)])
    if phone:
        await suppressions.reapply(conn, workspace_id, {phone: contact.id}, now)
    return contact


async def _create_for_phones(
    conn: AsyncConnection, workspace_id: str, phones: Sequence[str], now: datetime
) -> dict[str, Contact]:
    made = {
        phone: Contact(
            id=new_id("ct"), workspace_id=workspace_id, phone=phone, email=None, locale=None,
            timezone=timezone_for(phone) if phone.startswith("+") else None,  # not short codes
            attributes={}, channel=None, created_at=now, updated_at=now,
        )
        for phone in phones
    }
    if made:
        await conn.execute(insert(contacts), [_values(c) for c in made.values()])
        await suppressions.reapply(conn, workspace_id, {phone: c.id for phone, c in made.items()}, now)
    return made


async def ensure_by_phone(
    conn: AsyncConnection, workspace_id: str, phones: Iterable[str], now: datetime
) -> dict[str, Contact]:
    """The contacts for these numbers, creating the missing ones (one batch each way)."""
    phones = list(phones)
    found = await by_phones(conn, workspace_id, phones)
    found.update(await _create_for_phones(conn, workspace_id, [p for p in dict.fromkeys(phones) if p not in found], now))
    return found


async def ensure_addressees_by_phone(
    conn: AsyncConnection, workspace_id: str, phones: Iterable[str], now: datetime
) -> dict[str, Addressee]:
    """`ensure_by_phone` for the send path: reads only what sending needs (`Addressee`)."""
    phones = list(phones)
    found = await addressees_by_phones(conn, workspace_id, phones)
    made = await _create_for_phones(conn, workspace_id, [p for p in dict.fromkeys(phones) if p not in found], now)
    found.update({phone: Addressee(c.id, c.channel) for phone, c in made.items()})
    return found


async def ensure_by_email(
    conn: AsyncConnection, workspace_id: str, emails: Iterable[str], now: datetime
) -> dict[str, Contact]:
    """The contacts for these email addresses (the oldest where several share one), creating
    the missing ones without a phone."""
    wanted = list(dict.fromkeys(emails))
    found: dict[str, Contact] = {}
    for start in range(0, len(wanted), 500):
        result = await conn.execute(
            select(contacts)
            .where(contacts.c.workspace_id == workspace_id, contacts.c.email.in_(wanted[start : start + 500]))
            .order_by(contacts.c.id.desc())
        )
        found.update({row["email"]: Contact(**row) for row in result.mappings()})  # the oldest is written last
    made = [
        Contact(
            id=new_id("ct"), workspace_id=workspace_id, phone=None, email=email, locale=None, timezone=None,
            attributes={}, channel=None, created_at=now, updated_at=now,
        )
        for email in wanted
        if email not in found
    ]
    if made:
        await conn.execute(insert(contacts), [_values(c) for c in made])
        found.update({c.email: c for c in made if c.email})
    return found


async def set_channel(
    conn: AsyncConnection, workspace_id: str, contact_ids: list[str], channel: str, *, replace: bool = False
) -> None:
    """Make `channel` these contacts' sticky channel: only where they have none yet, or
    (`replace`) wherever it differs."""
    keep = contacts.c.channel.is_(None) if not replace else or_(contacts.c.channel.is_(None), contacts.c.channel != channel)
    for start in range(0, len(contact_ids), 500):
        await conn.execute(
            update(contacts)
            .where(contacts.c.workspace_id == workspace_id, contacts.c.id.in_(contact_ids[start : start + 500]), keep)
            .values(channel=channel)
        )


async def update_fields(
    conn: AsyncConnection, workspace_id: str, contact_id: str, now: datetime, changes: ContactChanges
) -> None:
    await conn.execute(
        update(contacts)
        .where(contacts.c.workspace_id == workspace_id, contacts.c.id == contact_id)
        .values(**changes, updated_at=now)
    )


async def page(
    conn: AsyncConnection,
    workspace_id: str,
    *,
    limit: int,
    cursor: str | None = None,
    phone: str | None = None,
    email: str | None = None,
) -> list[Contact]:
    query = select(contacts).where(contacts.c.workspace_id == workspace_id)
    if phone:
        query = query.where(contacts.c.phone == phone)
    if email:
        query = query.where(contacts.c.email == email)
    rows = await conn.execute(newest_first(query, contacts.c.id, limit=limit, cursor=cursor))
    return [Contact(**r) for r in rows.mappings()]
