"""Signing in and out: the sign-in page at / , sign-out, the person's own password (F).

Before a session exists the sign-in form carries a signed double-submit token: a random
nonce in the `empathic_signin` cookie, and in the form its HMAC under a key only the server
holds. A wrong email and a wrong password get the same answer (and cost the same argon2
work). Five wrong passwords in a row lock an account for 15 minutes; 20 failures from one
client address in 15 minutes hold that address back (per process) so unknown emails cannot be
sprayed. A success opens a new session (a new token: no fixation) and ends the one the
browser had.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from empathic.core import passwords
from empathic.core.errors import InputError
from empathic.engine.runtime import Runtime, runtime_of
from empathic.store import privacy, users
from empathic.web.auth import (
    CHOOSE_PASSWORD, SESSION_COOKIE, Person, hosts, http_allowed, local_path, signed_in,
)
from empathic.web.pages import render
from empathic.web.security import same_origin

router = APIRouter(include_in_schema=False)

SIGNIN_COOKIE = "empathic_signin"
HOME = "/inbox"
IP_FAILURES = 20  # failed sign-ins from one address …
IP_WINDOW = timedelta(minutes=15)  # … within this long hold it back
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
WRONG = "That email and password do not match an account. Check both and try again."


@dataclass
class Throttle:
    """Failed sign-ins per client address, in this process (the runtime's clock)."""

    failures: dict[str, deque[datetime]] = field(default_factory=dict)

    def _recent(self, address: str, now: datetime) -> deque[datetime]:
        times = self.failures.setdefault(address, deque())
        while times and times[0] + IP_WINDOW <= now:
            times.popleft()
        return times

    def held_until(self, address: str, now: datetime) -> datetime | None:
        times = self._recent(address, now)
        return times[0] + IP_WINDOW if len(times) >= IP_FAILURES else None

    def failed(self, address: str, now: datetime) -> None:
        self._recent(address, now).append(now)
        if len(self.failures) > 10_000:  # forget the addresses whose failures all ran out
            for key in [k for k, v in self.failures.items() if not v or v[-1] + IP_WINDOW <= now]:
                del self.failures[key]


def throttle_of(request: Request) -> Throttle:
    state = request.app.state
    if not hasattr(state, "signin_throttle"):
        state.signin_throttle = Throttle()
    throttle: Throttle = state.signin_throttle
    return throttle


def secure_enough(request: Request) -> bool:
    """HTTPS, a loopback host (browsers keep Secure cookies there), or EMPATHIC_WEB_ALLOW_HTTP."""
    return request.url.scheme == "https" or (request.url.hostname or "") in LOOPBACK or http_allowed()


def set_session_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(users.ABSOLUTE.total_seconds()), path="/", httponly=True, samesite="lax",
        secure=not http_allowed(),
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=not http_allowed())


async def _form_key(rt: Runtime) -> bytes:
    async with rt.db.transaction() as conn:
        base = await privacy.link_key(conn, rt.workspace_id)
    return hmac.new(base, b"signin-form", hashlib.sha256).digest()


