"""What the contacts pages read that no other part does: a search over a workspace's contacts
(a number in any format, part of a number, a name, an email address, an id), one contact's
flow runs as a list (without reading their state) and their inbox thread.

A search reads what was typed as the one thing it most likely is (`ContactSearch.read`); a
number that libphonenumber can read is matched exactly, in E.164, as it is stored."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.phones import InvalidPhoneNumber, normalize
from empathic.store.contacts import Contact
from empathic.store.paging import newest_first
from empathic.store.schema import contacts, flow_runs, threads

# The attributes a contact's name is kept in (the shipped flows greet `first_name`).
NAME_ATTRIBUTES = ("first_name", "last_name", "name")
MAX_SEARCH = 200
_NUMBERISH = re.compile(r"[+\d\s().\-/]+")
_ID = re.compile(r"ct_[0-9A-Z]{26}")


@dataclass(frozen=True, slots=True)
class ContactSearch:
    """What a person typed in the contacts search, read as what it most likely is; at most one
    field is set (none: every contact)."""

    phone: str | None = None  # a whole number, E.164
    digits: str | None = None  # part of a number (its digits, without a trunk 0)
    email: str | None = None  # part of an address, lower-cased
    name: str | None = None  # part of a name, lower-cased
    contact_id: str | None = None

    @classmethod
    def read(cls, typed: str, region: str | None) -> ContactSearch:
        """`typed` as a search; `region` reads numbers written in a national format."""
        text = " ".join(typed.split())[:MAX_SEARCH]
        if not text:
            return cls()
        if _ID.fullmatch(text):
            return cls(contact_id=text)
        if "@" in text:
            return cls(email=text.lower())
        if _NUMBERISH.fullmatch(text):
            digits = re.sub(r"\D", "", text)
            if digits:
                try:
                    return cls(phone=normalize(text, region))
                except InvalidPhoneNumber:
                    return cls(digits=digits.lstrip("0") or digits)
        return cls(name=text.lower())

    @property
    def given(self) -> bool:
        return any((self.phone, self.digits, self.email, self.name, self.contact_id))


def _name_matches(part: str, lower: Fold) -> ColumnElement[bool]:
    values = {key: func.coalesce(contacts.c.attributes[key].as_string(), "") for key in NAME_ATTRIBUTES}
    full = values["first_name"] + " " + values["last_name"]
    return or_(*(lower(v).contains(part, autoescape=True) for v in (*values.values(), full)))


Fold = Callable[[ColumnElement[str]], ColumnElement[str]]


async def unicode_lower(conn: AsyncConnection) -> Fold:
    """The database's lower case of a text, as Python's `str.lower` makes it. SQLite's own
    `lower()` folds ASCII only (JOSÉ would stay JOSé), so there it is Python's, registered
    on the connection (cheap, and idempotent)."""
    if conn.dialect.name != "sqlite":
        return func.lower
    await conn.run_sync(_register_lower)
    return func.empathic_lower


def _register_lower(connection: Connection) -> None:
    connection.connection.dbapi_connection.create_function(  # type: ignore[union-attr]  # open: we are in its transaction
        "empathic_lower", 1, lambda text: text.lower() if isinstance(text, str) else text, deterministic=True
    )


async def search(
    conn: AsyncConnection, workspace_id: str, wanted: ContactSearch, *, limit: int, cursor: str | None = None
) -> list[Contact]:
    """The workspace's contacts that match, newest first, after `cursor` (a contact id)."""
    query = select(contacts).where(contacts.c.workspace_id == workspace_id)
    if wanted.contact_id:
        query = query.where(contacts.c.id == wanted.contact_id)
    elif wanted.phone:
        query = query.where(contacts.c.phone == wanted.phone)
    elif wanted.digits:
        query = query.where(contacts.c.phone.contains(wanted.digits, autoescape=True))
    elif wanted.email:
        query = query.where((await unicode_lower(conn))(contacts.c.email).contains(wanted.email, autoescape=True))
    elif wanted.name:
        query = query.where(_name_matches(wanted.name, await unicode_lower(conn)))
    rows = await conn.execute(newest_first(query, contacts.c.id, limit=limit, cursor=cursor))
    return [Contact(**r) for r in rows.mappings()]


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One flow run of a contact as a list shows it (its state is not read: a run stored by a
    newer release is listed too)."""

    id: str
    flow: str
    status: str  # active | done | failed | interrupted | stopped | skipped | cancelled
    waiting: str | None  # reply | timer | call | handoff, while active
    trigger: str  # event:<type> | keyword:<WORD> | api
    outcome: str | None
    error: str | None
    created_at: datetime
    ended_at: datetime | None


async def runs(
    conn: AsyncConnection, workspace_id: str, contact_id: str, *, limit: int, cursor: str | None = None
) -> list[RunSummary]:
    """The contact's flow runs, newest first, after `cursor` (a run id)."""
    r = flow_runs.c
    query = select(r.id, r.flow, r.status, r.waiting, r.trigger, r.outcome, r.error, r.created_at, r.ended_at).where(
        r.workspace_id == workspace_id, r.contact_id == contact_id
    )
    return [RunSummary(*row) for row in (await conn.execute(newest_first(query, r.id, limit=limit, cursor=cursor))).all()]


async def thread_id(conn: AsyncConnection, workspace_id: str, contact_id: str) -> str | None:
    """The id of the contact's inbox thread, open or closed, if they have one."""
    return (
        await conn.execute(
            select(threads.c.id).where(threads.c.workspace_id == workspace_id, threads.c.contact_id == contact_id)
        )
    ).scalar()


