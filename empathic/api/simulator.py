"""/v1/simulator: the built-in carrier's virtual phones, and its receipt behaviour."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from empathic.api.auth import workspace
from empathic.api.fields import DIGITS, PHONE_RULE, Number, Phone
from empathic.api.problems import beyond_schema
from empathic.engine.runtime import runtime_of
from empathic.channels.simulator import Simulator
from empathic.core.phones import normalize

router = APIRouter(prefix="/v1/simulator", tags=["simulator"])


def simulator_of(request: Request, ws: str) -> Simulator:
    rt = runtime_of(request)
    if rt.simulator is None:
        raise HTTPException(404, "this project declares no simulator channel")
    # Its phones text the runtime's own workspace, so only that workspace drives them; what
    # a phone shows is filtered to that workspace's texts (other workspaces may send to the
    # same virtual number through the simulator channel).
    if ws != rt.workspace_id:
        raise HTTPException(404, "the simulator belongs to the server's default workspace")
    return rt.simulator
Workspace = Annotated[str, Depends(workspace)]


class PhoneText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=5000)


class SimulatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    receipt_delay: Number | None = Field(None, ge=0, le=86_400, description="seconds until delivery receipts")
    fail_share: Number | None = Field(None, ge=0, le=1, description="share of receipts that report undelivered")


@router.get("/phones/{phone}/messages", responses=beyond_schema({"phone": PHONE_RULE}))
async def phone_messages(
    phone: Annotated[Phone, Path()], request: Request, ws: Workspace, limit: Annotated[int, Field(ge=1, le=1000), DIGITS] = 100
) -> dict[str, Any]:
    rt = runtime_of(request)
    e164 = normalize(phone, rt.settings.default_region)
    texts = await simulator_of(request, ws).phone_messages(e164, workspace_id=ws, limit=limit)
    return {"phone": e164, "messages": [asdict(t) for t in texts]}


@router.post("/phones/{phone}/messages", status_code=202, responses=beyond_schema({"phone": PHONE_RULE}))
async def phone_sends(phone: Annotated[Phone, Path()], payload: PhoneText, request: Request, ws: Workspace) -> dict[str, Any]:
    rt = runtime_of(request)
    e164 = normalize(phone, rt.settings.default_region)
    message_id = await simulator_of(request, ws).phone_sends(e164, payload.body)
    return {"phone": e164, "message_id": message_id}


@router.get("")
async def get_config(request: Request, ws: Workspace) -> dict[str, Any]:
    sim = simulator_of(request, ws)
    s = sim.settings
    return {"receipt_delay": s.receipt_delay, "fail_share": s.fail_share, "tps": s.tps, "number": sim.sender}


@router.patch("")
async def configure(payload: SimulatorConfig, request: Request, ws: Workspace) -> dict[str, Any]:
    simulator_of(request, ws).configure(receipt_delay=payload.receipt_delay, fail_share=payload.fail_share)
    return await get_config(request, ws)
