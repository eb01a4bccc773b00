"""Flows drawn as graphs with per-step counts and their problems (P)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
