"""/v1/events: business systems tell Empathic what happened; triggers turn it into texts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from empathic.api.auth import workspace
from empathic.api.inputs import no_nul
from empathic.api.contacts import valid_timezone
from empathic.api.messages import runtime_of
from empathic.engine.events import ContactInput, EventInput, ingest

router = APIRouter(prefix="/v1/events", tags=["events"], dependencies=[Depends(no_nul)])


class EventContact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str | None = Field(None, max_length=64)
    email: str | None = Field(None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    timezone: str | None = Field(None, max_length=64)
    locale: str | None = Field(None, max_length=35)
    region: str | None = Field(None, min_length=2, max_length=2)
    attributes: dict[str, Any] = Field(default_factory=dict)


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$", examples=["order.dispatched"])
    contact: EventContact
    data: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


@router.post("", status_code=202)
async def post_event(payload: EventIn, request: Request, ws: Annotated[str, Depends(workspace)]) -> dict[str, Any]:
    rt = runtime_of(request)
    c = payload.contact
    event = EventInput(
        type=payload.type,
        contact=ContactInput(c.phone, c.email, valid_timezone(c.timezone), c.locale, c.region, c.attributes),
        data=payload.data,
        idempotency_key=payload.idempotency_key,
    )
    async with rt.db.transaction() as conn:
        view = await ingest(conn, ws, event, rt.catalog, rt.rules, rt.now(), rt.flows)
    rt.flows_moved()
    return view
