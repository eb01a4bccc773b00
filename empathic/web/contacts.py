"""Contacts: search, one contact's page, export and erase (C)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
