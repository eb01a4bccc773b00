"""Flow versions, each workspace's current flows, and flow runs.

A run is a `Run`: the table's columns with its `state` a `RunState` (stored as its JSON, read
back through `RunState.from_json`, which migrates a state stored by an older release).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.ids import new_id
from empathic.flows.state import RunState, StateVersionError
from empathic.store.paging import newest_first
from empathic.store.schema import contacts, flow_runs, flow_versions, flows

log = logging.getLogger(__name__)

PROJECT = ""  # the workspace_id of versions that come from the project's files

ACTIVE = "active"
ENDED = frozenset({"done", "failed", "interrupted", "stopped", "skipped", "cancelled"})


def digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


async def save_version(
    conn: AsyncConnection, workspace_id: str, name: str, source: str, events: Iterable[str], keywords: Iterable[str],
    now: datetime,
) -> tuple[dict[str, Any], bool]:
    """Make `source` the current version of the flow (a new version only if it changed)."""
    current = await head(conn, workspace_id, name)
    if current is not None and current["digest"] == digest(source):
        return current, False
    number = (
        await conn.execute(
            select(func.max(flow_versions.c.version)).where(
                flow_versions.c.workspace_id == workspace_id, flow_versions.c.name == name
            )
        )
    ).scalar() or 0
    row = {
        "id": new_id("fv"), "workspace_id": workspace_id, "name": name, "version": number + 1,
        "source": source, "digest": digest(source), "created_at": now,
    }
    await conn.execute(insert(flow_versions).values(**row))
    values = {"version_id": row["id"], "events": list(events), "keywords": list(keywords), "updated_at": now}
    if current is None:
        await conn.execute(insert(flows).values(workspace_id=workspace_id, name=name, **values))
    else:
        await conn.execute(
            update(flows).where(flows.c.workspace_id == workspace_id, flows.c.name == name).values(**values)
        )
    return row, True


async def head(conn: AsyncConnection, workspace_id: str, name: str) -> dict[str, Any] | None:
    """The current version stored under exactly this workspace id (no project fallback)."""
    row = (
        await conn.execute(
            select(flow_versions)
            .join(flows, flows.c.version_id == flow_versions.c.id)
            .where(flows.c.workspace_id == workspace_id, flows.c.name == name)
        )
    ).mappings().first()
    return dict(row) if row else None


async def retire(conn: AsyncConnection, workspace_id: str, name: str) -> bool:
    """Stop using the workspace's own version (its history stays for the runs that use it)."""
    result = await conn.execute(delete(flows).where(flows.c.workspace_id == workspace_id, flows.c.name == name))
    return bool(result.rowcount)


async def current(conn: AsyncConnection, workspace_id: str) -> dict[str, dict[str, Any]]:
    """name -> head row (version_id, events, keywords, origin) for the workspace: its own flows
    over the project's."""
    rows = (
        await conn.execute(select(flows).where(flows.c.workspace_id.in_([workspace_id, PROJECT])))
    ).mappings().all()
    out: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r["workspace_id"] != PROJECT):  # the workspace's last, so they win
        out[row["name"]] = {**row, "origin": "project" if row["workspace_id"] == PROJECT else "api"}
    return out


