"""The phone: a virtual number of the built-in simulator, driven from the browser (P)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
