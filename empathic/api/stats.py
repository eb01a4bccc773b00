"""/v1/stats: what the texts did, counted from the messages (D)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/stats", tags=["stats"])
