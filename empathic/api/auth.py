"""API keys: `Authorization: Bearer <key>` resolves to the workspace the key belongs to."""

from __future__ import annotations

import time

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from empathic.api.problems import Problem
from empathic.store import keys

_CACHE_SECONDS = 30.0


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="empathic"'})


# Only so the OpenAPI document names the scheme on every operation that takes a key; the
# header is read below, with this module's own answers.
_bearer = HTTPBearer(scheme_name="apiKey", description="An API key (`empathic keys create`)", auto_error=False)


async def workspace(
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None
) -> str:
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
