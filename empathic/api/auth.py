"""Who calls the API: a machine with `Authorization: Bearer <key>` (the key's workspace, with
an admin's rights), or a person signed in to the web app whose browser sends the session cookie
(no Authorization header): any role may read (GET, HEAD); only an agent or admin may change
anything, and only with the page's CSRF token in `X-CSRF-Token`."""

from __future__ import annotations

import time

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from empathic.api.problems import Problem
from empathic.store import keys, users

_CACHE_SECONDS = 30.0
_READS = frozenset({"GET", "HEAD"})


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="empathic"'})


# Only so the OpenAPI document names the scheme on every operation that takes a key; the
# header is read below, with this module's own answers.
_bearer = HTTPBearer(scheme_name="apiKey", description="An API key (`empathic keys create`)", auto_error=False)


async def workspace(
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None
) -> str:
    header = request.headers.get("authorization")
    if header is None and request.cookies.get(users.COOKIE):
        return await _signed_in(request, request.cookies[users.COOKIE])
    scheme, _, key = (header or "").partition(" ")
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


async def _signed_in(request: Request, token: str) -> str:
    """The workspace of the person whose session cookie came (read afresh: a disabled person
    or a changed role counts at once); `request.state.user_id` names them."""
    runtime = request.app.state.runtime
    async with runtime.db.transaction() as conn:
        found = await users.session(conn, token, runtime.now())
    if found is None:
        raise _unauthorized("Your session has ended: sign in again, or send an API key as 'Authorization: Bearer <key>'.")
    user = found.user
    if request.method not in _READS:
        if user.role not in ("admin", "agent"):
            raise Problem(403, f"A {user.role} may read but not change anything. Ask an admin for the agent role.")
        if not users.csrf_valid(token, request.headers.get("x-csrf-token", "")):
            raise Problem(403, "A change made with a session cookie needs the page's CSRF token in the X-CSRF-Token header.")
        if user.must_change_password:
            raise Problem(403, "Choose your own password first (at /account/password).")
    request.state.user_id = user.id
    return user.workspace_id
