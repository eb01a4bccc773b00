"""Leases: a named duty held by one owner until it expires, renewed by that owner.

`take` is one statement on both backends (an upsert that only overwrites a lease that is
the caller's own or has expired), so two workers racing for a free lease cannot both win.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.store.schema import leases


async def take(conn: AsyncConnection, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease `name` for `owner` until now + ttl; False if another holds it."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(leases).values(name=name, owner=owner, expires_at=now + ttl)
    stmt = stmt.on_conflict_do_update(
        index_elements=[leases.c.name],
        set_={"owner": stmt.excluded.owner, "expires_at": stmt.excluded.expires_at},
        where=(leases.c.owner == owner) | (leases.c.expires_at <= now),
    )
    await conn.execute(stmt)
    return await holds(conn, name, owner, now)


async def holds(conn: AsyncConnection, name: str, owner: str, now: datetime, *, lock: bool = False) -> bool:
    """Whether `owner` holds the lease `name` at `now`; `lock` (PostgreSQL): keep the row
    share-locked to the end of the caller's transaction, so nobody takes it meanwhile
    (SQLite's transactions hold the whole database's write lock anyway)."""
    query = select(leases.c.owner, leases.c.expires_at).where(leases.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    row = (await conn.execute(query)).first()
    return row is not None and row.owner == owner and row.expires_at > now


async def release(conn: AsyncConnection, name: str, owner: str) -> None:
    await conn.execute(delete(leases).where(leases.c.name == name, leases.c.owner == owner))


async def held(conn: AsyncConnection, now: datetime) -> dict[str, str]:
    """Every lease in force: name -> owner."""
    rows = await conn.execute(select(leases.c.name, leases.c.owner).where(leases.c.expires_at > now))
    return {name: owner for name, owner in rows}


async def clear_expired(conn: AsyncConnection, prefix: str, before: datetime) -> None:
    """Drop leases named `prefix…` that ran out before `before`."""
    await conn.execute(delete(leases).where(leases.c.name.startswith(prefix), leases.c.expires_at < before))
