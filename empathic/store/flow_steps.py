"""Counts per flow step (`flow_step_counts`): how often runs passed, waited, timed out, were
handed off or failed at each step (what each outcome means: `flows.graph.marks`), and a
workspace's runs counted by flow and status.

`count` adds in the caller's transaction (the run's own): one upsert, its rows in key order
so two transactions never take the same rows in opposite orders, each run's rows in one of
`SHARDS` rows per key (by its id) so runs passing one step at once rarely wait for each other.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.store.schema import flow_runs, flow_step_counts

SHARDS = 16


@dataclass(frozen=True, slots=True)
class StepCount:
    step: str  # the step's id
    outcome: str  # passed | waited | timed_out | handed_off | failed
    count: int


def shard_of(run_id: str) -> int:
    return zlib.crc32(run_id.encode()) % SHARDS


async def count(conn: AsyncConnection, workspace_id: str, run_id: str, marks: Iterable[tuple[str, str, str]]) -> None:
    """Add one for each (flow, step id, outcome) of the run."""
    added = Counter(marks)
    if not added:
        return
    shard = shard_of(run_id)
    rows = [
        {"workspace_id": workspace_id, "flow": flow, "step": step, "outcome": outcome, "shard": shard, "count": n}
        for (flow, step, outcome), n in sorted(added.items())
    ]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(flow_step_counts).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[flow_step_counts.c.workspace_id, flow_step_counts.c.flow, flow_step_counts.c.step,
                        flow_step_counts.c.outcome, flow_step_counts.c.shard],
        set_={"count": flow_step_counts.c.count + stmt.excluded.count},
    )
    await conn.execute(stmt)


async def step_counts(conn: AsyncConnection, workspace_id: str, flow: str) -> list[StepCount]:
    """The flow's counts in this workspace, by step and outcome (steps of every version)."""
    total = func.sum(flow_step_counts.c.count)
    result = await conn.execute(
        select(flow_step_counts.c.step, flow_step_counts.c.outcome, total)
        .where(flow_step_counts.c.workspace_id == workspace_id, flow_step_counts.c.flow == flow)
        .group_by(flow_step_counts.c.step, flow_step_counts.c.outcome)
    )
    return [StepCount(step, outcome, int(n)) for step, outcome, n in result.all()]


async def run_counts(conn: AsyncConnection, workspace_id: str, flow: str | None = None) -> dict[str, dict[str, int]]:
    """The workspace's runs by flow, then by status (active, done, failed …)."""
    query = (
        select(flow_runs.c.flow, flow_runs.c.status, func.count())
        .where(flow_runs.c.workspace_id == workspace_id)
        .group_by(flow_runs.c.flow, flow_runs.c.status)
    )
    if flow is not None:
        query = query.where(flow_runs.c.flow == flow)
    counts: dict[str, dict[str, int]] = {}
    for name, status, n in (await conn.execute(query)).all():
        counts.setdefault(name, {})[status] = int(n)
    return counts
