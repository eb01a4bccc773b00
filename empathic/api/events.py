"""/v1/events: business systems tell Empathic what happened; triggers turn it into texts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from empathic.api.auth import workspace
from empathic.api.fields import PHONE_OR_EMAIL, PHONE_RULE, TIME_ZONE_RULE, Phone, Region, TimeZone
from empathic.api.problems import beyond_schema
from empathic.api.contacts import valid_timezone
from empathic.engine.runtime import runtime_of
from empathic.api.inputs import Attributes, Data
from empathic.core.json import Json
from empathic.engine.events import ContactInput, EventInput, ingest

router = APIRouter(prefix="/v1/events", tags=["events"])


class EventContact(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": PHONE_OR_EMAIL})
    phone: Phone | None = None
    email: str | None = Field(None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    timezone: TimeZone | None = None
    locale: str | None = Field(None, max_length=35)
    region: Region | None = None
    attributes: Attributes = Field(default_factory=dict)


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$", examples=["order.dispatched"])
    contact: EventContact
    data: Data = Field(default_factory=dict)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


# What a trigger or flow the event starts makes of it (checked as it runs).
RULES = {
    "type": "the template of a trigger it fires exists",
    "data": "renders every template and starts every flow its triggers name (their variables present)",
    "to": "the contact has the address (phone or email) the triggered message needs",
    "contact.phone": PHONE_RULE,
    "timezone": TIME_ZONE_RULE,
}


@router.post("", status_code=202, responses=beyond_schema(RULES))
async def post_event(payload: EventIn, request: Request, ws: Annotated[str, Depends(workspace)]) -> Json:
    rt = runtime_of(request)
    c = payload.contact
    event = EventInput(
        type=payload.type,
        contact=ContactInput(c.phone, c.email, valid_timezone(c.timezone), c.locale, c.region, c.attributes),
        data=payload.data,
        idempotency_key=payload.idempotency_key,
    )
    async with rt.db.transaction() as conn:
        view = await ingest(conn, ws, event, rt.catalog, rt.acceptance, rt.now(), rt.flows)
    rt.flows_moved()
    return view
