"""/v1/flows and /v1/runs: a workspace's flows (versioned on every change) and their runs.

A flow is sent as its YAML text (`Content-Type: application/yaml` or `text/plain`), or as JSON
`{"source": "<yaml>"}`; problems come back as 422 with one error per problem and its line.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from empathic.api import paging
from empathic.api.auth import workspace
from empathic.api.contacts import valid_timezone
from empathic.api.events import RULES as EVENT_RULES
from empathic.api.events import EventContact
from empathic.api.fields import DIGITS
from empathic.engine.runtime import runtime_of
from empathic.api.problems import Problem, beyond_schema
from empathic.api.inputs import Data
from empathic.core.errors import FieldError
from empathic.engine.events import ContactInput, upsert_contact
from empathic.engine.runs import RunError, run_view
from empathic.flows.loader import FlowError
from empathic.flows.schema import FLOW_SCHEMA
from empathic.flows.steps.base import NAME_PATTERN as FLOW_NAME
from empathic.store import flows as store

router = APIRouter(tags=["flows"])
Workspace = Annotated[str, Depends(workspace)]
MAX_SOURCE = 100_000


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contact: EventContact
    data: Data = Field(default_factory=dict, description="The run's `event.data`.")
    vars: Data = Field(default_factory=dict, description="Initial `vars`.")
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


def _version_view(row: dict[str, Any], *, origin: str, source: bool = False) -> dict[str, Any]:
    view = {
        "name": row["name"],
        "version": row["version"],
        "version_id": row["id"],
        "origin": origin,
        "created_at": row["created_at"].isoformat(),
    }
    if source:
        view["source"] = row["source"]
    return view


@router.get("/v1/flows/schema")
async def flow_schema() -> dict[str, Any]:
    """The JSON Schema of a flow file (format 1)."""
    return FLOW_SCHEMA


@router.get("/v1/flows")
async def list_flows(request: Request, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        heads = await store.current(conn, ws)
        rows = await store.versions(conn, [h["version_id"] for h in heads.values()])
    data = []
    for name, head in sorted(heads.items()):
        view = _version_view(rows[head["version_id"]], origin=head["origin"])
        view["trigger"] = {"events": head["events"], "keywords": head["keywords"]}
        data.append(view)
    return {"data": data}


@router.get("/v1/flows/{name}")
async def get_flow(
    name: str, request: Request, ws: Workspace, version: Annotated[int, Field(ge=1), DIGITS] | None = None
) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        if version is None:
            head = (await store.current(conn, ws)).get(name)
            if head is None:
                raise Problem(404, f"No flow {name!r} in this workspace.")
            row = (await store.versions(conn, [head["version_id"]]))[head["version_id"]]
            return _version_view(row, origin=head["origin"], source=True)
        found = [r for r in await store.history(conn, ws, name) if r["version"] == version]
    if not found:
        raise Problem(404, f"Flow {name!r} has no version {version}.")
    # the workspace's own history wins over the project's when both have that number
    row = sorted(found, key=lambda r: r["workspace_id"] == store.PROJECT)[0]
    return _version_view(row, origin="project" if row["workspace_id"] == store.PROJECT else "api", source=True)


@router.get("/v1/flows/{name}/versions")
async def flow_versions(name: str, request: Request, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        rows = await store.history(conn, ws, name)
    if not rows:
        raise Problem(404, f"No flow {name!r} in this workspace.")
    return {"data": [_version_view(r, origin="project" if r["workspace_id"] == store.PROJECT else "api") for r in rows]}


_FLOW_TEXT = {"type": "string", "maxLength": MAX_SOURCE, "description": "the flow file (YAML, /v1/flows/schema)"}


@router.put("/v1/flows/{name}", openapi_extra={"requestBody": {"required": True, "content": {
    "application/yaml": {"schema": _FLOW_TEXT},
    "text/plain": {"schema": _FLOW_TEXT},
    "application/json": {"schema": {"type": "object", "required": ["source"], "additionalProperties": False,
                                    "properties": {"source": _FLOW_TEXT}}},
}}}, responses=beyond_schema({"*": "the flow file is one /v1/flows/schema takes, and its subflows and keywords fit "
                                    "the workspace's flows (each problem named by where it is, with its line)"}))
async def put_flow(name: Annotated[str, Path(pattern=FLOW_NAME)], request: Request, response: Response, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    raw = await request.body()
    if len(raw) > MAX_SOURCE:
        raise Problem(413, f"A flow file is at most {MAX_SOURCE} bytes.")
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(400, "The flow must be UTF-8 text.") from None
    if kind == "application/json":
        try:
            text = json.loads(text)["source"]
        except (ValueError, KeyError, TypeError):
            raise Problem(400, 'A JSON body is {"source": "<the flow\'s YAML>"}.') from None
        if not isinstance(text, str):
            raise Problem(400, 'A JSON body is {"source": "<the flow\'s YAML>"}.')
    try:
        async with rt.db.transaction() as conn:
            row, created = await rt.flows.store_flow(conn, ws, name, text, rt.now())
    except FlowError as exc:
        errors: list[FieldError] = [
            {"field": p.where or "flow", "line": p.line, "detail": p.message} for p in exc.problems
        ]
        raise Problem(422, f"The flow has {len(errors)} problem(s): {exc.problems[0]}", errors=errors) from None
    response.status_code = 201 if created else 200
    return _version_view(row, origin="api") | {"changed": created}


@router.delete("/v1/flows/{name}", status_code=204)
async def delete_flow(name: str, request: Request, ws: Workspace) -> Response:
    """Drop the workspace's own version (the project's file, if any, applies again). Runs that
    started on it finish on it."""
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        if not await store.retire(conn, ws, name):
            raise Problem(404, f"The workspace has no flow {name!r} of its own.")
    return Response(status_code=204)


@router.post("/v1/flows/{name}/runs", status_code=201, responses=beyond_schema({
    **EVENT_RULES, "data": "what the flow's steps read is there and its `once_per` holds"}))
async def start_run(name: str, payload: RunIn, request: Request, response: Response, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    c = payload.contact
    given = ContactInput(c.phone, c.email, valid_timezone(c.timezone), c.locale, c.region, c.attributes)
    try:
        async with rt.db.transaction() as conn:
            contact = await upsert_contact(conn, ws, given, rt.settings.default_region, rt.now())
            started = await rt.flows.start(
                conn, ws, name, contact, rt.now(), trigger="api",
                event={"id": None, "type": "api", "data": payload.data}, variables=payload.vars,
                idempotency_key=payload.idempotency_key,
            )
            if started.run.status == "failed" and not started.replayed:
                raise RunError("data", started.run.error or "the run failed")
    except RunError as exc:
        raise Problem(404 if exc.field == "flow" else 422, exc.detail, errors=exc.errors()) from None
    rt.flows_moved()
    if started.replayed:
        response.status_code = 200
    return run_view(started.run)


@router.get("/v1/runs")
async def list_runs(
    request: Request,
    ws: Workspace,
    contact_id: str | None = None,
    flow: str | None = None,
    status: Literal["active", "done", "failed", "interrupted", "stopped", "skipped", "cancelled"] | None = None,
    limit: Annotated[int, Field(ge=1, le=200), DIGITS] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        rows = await store.page(
            conn, ws, contact_id=contact_id, flow=flow, status=status, limit=paging.fetch(limit), cursor=cursor
        )
    page = paging.Page.of(rows, limit, lambda r: r.id)
    return page.to_json([run_view(r) for r in page.rows])


@router.get("/v1/runs/{run_id}")
async def get_run(run_id: str, request: Request, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        run = await store.run(conn, ws, run_id)
    if run is None:
        raise Problem(404, f"No run {run_id!r} in this workspace.")
    return run_view(run)


@router.post("/v1/runs/{run_id}/cancel")
async def cancel_run(run_id: str, request: Request, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        run = await store.run(conn, ws, run_id, lock=True)
        if run is None:
            raise Problem(404, f"No run {run_id!r} in this workspace.")
        if run.status in store.ENDED:
            raise Problem(409, f"Run {run_id!r} has already ended ({run.status}).")
        run = await rt.flows.cancel(conn, run, rt.now())
    rt.flows_moved()
    return run_view(run)
