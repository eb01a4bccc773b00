"""Who calls the API: a machine with `Authorization: Bearer <key>` (the key's workspace, with
an admin's rights), or a person signed in to the web app whose browser sends the session cookie
(no Authorization header). A person may do what their role may on the web, by the route
matched (`needed_role`, an allow-list: a route not listed there is for admins only):

    viewer  reads (GET, HEAD), but not a contact's export nor webhooks and their deliveries
    agent   those reads and exports; sends messages and batches, works the inbox (every POST
            under /v1/inbox), makes and edits contacts (not DELETE: erasing is an admin's),
            their consents, preferences and preference links, understands texts, posts
            events, starts and cancels flow runs, texts as a simulated phone, previews templates
    admin   everything, as an API key may

A change also needs the page's CSRF token in `X-CSRF-Token`; a person who must still choose
their password may do nothing, not even read."""

from __future__ import annotations

import time

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from empathic.api.problems import Problem
from empathic.store import keys, users

_CACHE_SECONDS = 30.0
_READS = frozenset({"GET", "HEAD"})
_RANK: dict[users.Role, int] = {"viewer": 0, "agent": 1, "admin": 2}
_AGENT_CHANGES = frozenset({
    ("POST", "/v1/messages"), ("POST", "/v1/messages/batch"),
    ("POST", "/v1/contacts"), ("PATCH", "/v1/contacts/{contact_id}"), ("POST", "/v1/contacts/{contact_id}/consents"),
    ("PUT", "/v1/contacts/{contact_id}/preferences"), ("POST", "/v1/contacts/{contact_id}/preference-link"),
    ("POST", "/v1/understand"), ("POST", "/v1/events"),
    ("POST", "/v1/flows/{name}/runs"), ("POST", "/v1/runs/{run_id}/cancel"),
    ("POST", "/v1/simulator/phones/{phone}/messages"), ("POST", "/v1/templates/{name}/preview"),
})


def needed_role(method: str, route: str) -> users.Role:
    """The least role a person needs for `method` on the route whose template is `route`
    (as declared: `/v1/contacts/{contact_id}`). Not listed: admin."""
    if not route.startswith("/v1/"):
        return "admin"
    if method in _READS:
        if route == "/v1/webhooks" or route.startswith("/v1/webhooks/"):
            return "admin"  # where every event may be sent, and what was
        return "agent" if route.endswith("/export") else "viewer"
    if (method, route) in _AGENT_CHANGES or (method == "POST" and route.startswith("/v1/inbox/")):
        return "agent"
    return "admin"


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
    if user.must_change_password:
        raise Problem(403, "Choose your own password first (at /account/password).")
    route = request.scope.get("route")  # the matched route: its template names what is asked
    template = str(getattr(route, "path_format", None) or getattr(route, "path", None) or "")
    needed = needed_role(request.method, template)
    if _RANK[user.role] < _RANK[needed]:
        raise Problem(403, f"{request.method} {template} needs the {needed} role (or an API key); you are {_a(user.role)}. "
                           "Ask an admin of your workspace.")
    if request.method not in _READS and not users.csrf_valid(token, request.headers.get("x-csrf-token", "")):
        raise Problem(403, "A change made with a session cookie needs the page's CSRF token in the X-CSRF-Token header.")
    request.state.user_id = user.id
    return user.workspace_id


def _a(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"
