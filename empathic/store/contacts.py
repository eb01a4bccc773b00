"""Contacts: the people a workspace texts, keyed by E.164 phone (and optionally email).

A contact created for a number on the suppression list gets its old opt-outs back at once
(store.privacy)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.ids import new_id
from empathic.core.json import Json
from empathic.core.phones import timezone_for
from empathic.store import suppressions
from empathic.store.schema import contacts

FIELDS = ("phone", "email", "locale", "timezone")


def to_view(row: Mapping[str, Any]) -> Json:
    return {
        "id": row["id"],
        "phone": row["phone"],
        "email": row["email"],
        "locale": row["locale"],
        "timezone": row["timezone"],
        "attributes": row["attributes"] or {},
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


async def get(conn: AsyncConnection, workspace_id: str, contact_id: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(contacts).where(contacts.c.workspace_id == workspace_id, contacts.c.id == contact_id)
        )
    ).mappings().first()
    return dict(row) if row else None


async def by_ids(conn: AsyncConnection, workspace_id: str, contact_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    ids = sorted(set(contact_ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        rows = await conn.execute(
            select(contacts).where(contacts.c.workspace_id == workspace_id, contacts.c.id.in_(ids[start : start + 500]))
        )
        found.update({r["id"]: dict(r) for r in rows.mappings()})
    return found


async def by_phones(
    conn: AsyncConnection, workspace_id: str, phones: Iterable[str], columns: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The contacts with these numbers, by number: whole rows, or only `columns` (and `phone`)."""
    wanted = list(set(phones))
    chosen = [contacts] if columns is None else [contacts.c.phone, *(contacts.c[c] for c in columns if c != "phone")]
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):
        rows = await conn.execute(
            select(*chosen).where(contacts.c.workspace_id == workspace_id, contacts.c.phone.in_(wanted[start : start + 500]))
        )
        names = tuple(rows.keys())
        found.update({row["phone"]: row for row in (dict(zip(names, r)) for r in rows.all())})  # tuples: cheaper than mappings
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
    attributes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    row = {
        "id": new_id("ct"),
        "workspace_id": workspace_id,
        "phone": phone,
        "email": email,
        "locale": locale,
        "timezone": timezone or (timezone_for(phone) if phone else None),
        "attributes": dict(attributes or {}),
        "created_at": now,
        "updated_at": now,
    }
    await conn.execute(insert(contacts), [row])
    await suppressions.reapply(conn, workspace_id, [row], now)
    return row


async def ensure_by_phone(
    conn: AsyncConnection, workspace_id: str, phones: Iterable[str], now: datetime, columns: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The contacts for these numbers, creating the missing ones (one batch each way).
    With `columns`, those found hold only these (and `phone`); created ones hold all."""
    phones = list(phones)
    found = await by_phones(conn, workspace_id, phones, columns)
    missing = [p for p in dict.fromkeys(phones) if p not in found]
    if missing:
        rows: list[dict[str, Any]] = [
            {
                "id": new_id("ct"),
                "workspace_id": workspace_id,
                "phone": phone,
                "email": None,
                "locale": None,
                "timezone": timezone_for(phone) if phone.startswith("+") else None,  # not short codes
                "attributes": {},
                "channel": None,
                "created_at": now,
                "updated_at": now,
            }
            for phone in missing
        ]
        await conn.execute(insert(contacts), rows)
        await suppressions.reapply(conn, workspace_id, rows, now)
        found.update({row["phone"]: row for row in rows})
    return found


async def ensure_by_email(
    conn: AsyncConnection, workspace_id: str, emails: Iterable[str], now: datetime
) -> dict[str, dict[str, Any]]:
    """The contacts for these email addresses (the oldest where several share one), creating
    the missing ones without a phone."""
    wanted = list(dict.fromkeys(emails))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):
        result = await conn.execute(
            select(contacts)
            .where(contacts.c.workspace_id == workspace_id, contacts.c.email.in_(wanted[start : start + 500]))
            .order_by(contacts.c.id.desc())
        )
        found.update({row["email"]: dict(row) for row in result.mappings()})  # the oldest is written last
    missing = [e for e in wanted if e not in found]
    if missing:
        rows: list[dict[str, Any]] = [
            {
                "id": new_id("ct"), "workspace_id": workspace_id, "phone": None, "email": email, "locale": None,
                "timezone": None, "attributes": {}, "channel": None, "created_at": now, "updated_at": now,
            }
            for email in missing
        ]
        await conn.execute(insert(contacts), rows)
        found.update({row["email"]: row for row in rows})
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
    conn: AsyncConnection, workspace_id: str, contact_id: str, now: datetime, changes: Mapping[str, Any]
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
) -> list[dict[str, Any]]:
    query = select(contacts).where(contacts.c.workspace_id == workspace_id)
    if cursor:
        query = query.where(contacts.c.id < cursor)
    if phone:
        query = query.where(contacts.c.phone == phone)
    if email:
        query = query.where(contacts.c.email == email)
    rows = await conn.execute(query.order_by(contacts.c.id.desc()).limit(limit))
    return [dict(r) for r in rows.mappings()]
