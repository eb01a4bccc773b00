"""Signing in and out: the sign-in page at / , sign-out, the person's own password (F)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
