"""/v1/webhooks: subscribe a URL to events; inspect its delivery log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from empathic.api.auth import workspace
from empathic.api.fields import DIGITS, SPACE
from empathic.engine.runtime import runtime_of
from empathic.api.problems import Problem, beyond_schema
from empathic.engine import webhooks as engine

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
Workspace = Annotated[str, Depends(workspace)]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # What every address engine.webhooks takes has (urlsplit drops C0 controls and spaces before it).
    url: str = Field(max_length=2000, pattern=f"^[\\x00-\\x20]*[Hh][Tt][Tt][Pp][Ss]?://[^/?#{SPACE}][^{SPACE}]*$",
                     examples=["https://shop.example/empathic"])
    events: list[Literal[tuple(sorted(engine.WEBHOOK_EVENTS))]] = Field(  # type: ignore[valid-type]
        min_length=1, examples=[["message.status", "message.received", "contact.opted_out"]])


@router.post("", status_code=201, responses=beyond_schema({
    "url": "an address urlsplit reads, with a host name and a port in range"}))
async def create(payload: WebhookIn, request: Request, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:  # a WebhookInputError is answered 422 (api.problems)
        return await engine.create_webhook(conn, ws, payload.url, payload.events, rt.now())


@router.get("")
async def list_all(request: Request, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        return {"data": await engine.list_webhooks(conn, ws)}


@router.get("/{webhook_id}")
async def get_one(webhook_id: str, request: Request, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        found = await engine.get_webhook(conn, ws, webhook_id)
    if found is None:
        raise Problem(404, f"No webhook {webhook_id!r} in this workspace.")
    return found


@router.delete("/{webhook_id}", status_code=204)
async def delete(webhook_id: str, request: Request, ws: Workspace) -> Response:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        if not await engine.delete_webhook(conn, ws, webhook_id):
            raise Problem(404, f"No webhook {webhook_id!r} in this workspace.")
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries")
async def deliveries(
    webhook_id: str, request: Request, ws: Workspace, limit: Annotated[int, Field(ge=1, le=1000), DIGITS] = 100
) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        if await engine.get_webhook(conn, ws, webhook_id) is None:
            raise Problem(404, f"No webhook {webhook_id!r} in this workspace.")
        return {"data": await engine.list_deliveries(conn, ws, webhook_id, limit)}