def _sign(key: bytes, nonce: str) -> str:
    digest = hmac.new(key, nonce.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def _page(
    request: Request, *, status: int = 200, error: str | None = None, notice: str | None = None, email: str = "",
    next_: str = "",
) -> HTMLResponse:
    rt = runtime_of(request)
    nonce = request.cookies.get(SIGNIN_COOKIE, "")
    if not 20 <= len(nonce) <= 100:
        nonce = secrets.token_urlsafe(24)
    page = render(
        request, "signin.html", status=status, person=None, error=error, notice=notice, email=email,
        next=local_path(next_, ""), csrf=_sign(await _form_key(rt), nonce), insecure=not secure_enough(request),
    )
    page.set_cookie(SIGNIN_COOKIE, nonce, max_age=3600, path="/", httponly=True, samesite="lax", secure=not http_allowed())
    return page


def _at(moment: datetime) -> str:
    return moment.strftime("%H:%M UTC")


@router.get("/", response_class=HTMLResponse)
async def start(request: Request) -> Response:
    """The sign-in page; a person already signed in goes to the inbox."""
    rt = runtime_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    if token:
        async with rt.db.transaction() as conn:
            found = await users.session(conn, token, rt.now())
        if found is not None:
            where = CHOOSE_PASSWORD if found.user.must_change_password else HOME
            return RedirectResponse(where, status_code=303)
    notice = "You were signed out everywhere." if request.query_params.get("signed_out") == "everywhere" else (
        "You are signed out." if request.query_params.get("signed_out") else None)
    return await _page(request, notice=notice, next_=request.query_params.get("next", ""))


@router.post("/signin", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    rt = runtime_of(request)
    form = await request.form()
    email = _text(form.get("email"))[:320]
    password = _text(form.get("password"))
    next_ = local_path(_text(form.get("next")), "")
    if not secure_enough(request):
        return await _page(request, status=403, email=email, next_=next_)
    nonce = request.cookies.get(SIGNIN_COOKIE, "")
    given = _text(form.get("csrf"))
    if (not same_origin({k.lower(): v for k, v in request.headers.items()}, hosts(request, rt)) or not nonce
            or not given or not hmac.compare_digest(_sign(await _form_key(rt), nonce).encode(), given.encode("utf-8", "surrogatepass"))):
        return await _page(request, status=403, email=email, next_=next_,
                           error="That sign-in form had expired, so you were not signed in. Please try again.")
    address = request.client.host if request.client else "unknown"
    throttle = throttle_of(request)
    now = rt.now()
    held = throttle.held_until(address, now)
    if held is not None:
        return await _page(request, status=429, email=email, next_=next_,
                           error=f"Too many failed sign-ins from your network. Try again after {_at(held)}.")
    async with rt.db.transaction() as conn:
        user = await users.by_email(conn, email)
    if user is not None and user.locked(now):
        assert user.locked_until is not None
        return await _page(request, status=403, email=email, next_=next_, error=_locked(user.locked_until))
    good = await asyncio.to_thread(passwords.verify, user.password_hash if user else None, password)
    if user is None or not good:
        throttle.failed(address, now)
        if user is None:
            return await _page(request, status=401, email=email, next_=next_, error=WRONG)
        async with rt.db.transaction() as conn:
            user = await users.failed(conn, user, now)
        if user.locked(now):
            assert user.locked_until is not None
            return await _page(request, status=403, email=email, next_=next_, error=_locked(user.locked_until))
        return await _page(request, status=401, email=email, next_=next_, error=WRONG)
    if user.disabled_at is not None:
        return await _page(request, status=403, email=email, next_=next_,
                           error="This account is disabled. Ask an admin of your workspace to enable it.")
    rehashed = await asyncio.to_thread(passwords.hash_password, password) if passwords.needs_rehash(user.password_hash) else None
    old = request.cookies.get(SESSION_COOKIE, "")
    async with rt.db.transaction() as conn:
        await users.succeeded(conn, user)
        if rehashed is not None:
            await users.rehash(conn, user, rehashed, now)
        if old:
            await users.end_session(conn, old)
        token = await users.open_session(conn, user, now)
    where = CHOOSE_PASSWORD if user.must_change_password else (next_ or HOME)
    response = RedirectResponse(where, status_code=303)
    set_session_cookie(response, token)
    response.delete_cookie(SIGNIN_COOKIE, path="/", httponly=True, samesite="lax", secure=not http_allowed())
    return response


def _locked(until: datetime) -> str:
    return (f"This account is locked after {users.LOCK_AFTER} failed sign-ins in a row. "
            f"Try again after {_at(until)}, or ask an admin to reset your password.")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


@router.post("/signout")
async def sign_out(request: Request, person: Annotated[Person, Depends(signed_in)]) -> Response:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        await users.end_session(conn, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/?signed_out=1", status_code=303)
    clear_session_cookie(response)
    return response


# -- the person's own account ----------------------------------------------------------------


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request, person: Annotated[Person, Depends(signed_in)]) -> HTMLResponse:
    return _account(request, person)


@router.get(CHOOSE_PASSWORD, response_class=HTMLResponse)
async def choose_password(request: Request, person: Annotated[Person, Depends(signed_in)]) -> HTMLResponse:
    return _account(request, person)


def _account(request: Request, person: Person, *, status: int = 200, error: str | None = None,
             done: str | None = None) -> HTMLResponse:
    return render(request, "account.html", status=status, person=person, error=error, done=done,
                  choosing=person.must_change_password, min_length=passwords.MIN_LENGTH)


@router.post(CHOOSE_PASSWORD, response_class=HTMLResponse)
async def change_password(request: Request, person: Annotated[Person, Depends(signed_in)]) -> Response:
    """A new password of the person's choosing; their other sessions end."""
    rt = runtime_of(request)
    form = await request.form()
    current, new, again = (_text(form.get(name)) for name in ("current", "new", "again"))
    async with rt.db.transaction() as conn:
        user = await users.get(conn, person.workspace_id, person.user_id)
    assert user is not None  # the session was just found with its person
    if not person.must_change_password and not await asyncio.to_thread(passwords.verify, user.password_hash, current):
        return _account(request, person, status=400, error="Your current password is not right, so nothing was changed.")
    if new != again:
        return _account(request, person, status=400, error="The two new passwords differ, so nothing was changed.")
    try:
        passwords.check_new(new)
    except InputError as exc:
        return _account(request, person, status=400, error=f"{exc} Nothing was changed.")
    if await asyncio.to_thread(passwords.verify, user.password_hash, new):
        return _account(request, person, status=400, error="Choose a password other than the one you have now.")
    hashed = await asyncio.to_thread(passwords.hash_password, new)
    async with rt.db.transaction() as conn:
        await users.set_password(conn, user, hashed, rt.now(), keep_session=person.session)
    if person.must_change_password:
        return RedirectResponse(HOME, status_code=303)
    return _account(request, person, done="Your password is changed. Any other browser you were signed in on is signed out.")


@router.post("/account/signout-everywhere")
async def sign_out_everywhere(request: Request, person: Annotated[Person, Depends(signed_in)]) -> Response:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        await users.end_sessions(conn, person.user_id)
    response = RedirectResponse("/?signed_out=everywhere", status_code=303)
    clear_session_cookie(response)
    return response
