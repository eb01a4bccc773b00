"""/v1/stats: what the texts did, counted from the messages (D).

Every endpoint takes the period the same way: `period` (1h, 6h, 24h, 7d, 30d, 90d: ending now)
or `from` and `to` (instants with their offset; `to` defaults to now), at most 92 days;
`bucket` (minute, hour, day) where figures are over time. What each figure counts is in
docs/web.md#dashboard and engine/stats.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from empathic.api.auth import workspace
from empathic.api.fields import Instant
from empathic.api.problems import beyond_schema
from empathic.core.json import Json
from empathic.engine import stats
from empathic.engine.runtime import runtime_of

router = APIRouter(prefix="/v1/stats", tags=["stats"])
Workspace = Annotated[str, Depends(workspace)]
Preset = Literal["1h", "6h", "24h", "7d", "30d", "90d"]
Bucket = Literal["minute", "hour", "day"]
RULES = beyond_schema({
    "period": "a preset, or from/to, not both",
    "from": "given with `to`; before `to`; at most 92 days before it",
    "bucket": "minutes for a period of at most 6 hours; at most 1,500 buckets in the period",
})


def _period(
    request: Request,
    period: Annotated[Preset | None, Query(description="ending now (default 24h)")] = None,
    from_: Annotated[Instant | None, Query(alias="from")] = None,
    to: Annotated[Instant | None, Query()] = None,
    bucket: Annotated[Bucket | None, Query(description="default: by the period's length")] = None,
) -> stats.Period:
    return stats.period(runtime_of(request).now(), preset=period, start=from_, end=to, bucket=bucket)


Period = Annotated[stats.Period, Depends(_period)]


def _now(request: Request) -> datetime:
    return runtime_of(request).now()


@router.get("/messages", responses=RULES)
async def messages(request: Request, ws: Workspace, p: Period) -> Json:
    """Outbound messages written in the period: in all, and by flow, trigger, template and
    topic; sent, delivered, failed (by reason), replied, opted out, handed off, with rates."""
    rt = runtime_of(request)
    return (await stats.messages_report(rt.db, ws, p, _now(request))).to_json()


@router.get("/throughput", responses=RULES)
async def throughput(request: Request, ws: Workspace, p: Period) -> Json:
    """Messages by the bucket they were written in: accepted, sent, delivered, failed; received."""
    rt = runtime_of(request)
    points = await stats.throughput(rt.db, ws, p, _now(request))
    return {"period": p.to_json(), "points": [pt.to_json() for pt in points]}


@router.get("/queue", responses=RULES)
async def queue(request: Request, ws: Workspace, p: Period) -> Json:
    """The queue's depth over time: the most queued, deferred and sending messages sampled in
    each bucket (the stats loop samples every minute); buckets without a sample left out."""
    rt = runtime_of(request)
    points = await stats.queue(rt.db, ws, p)
    return {"period": p.to_json(), "points": [
        {"at": stats.iso(pt.at), "queued": pt.queued, "deferred": pt.deferred, "sending": pt.sending} for pt in points
    ]}


@router.get("/deferred", responses=RULES)
async def deferred(request: Request, ws: Workspace, p: Period) -> Json:
    """Messages deferred now, and those deferred in the period, by reason."""
    rt = runtime_of(request)
    found = await stats.deferred(rt.db, ws, p)

    def listed(counts: dict[str, int]) -> list[Json]:
        return [{"reason": r, "count": n} for r, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]

    return {"period": p.to_json(), "now": listed(found.now), "in_period": listed(found.period)}
