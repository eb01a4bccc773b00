"""Who is asking: the signed-in person of a request (`Person`), as FastAPI dependencies.

    person: Annotated[Person, Depends(signed_in)]     any role
    person: Annotated[Person, Depends(acting)]        agent or admin
    person: Annotated[Person, Depends(administering)] admin only

The session cookie (`empathic_session`) is looked up on every request, so a disabled person
or a changed role takes effect at once. Not signed in: a GET is sent (303) to the sign-in page
with `next`, anything else answers 401. A request that changes something (POST …) must also
carry the session's CSRF token (form field `csrf` or header `X-CSRF-Token`) and not come from
another site (`security.same_origin`), else 403. A person whose password an admin set must
choose their own first: every page but that one and sign-out sends them there. A long-lived
answer (the /live stream) asks again every SESSION_RECHECK seconds (`SessionWatch`).

The refusals are `Refused` (an HTTPException: without `install` the app's own handler still
answers the right status and Location); `install(app)` answers them as pages.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from empathic.engine.runtime import Runtime, runtime_of
from empathic.store import users
from empathic.web.pages import render
from empathic.web.security import same_origin

Role = Literal["admin", "agent", "viewer"]
SESSION_COOKIE = users.COOKIE
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CHOOSE_PASSWORD = "/account/password"  # where a person with a one-time password is sent
_WHILE_CHOOSING = frozenset({CHOOSE_PASSWORD, "/signout"})
SESSION_RECHECK = 5.0  # seconds between two looks at the session of a long-lived answer


@dataclass(frozen=True, slots=True)
class Person:
    """The signed-in person of a request."""

    user_id: str
    workspace_id: str
    email: str
    name: str | None
    role: Role
    csrf: str  # what this person's forms carry (hidden `csrf`) and their fetches send (X-CSRF-Token)
    must_change_password: bool = False

    @property
    def can_act(self) -> bool:
        return self.role in ("admin", "agent")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Refused(HTTPException):
    """A request the person may not make: 303 to sign in, 401, or 403 with why."""


async def signed_in(request: Request) -> Person:
    """The person signed in on this browser (any role); CSRF and origin checked on an unsafe method."""
    cached = getattr(request.state, "person", None)
    if isinstance(cached, Person):
        return cached
    rt = runtime_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    found = None
    if token:
        async with rt.db.transaction() as conn:
            found = await users.session(conn, token, rt.now())
    if found is None:
        if request.method in SAFE_METHODS:
            raise Refused(303, "Sign in to see this page.", headers={"Location": sign_in_url(request)})
        raise Refused(401, "Sign in first: your session has ended or you have not signed in.")
    user = found.user
    person = Person(
        user_id=user.id, workspace_id=user.workspace_id, email=user.email, name=user.name, role=user.role,
        csrf=users.csrf_token(token), must_change_password=user.must_change_password,
    )
    if request.method not in SAFE_METHODS:
        await _check_forgery(request, rt, token)
    if person.must_change_password and request.url.path not in _WHILE_CHOOSING:
        request.state.person = person  # the refusal page shows who is signed in
        if request.method in SAFE_METHODS:
            raise Refused(303, "Choose your own password first.", headers={"Location": CHOOSE_PASSWORD})
        raise Refused(403, "Choose your own password first.")
    request.state.person = person
    return person


@dataclass(slots=True)
class SessionWatch:
    """Whether the session a long-lived answer (a stream) opened with still holds: False once
    it was signed out, expired or ended by a password change, or its person was disabled.
    Looks at the database at most every SESSION_RECHECK seconds."""

    request: Request
    person: Person
    checked_at: float = field(default_factory=time.monotonic)

    async def holds(self) -> bool:
        if time.monotonic() - self.checked_at < SESSION_RECHECK:
            return True
        rt = runtime_of(self.request)
        token = self.request.cookies.get(SESSION_COOKIE, "")
        async with rt.db.transaction() as conn:
            found = await users.session(conn, token, rt.now(), mark_seen=False)  # a stream is no use of it
        self.checked_at = time.monotonic()
        return found is not None and found.user.id == self.person.user_id


async def acting(request: Request) -> Person:
    """An agent or admin: who may change things."""
    person = await signed_in(request)
    if not person.can_act:
        raise Refused(403, "A viewer can look but not change anything here. Ask an admin for the agent role.")
    return person


async def administering(request: Request) -> Person:
    """An admin of the workspace."""
    person = await signed_in(request)
    if not person.is_admin:
        raise Refused(403, "Only an admin of this workspace may do this.")
    return person


async def _check_forgery(request: Request, rt: Runtime, token: str) -> None:
    if not same_origin({k.lower(): v for k, v in request.headers.items()}, hosts(request, rt)):
        raise Refused(403, "That request came from another site, so nothing was changed.")
    given = request.headers.get("x-csrf-token")
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        field = (await request.form()).get("csrf")  # Starlette keeps the parsed form for the route
        given = field if isinstance(field, str) else None
    if not given or not users.csrf_valid(token, given):
        raise Refused(403, "That form has expired or was not one this site gave you, so nothing was changed. "
                           "Reload the page and try again.")


def hosts(request: Request, rt: Runtime) -> set[str]:
    """The hosts this app is served as: the one asked for, and the public URL's."""
    found = {request.headers.get("host", "")}
    if rt.settings.public_url:
        found.add(rt.settings.public_url.split("://", 1)[-1].split("/", 1)[0])
    return found


def sign_in_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/" if here == "/" else "/?next=" + quote(here, safe="")


def local_path(next_: str | None, default: str = "/inbox") -> str:
    """`next_` when it is a path on this site, else `default` (never an open redirect)."""
    if not next_ or not next_.startswith("/") or next_.startswith(("//", "/\\")) or any(c in next_ for c in "\\\r\n\t"):
        return default
    return next_


def http_allowed() -> bool:
    """EMPATHIC_WEB_ALLOW_HTTP=1: sign-in over plain HTTP to any host (the cookie then lacks `Secure`)."""
    return os.environ.get("EMPATHIC_WEB_ALLOW_HTTP", "").strip().lower() in ("1", "true", "yes")


def install(app: FastAPI) -> None:
    """Answer `Refused` as a page (a redirect to sign in, or why not) rather than as JSON."""

    @app.exception_handler(Refused)
    async def on_refused(request: Request, exc: Refused) -> Response:
        if exc.status_code == 303:
            return RedirectResponse((exc.headers or {}).get("Location", "/"), status_code=303)
        person = getattr(request.state, "person", None)
        return render(
            request, "signin_refused.html", status=exc.status_code, person=person if isinstance(person, Person) else None,
            message=exc.detail, signed_out=exc.status_code == 401,
        )
