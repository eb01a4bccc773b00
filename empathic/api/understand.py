"""/v1/understand: what a reply means (intent, proposed time, picked option, language)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from empathic.api.auth import workspace
from empathic.api.fields import TIME_ZONE_RULE, Instant, TimeZone
from empathic.api.problems import beyond_schema
from empathic.api.contacts import valid_timezone
from empathic.engine.runtime import runtime_of
from empathic.understand import Intent, understand

router = APIRouter(prefix="/v1", tags=["understand"])
Workspace = Annotated[str, Depends(workspace)]


class UnderstandIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": "can we do thurs 4 instead", "timezone": "America/New_York"}]},
    )
    text: str = Field(max_length=2000, description="the reply as received")
    timezone: TimeZone = Field("UTC", description="the person's IANA time zone; times are read there")
    now: Instant | None = Field(None, description="anchor for 'tomorrow', 'thurs 4'…; default: the server's clock")
    options: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        None, max_length=50, description='the options the message offered, e.g. ["A", "B"] or ["1", "2", "3"]'
    )


class UnderstandOut(BaseModel):
    intent: Intent
    when: str | None = Field(description="ISO 8601: a datetime with offset, or a date when only a day was given")
    when_kind: Literal["datetime", "date"] | None
    option: str | None
    language: str = Field(description="ISO 639-1")
    confidence: float = Field(ge=0, le=1)


@router.post("/understand", response_model=UnderstandOut, responses=beyond_schema({"timezone": TIME_ZONE_RULE}))
async def understand_reply(payload: UnderstandIn, request: Request, ws: Workspace) -> dict[str, Any]:
    zone = valid_timezone(payload.timezone)
    assert zone is not None
    now = payload.now or runtime_of(request).now()
    meaning = understand(payload.text, now=now, timezone=zone, options=payload.options)
    when = meaning.when
    return {
        "intent": meaning.intent,
        "when": when.isoformat() if when is not None else None,
        "when_kind": "datetime" if isinstance(when, datetime) else "date" if isinstance(when, date) else None,
        "option": meaning.option,
        "language": meaning.language,
        "confidence": meaning.confidence,
    }
