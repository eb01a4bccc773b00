"""The suppression list: the opt-outs an erased contact's number keeps, and the workspace's
secret salt they are hashed under.

Erasure (store.privacy) leaves one row here when the person had opted out: an HMAC of the
number under the workspace's salt (not reversible without the salt, and useless across
workspaces) with the opt-outs they had. A contact made for that number again gets them back
in its ledger at once (`reapply`, called wherever contacts are created).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import weakref
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.consent import ALL_TOPICS, ConsentAction
from empathic.store import consent as consent_store
from empathic.store.schema import suppressions, workspaces

_CHUNK = 500
# Per database, workspace -> salt: a salt never changes once set.
_salts: weakref.WeakKeyDictionary[Engine, dict[str, str]] = weakref.WeakKeyDictionary()


async def salt(conn: AsyncConnection, workspace_id: str) -> str:
    known = _salts.setdefault(conn.sync_engine, {})
    if workspace_id in known:
        return known[workspace_id]
    await conn.execute(
        update(workspaces)
        .where(workspaces.c.id == workspace_id, workspaces.c.privacy_salt.is_(None))
        .values(privacy_salt=secrets.token_hex(32))
    )
    value = (await conn.execute(select(workspaces.c.privacy_salt).where(workspaces.c.id == workspace_id))).scalar()
    if value is None:
        raise LookupError(f"no workspace {workspace_id!r}")
    known[workspace_id] = value
    return value


def phone_hash(salt_value: str, phone: str) -> str:
    return hmac.new(salt_value.encode(), phone.encode(), hashlib.sha256).hexdigest()


async def suppressed(conn: AsyncConnection, workspace_id: str, phones: Iterable[str]) -> dict[str, list[list[str]]]:
    """The opt-outs kept for these numbers, by number (only suppressed numbers appear)."""
    wanted = [p for p in set(phones) if p]
    if not wanted:
        return {}
    key = await salt(conn, workspace_id)
    by_hash = {phone_hash(key, p): p for p in wanted}
    found: dict[str, list[list[str]]] = {}
    hashes = list(by_hash)
    for start in range(0, len(hashes), _CHUNK):
        rows = await conn.execute(
            select(suppressions.c.phone_hash, suppressions.c.opt_outs).where(
                suppressions.c.workspace_id == workspace_id, suppressions.c.phone_hash.in_(hashes[start : start + _CHUNK])
            )
        )
        found.update({by_hash[h]: opt_outs for h, opt_outs in rows})
    return found


async def reapply(conn: AsyncConnection, workspace_id: str, by_phone: Mapping[str, str], now: datetime) -> None:
    """Give contacts just given these numbers (number -> contact id) their old opt-outs back, in their ledger."""
    for phone, opt_outs in (await suppressed(conn, workspace_id, by_phone)).items():
        for topic, channel in opt_outs:
            await consent_store.append(
                conn, workspace_id, by_phone[phone], topic=topic, channel=channel, action=ConsentAction.REVOKED,
                source="suppression", actor="suppression list", evidence="opted out before an erasure", at=now,
            )


async def suppress(conn: AsyncConnection, workspace_id: str, contact_id: str, phone: str, now: datetime) -> None:
    """Keep the opt-outs of a contact about to be erased against their number (none: no row)."""
    state = (await consent_store.states(conn, workspace_id, [contact_id]))[contact_id]
    opt_outs = sorted(
        [[ALL_TOPICS, ch] for ch in state.blanket if state.opted_out_of_all(ch)]
        + [[topic, ch] for topic, ch in state.topics if state.opted_out(topic, ch) and not state.opted_out_of_all(ch)]
    )
    digest = phone_hash(await salt(conn, workspace_id), phone)
    await conn.execute(
        delete(suppressions).where(suppressions.c.workspace_id == workspace_id, suppressions.c.phone_hash == digest)
    )
    if opt_outs:
        await conn.execute(
            suppressions.insert().values(workspace_id=workspace_id, phone_hash=digest, opt_outs=opt_outs, created_at=now)
        )
