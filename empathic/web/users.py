"""Users of a workspace, managed by its admins (F)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
