"""Input no store can keep: PostgreSQL text holds no NUL character, so a request carrying one
(in its path, query or body) is refused with 400 before anything reads or writes it."""

from __future__ import annotations

import re

from fastapi import Request

from empathic.api.problems import Problem

# In JSON text a NUL can only be the escape \u0000: one with an odd number of backslashes before it.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


async def no_nul(request: Request) -> None:
    if "\x00" in request.url.path or any("\x00" in k + v for k, v in request.query_params.multi_items()):
        raise Problem(400, "The URL holds a NUL character (%00), which cannot be stored.")
    body = await request.body()  # the body FastAPI already read, if any
    if b"\x00" in body or (b"\\u0000" in body and _JSON_NUL.search(body)):  # the regex only where it may match
        raise Problem(400, "The body holds a NUL character (\\u0000), which cannot be stored.")
