"""The dashboard: figures from /v1/stats drawn with Chart.js (D)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
