"""API keys: `Authorization: Bearer <key>` resolves to the workspace the key belongs to."""

from __future__ import annotations

import time

from fastapi import Request

from empathic.api.problems import Problem
from empathic.store import keys

_CACHE_SECONDS = 30.0


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="empathic"'})


async def workspace(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise _unauthorized("Send your API key as 'Authorization: Bearer <key>' (create one with `empathic keys create`).")
    key = key.strip()
    digest = keys.key_hash(key)
    cache: dict[str, tuple[str, float]] = request.app.state.key_cache
    hit = cache.get(digest)
    if hit and hit[1] > time.monotonic():
        return hit[0]
    runtime = request.app.state.runtime
    async with runtime.db.transaction() as conn:
        found = await keys.workspace_for(conn, key)
    if found is None:
        raise _unauthorized("This API key is not valid.")
    cache[digest] = (found, time.monotonic() + _CACHE_SECONDS)
    return found
