"""/v1/rules: a workspace's own sending rules, which tighten the shipped and project rules.

The body is a rules file (TOML `[[rule]]` tables, the format of `core/data/regulations.toml`).
It is checked for every place it names before it is stored, and it can only add hours
limits and caps: matching rules intersect, so nothing here can loosen what ships.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from empathic.api.auth import workspace
from empathic.engine.runtime import runtime_of
from empathic.api.problems import Problem, beyond_schema
from empathic.core import regulations
from empathic.core.hours import DAYS
from empathic.core.regulations import Rule
from empathic.store import rules as store

router = APIRouter(prefix="/v1/rules", tags=["rules"])
Workspace = Annotated[str, Depends(workspace)]


class RulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: str = Field(max_length=100_000, description="A rules file: TOML [[rule]] tables with where, kinds, hours and/or cap, source")


@router.get("")
async def get_rules(request: Request, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        own = (await store.of_workspaces(conn, [ws])).get(ws)
    return _view(rt, own)


@router.put("", responses=beyond_schema({
    "rules": "TOML `[[rule]]` tables of regulations.toml's format, each place known"}))
async def put_rules(payload: RulesIn, request: Request, ws: Workspace) -> dict[str, Any]:
    """Replace the workspace's own rules; the next message the gate sees is held to them."""
    rt = runtime_of(request)
    # A RulesError is answered 422 (api.problems).
    combined = rt.project.regulations.tightened_by(regulations.parse(payload.rules, "rules"))
    combined.check()
    now = rt.now()
    async with rt.db.transaction() as conn:
        await store.put(conn, ws, payload.rules, now)
    return _view(rt, (payload.rules, now))


@router.delete("", status_code=204)
async def delete_rules(request: Request, ws: Workspace) -> Response:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        if not await store.remove(conn, ws):
            raise Problem(404, "This workspace has no rules of its own.")
    return Response(status_code=204)


def _view(rt: Any, own: tuple[str, Any] | None) -> dict[str, Any]:
    parsed = regulations.parse(own[0], "rules").rules if own else ()
    return {
        "rules": own[0] if own else None,
        "updated_at": own[1].isoformat() if own else None,
        "effective": [_rule(r, "project") for r in rt.project.regulations.rules] + [_rule(r, "workspace") for r in parsed],
    }


def _rule(rule: Rule, origin: str) -> dict[str, Any]:
    view: dict[str, Any] = {"origin": origin, "where": rule.where, "kinds": sorted(k.value for k in rule.kinds), "source": rule.source}
    if rule.hours is not None:
        view["hours"] = {
            day: [str(w) for w in windows] for day, windows in zip(DAYS, rule.hours.days, strict=True)
        }
    if rule.cap is not None:
        view["cap"] = {"limit": rule.cap.limit, "period_hours": rule.cap.period.total_seconds() / 3600,
                       "same_topic": rule.cap.same_topic}
    return view