async def versions(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = (await conn.execute(select(flow_versions).where(flow_versions.c.id.in_(wanted)))).mappings().all()
    return {r["id"]: dict(r) for r in rows}


async def history(conn: AsyncConnection, workspace_id: str, name: str) -> list[dict[str, Any]]:
    rows = (
        await conn.execute(
            select(flow_versions)
            .where(flow_versions.c.workspace_id.in_([workspace_id, PROJECT]), flow_versions.c.name == name)
            .order_by(flow_versions.c.created_at, flow_versions.c.version)
        )
    ).mappings().all()
    return [dict(r) for r in rows]


# -- runs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    """A flow run: the `flow_runs` columns, its state read back as a RunState."""

    id: str
    workspace_id: str
    contact_id: str
    flow: str  # the flow's name
    version_id: str
    status: str  # ACTIVE or one of ENDED
    priority: int
    waiting: str | None  # what an active run waits for (its state's wait kind)
    state: RunState
    trigger: str  # event:<type> | keyword:<WORD> | api
    event_id: str | None
    idempotency_key: str | None
    outcome: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None


def _run(row: RowMapping) -> Run:
    return Run(**{**row, "state": RunState.from_json(row["state"])})


def _readable(rows: Iterable[RowMapping]) -> list[Run]:
    """The runs this release can read. A state it cannot (stored by a newer release before a
    rollback) is left as it is for that release, not misread, and does not hold up the
    contact's other texts: the run is skipped, with a warning; `unreadable` finds such runs
    so that their timers wait and an opt-out still ends them."""
    readable = []
    for row in rows:
        try:
            readable.append(_run(row))
        except StateVersionError as exc:
            log.warning("run %s skipped: %s", row["id"], exc)
    return readable


async def unreadable(conn: AsyncConnection, run_ids: Iterable[str]) -> set[str]:
    """Of these runs, the active ones whose state this release cannot read."""
    wanted = list(set(run_ids))
    if not wanted:
        return set()
    rows = await conn.execute(
        select(flow_runs.c.id, flow_runs.c.state).where(flow_runs.c.id.in_(wanted), flow_runs.c.status == ACTIVE)
    )
    found = set()
    for run_id, state in rows:
        try:
            RunState.from_json(state)
        except StateVersionError:
            found.add(run_id)
    return found


async def stop_unreadable(conn: AsyncConnection, workspace_id: str, contact_id: str, now: datetime) -> int:
    """End the contact's active runs this release cannot read (an opt-out ends those too;
    no webhook: their state is not ours to read); how many."""
    rows = await conn.execute(
        select(flow_runs.c.id).where(flow_runs.c.workspace_id == workspace_id, flow_runs.c.contact_id == contact_id,
                                     flow_runs.c.status == ACTIVE)
    )
    held = await unreadable(conn, [run_id for (run_id,) in rows])
    if held:
        await conn.execute(
            update(flow_runs).where(flow_runs.c.id.in_(sorted(held)), flow_runs.c.status == ACTIVE)
            .values(status="stopped", outcome="opted_out", waiting=None, ended_at=now, updated_at=now)
        )
    return len(held)


async def add_run(conn: AsyncConnection, run: Run) -> None:
    values = {f.name: getattr(run, f.name) for f in fields(Run)}
    await conn.execute(insert(flow_runs).values(**{**values, "state": run.state.to_json()}))


async def save_run(conn: AsyncConnection, run_id: str, now: datetime, *, state: RunState, **values: Any) -> None:
    await conn.execute(
        update(flow_runs).where(flow_runs.c.id == run_id).values(**values, state=state.to_json(), updated_at=now)
    )


async def run(conn: AsyncConnection, workspace_id: str, run_id: str, *, lock: bool = False) -> Run | None:
    query = select(flow_runs).where(flow_runs.c.workspace_id == workspace_id, flow_runs.c.id == run_id)
    if lock and conn.dialect.name == "postgresql":  # its contact first, as every run lock (runs_by_ids)
        person = select(flow_runs.c.contact_id).where(flow_runs.c.id == run_id).scalar_subquery()
        await conn.execute(select(contacts.c.id).where(contacts.c.id == person).with_for_update())
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    return _run(row) if row else None


async def runs_by_ids(conn: AsyncConnection, run_ids: Iterable[str]) -> dict[str, Run]:
    """These runs (locked on PostgreSQL, after their contacts: every function here that locks
    runs locks their contact first, so two changes for one person cannot deadlock)."""
    wanted = sorted(set(run_ids))
    if not wanted:
        return {}
    if conn.dialect.name == "postgresql":
        people = select(flow_runs.c.contact_id).where(flow_runs.c.id.in_(wanted))
        await conn.execute(select(contacts.c.id).where(contacts.c.id.in_(people)).order_by(contacts.c.id).with_for_update())
    query = select(flow_runs).where(flow_runs.c.id.in_(wanted))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return {r.id: r for r in _readable((await conn.execute(query)).mappings())}


async def by_key(conn: AsyncConnection, workspace_id: str, key: str) -> Run | None:
    row = (
        await conn.execute(
            select(flow_runs).where(flow_runs.c.workspace_id == workspace_id, flow_runs.c.idempotency_key == key)
        )
    ).mappings().first()
    return _run(row) if row else None


async def lock_contact(conn: AsyncConnection, workspace_id: str, contact_id: str) -> None:
    """Serialise conversation changes of one contact across processes (PostgreSQL; SQLite's
    single writer already does)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            select(contacts.c.id).where(contacts.c.workspace_id == workspace_id, contacts.c.id == contact_id).with_for_update()
        )


async def open_runs(conn: AsyncConnection, workspace_id: str, contact_id: str) -> list[Run]:
    """The contact's active runs, oldest first (locked on PostgreSQL, after the contact)."""
    await lock_contact(conn, workspace_id, contact_id)
    query = (
        select(flow_runs)
        .where(
            flow_runs.c.workspace_id == workspace_id,
            flow_runs.c.contact_id == contact_id,
            flow_runs.c.status == ACTIVE,
        )
        .order_by(flow_runs.c.id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return _readable((await conn.execute(query)).mappings())


async def page(
    conn: AsyncConnection, workspace_id: str, *, contact_id: str | None, flow: str | None, status: str | None,
    limit: int, cursor: str | None,
) -> list[Run]:
    conditions = [flow_runs.c.workspace_id == workspace_id]
    if contact_id:
        conditions.append(flow_runs.c.contact_id == contact_id)
    if flow:
        conditions.append(flow_runs.c.flow == flow)
    if status:
        conditions.append(flow_runs.c.status == status)
    query = select(flow_runs).where(and_(*conditions))
    found: list[Run] = []
    while True:  # `limit` runs this release can read, or all there are (a skipped one ends no page early)
        rows = (await conn.execute(newest_first(query, flow_runs.c.id, limit=limit, cursor=cursor))).mappings().all()
        found += _readable(rows)
        if len(found) >= limit or len(rows) < limit:
            return found[:limit]
        cursor = rows[-1]["id"]
