"""Live updates for open pages: a server-sent event stream per signed-in person (I)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
