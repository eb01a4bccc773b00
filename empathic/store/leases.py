"""Leases: a named duty held by one owner until it expires, renewed by that owner.

`take` is one statement on both backends (an upsert that only overwrites a lease that is
the caller's own or has expired), so two workers racing for a free lease cannot both win.

Each take that is not a renewal (the lease was another's, or had run out) writes a new
random `token`; a renewal in time keeps it. The token is a fencing token: an owner that
paused past its lease and took it back holds a new token, so work it began under the old
one (a batch claimed before the pause) is told apart from work begun since, even though
the owner is the same. Tokens are random, not counted, so a released (deleted) lease
taken again can never repeat an old one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.store.schema import leases


@dataclass(frozen=True)
class Held:
    owner: str
    expires_at: datetime
    token: str


async def take(conn: AsyncConnection, name: str, owner: str, now: datetime, ttl: timedelta) -> str | None:
    """Take or renew the lease `name` for `owner` until now + ttl: its token, the same as
    before when renewed in time, a new one otherwise; None if another holds it."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(leases).values(name=name, owner=owner, expires_at=now + ttl, token=secrets.token_hex(16))
    renewal = (leases.c.owner == owner) & (leases.c.expires_at > now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[leases.c.name],
        set_={
            "owner": stmt.excluded.owner,
            "expires_at": stmt.excluded.expires_at,
            "token": case((renewal, leases.c.token), else_=stmt.excluded.token),
        },
        where=(leases.c.owner == owner) | (leases.c.expires_at <= now),
    )
    await conn.execute(stmt)
    row = await current(conn, name)
    return row.token if row is not None and row.owner == owner and row.expires_at > now else None


# Built once: every claim reads its fence through here, and building and hashing the
# statement per call cost more than running it.
_CURRENT = select(leases.c.owner, leases.c.expires_at, leases.c.token).where(leases.c.name == bindparam("name"))
_CURRENT_SHARED = _CURRENT.with_for_update(read=True)


async def current(conn: AsyncConnection, name: str, *, lock: bool = False) -> Held | None:
    """The lease `name` as stored, expired or not; `lock` (PostgreSQL): keep the row
    share-locked to the end of the caller's transaction, so nobody takes it meanwhile
    (SQLite's transactions hold the whole database's write lock anyway)."""
    query = _CURRENT_SHARED if lock and conn.dialect.name == "postgresql" else _CURRENT
    row = (await conn.execute(query, {"name": name})).first()
    return None if row is None else Held(row.owner, row.expires_at, row.token)


async def holds(
    conn: AsyncConnection, name: str, owner: str, now: datetime, *, token: str | None = None, lock: bool = False
) -> bool:
    """Whether `owner` holds the lease `name` at `now` (under `token`, if given); `lock` as
    in `current`."""
    row = await current(conn, name, lock=lock)
    return (
        row is not None and row.owner == owner and row.expires_at > now and (token is None or row.token == token)
    )


async def release(conn: AsyncConnection, name: str, owner: str) -> None:
    await conn.execute(delete(leases).where(leases.c.name == name, leases.c.owner == owner))


async def held(conn: AsyncConnection, now: datetime) -> dict[str, str]:
    """Every lease in force: name -> owner."""
    rows = await conn.execute(select(leases.c.name, leases.c.owner).where(leases.c.expires_at > now))
    return {name: owner for name, owner in rows}


async def clear_expired(conn: AsyncConnection, prefix: str, before: datetime) -> None:
    """Drop leases named `prefix…` that ran out before `before`."""
    await conn.execute(delete(leases).where(leases.c.name.startswith(prefix), leases.c.expires_at < before))
