"""/v1/templates and /v1/triggers: manage a workspace's templates and triggers; preview texts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from empathic.api.auth import workspace
from empathic.engine.runtime import runtime_of
from empathic.api.problems import Problem, beyond_schema
from empathic.api.inputs import Data
from empathic.core import sms
from empathic.core.errors import InputError
from empathic.core.templates import TemplateError, compile_template
from empathic.engine.catalog import template_view, trigger_view
from empathic.store import catalog as store

router = APIRouter(tags=["templates"])
Workspace = Annotated[str, Depends(workspace)]
NAME = r"^[A-Za-z0-9_.-]{1,100}$"
TEMPLATE_RULE = "a template that compiles (Jinja, sandboxed), naming only `contact` and `event` variables"


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=10_000)


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str | None = Field(None, max_length=10_000, description="a template text; else the named template")
    contact: Data = Field(default_factory=dict)
    event: Data = Field(default_factory=dict)


class TriggerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    template: str = Field(pattern=NAME)
    topic: str = Field("transactional", max_length=64, json_schema_extra={"x-topics": "all"})


@router.get("/v1/templates")
async def list_templates(request: Request, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        found = await rt.catalog.templates(conn, ws)
    return {"data": [template_view(n, t, s, rt.catalog.email(n)) for n, (t, s) in sorted(found.items())]}


@router.get("/v1/templates/{name}")
async def get_template(name: str, request: Request, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        found = (await rt.catalog.templates(conn, ws)).get(name)
    if found is None:
        raise Problem(404, f"No template {name!r}.")
    return template_view(name, *found, rt.catalog.email(name))


@router.put("/v1/templates/{name}", responses=beyond_schema({"body": TEMPLATE_RULE}))
async def put_template(name: Annotated[str, Path(pattern=NAME)], payload: TemplateIn, request: Request, ws: Workspace) -> dict[str, Any]:
    template = compile_template(name, payload.body)  # TemplateError -> 422 naming the variable
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        await store.put_template(conn, ws, name, payload.body, rt.now())
    return template_view(name, template, "api", rt.catalog.email(name))


@router.delete("/v1/templates/{name}", status_code=204)
async def delete_template(name: str, request: Request, ws: Workspace) -> Response:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        in_use = [t.name for t, _ in (await rt.catalog.triggers(conn, ws)).values() if t.template == name]
        stored = await store.template(conn, ws, name)
        if stored is None:
            detail = "it comes from the project folder" if name in rt.project.templates else "it does not exist"
            raise Problem(404, f"No stored template {name!r} to delete: {detail}.")
        if in_use and name not in rt.project.templates:
            raise Problem(409, f"Template {name!r} is used by triggers: {', '.join(in_use)}.")
        await store.delete_template(conn, ws, name)
    return Response(status_code=204)


@router.post("/v1/templates/{name}/preview", responses=beyond_schema({
    "body": f"{TEMPLATE_RULE}, and renders to some text with this contact and event"}))
async def preview_named(name: str, payload: PreviewIn, request: Request, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    if payload.body is not None:
        template = compile_template(name, payload.body)
    else:
        async with rt.db.transaction() as conn:
            found = await rt.catalog.template(conn, ws, name)
        if found is None:
            raise Problem(404, f"No template {name!r}.")
        template = found
    text = template.render(contact=payload.contact, event=payload.event)
    count = sms.count(text)
    if count.segments > rt.acceptance.max_segments:  # as the outbox would refuse to send it
        raise TemplateError(name, f"renders to {count.segments} segments ({count.encoding.value}, {count.units} units); "
                                  f"a text may have at most {rt.acceptance.max_segments}")
    return {
        "text": text,
        "encoding": count.encoding.value,
        "segments": count.segments,
        "units": count.units,
        "parts": sms.split(text),
    }


@router.get("/v1/triggers", tags=["triggers"])
async def list_triggers(request: Request, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        found = await rt.catalog.triggers(conn, ws)
    return {"data": [trigger_view(t, s) for _, (t, s) in sorted(found.items())]}


@router.put("/v1/triggers/{name}", tags=["triggers"], responses=beyond_schema({
    "template": "a template of the workspace or the project (create it first)"}))
async def put_trigger(name: Annotated[str, Path(pattern=NAME)], payload: TriggerIn, request: Request, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    rt.project.topics.kind(payload.topic)  # UnknownTopic -> 422
    async with rt.db.transaction() as conn:
        if await rt.catalog.template(conn, ws, payload.template) is None:
            raise InputError("template", "unknown template", message=f"template: no template {payload.template!r}; "
                             f"create it first with PUT /v1/templates/{payload.template}")
        await store.put_trigger(conn, ws, name, payload.event, payload.template, payload.topic, rt.now())
        trigger, source = (await rt.catalog.triggers(conn, ws))[name]
    return trigger_view(trigger, source)


@router.delete("/v1/triggers/{name}", status_code=204, tags=["triggers"])
async def delete_trigger(name: str, request: Request, ws: Workspace) -> Response:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        if not await store.delete_trigger(conn, ws, name):
            detail = "it comes from the project folder" if name in rt.project.triggers else "it does not exist"
            raise Problem(404, f"No stored trigger {name!r} to delete: {detail}.")
    return Response(status_code=204)
