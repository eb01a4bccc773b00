"""Workspaces and their API keys. Keys are random and stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.ids import new_id
from empathic.store.schema import api_keys, workspaces

KEY_PREFIX = "emp_"


def key_hash(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def ensure_workspace(conn: AsyncConnection, workspace_id: str, name: str, now: datetime) -> None:
    exists = (await conn.execute(select(workspaces.c.id).where(workspaces.c.id == workspace_id))).first()
    if not exists:
        await conn.execute(insert(workspaces).values(id=workspace_id, name=name, created_at=now))


async def add_key(conn: AsyncConnection, workspace_id: str, key: str, name: str, now: datetime) -> str:
    """Store a key (idempotent for the same key); returns its id."""
    digest = key_hash(key)
    found = (await conn.execute(select(api_keys.c.id).where(api_keys.c.key_hash == digest))).scalar()
    if found:
        return found
    key_id = new_id("key")
    await conn.execute(
        insert(api_keys).values(
            id=key_id, workspace_id=workspace_id, name=name, prefix=key[:10], key_hash=digest, created_at=now
        )
    )
    return key_id


async def workspace_for(conn: AsyncConnection, key: str) -> str | None:
    return (
        await conn.execute(
            select(api_keys.c.workspace_id).where(
                api_keys.c.key_hash == key_hash(key), api_keys.c.revoked_at.is_(None)
            )
        )
    ).scalar()
