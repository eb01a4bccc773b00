"""Signing in and out: the sign-in page at / , sign-out, the person's own password (F).

Before a session exists the sign-in form carries a signed double-submit token: a random
nonce in the `empathic_signin` cookie, and in the form its HMAC under a key only the server
holds. A wrong email and a wrong password get the same answer (and cost the same argon2
work). Five wrong passwords in a row lock an account for 15 minutes; 20 failures from one
client address in 15 minutes hold that address back (per process) so unknown emails cannot be
sprayed. Both count an attempt before its password is checked (and forget it if it was
right), so guesses sent all at once get no more checks than guesses sent one by one. A
success opens a new session (a new token: no fixation) and ends the one the browser had.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from empathic.core import passwords
from empathic.core.errors import InputError
from empathic.engine.runtime import Runtime, runtime_of
from empathic.store import privacy, users
from empathic.web.auth import (
    CHOOSE_PASSWORD, SESSION_COOKIE, Person, Refused, hosts, http_allowed, local_path, signed_in,
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

    def attempt(self, address: str, now: datetime) -> datetime | None:
        """Count a sign-in from `address` as failed before its password is checked (no await
        in between: attempts at once all count); when the address is held back, until when
        (and nothing is counted)."""
        times = self._recent(address, now)
        if len(times) >= IP_FAILURES:
            return times[0] + IP_WINDOW
        times.append(now)
        if len(self.failures) > 10_000:  # forget the addresses whose failures all ran out
            for key in [k for k, v in self.failures.items() if not v or v[-1] + IP_WINDOW <= now]:
                del self.failures[key]
        return None

    def succeeded(self, address: str, at: datetime) -> None:
        """The attempt counted `at` was a right password: it is no failure."""
        times = self.failures.get(address)
        if times and at in times:
            times.remove(at)


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
    held = throttle.attempt(address, now)
    if held is not None:
        return await _page(request, status=429, email=email, next_=next_,
                           error=f"Too many failed sign-ins from your network. Try again after {_at(held)}.")
    async with rt.db.transaction() as conn:
        user = await users.by_email(conn, email)
        number = await users.attempt(conn, user, now) if user is not None else None
    if user is not None and number is None:
        return await _locked_page(request, rt, user, email, next_)
    good = await asyncio.to_thread(passwords.verify, user.password_hash if user else None, password)
    if user is None or number is None or not good:
        if user is not None and number is not None and number >= users.LOCK_AFTER:  # this guess locked it
            return await _locked_page(request, rt, user, email, next_)
        return await _page(request, status=401, email=email, next_=next_, error=WRONG)
    throttle.succeeded(address, now)
    if user.disabled_at is not None:
        return await _page(request, status=403, email=email, next_=next_,
                           error="This account is disabled. Ask an admin of your workspace to enable it.")
    rehashed = await asyncio.to_thread(passwords.hash_password, password) if passwords.needs_rehash(user.password_hash) else None
    old = request.cookies.get(SESSION_COOKIE, "")
    async with rt.db.transaction() as conn:
        if not await users.succeeded(conn, user, number, now):  # other guesses locked it meanwhile
            token = None
        else:
            if rehashed is not None:
                await users.rehash(conn, user, rehashed, now)
            if old:
                await users.end_session(conn, old)
            token = await users.open_session(conn, user, now)
    if token is None:
        return await _locked_page(request, rt, user, email, next_)
    where = CHOOSE_PASSWORD if user.must_change_password else (next_ or HOME)
    response = RedirectResponse(where, status_code=303)
    set_session_cookie(response, token)
    response.delete_cookie(SIGNIN_COOKIE, path="/", httponly=True, samesite="lax", secure=not http_allowed())
    return response


def _locked(until: datetime) -> str:
    return (f"This account is locked after {users.LOCK_AFTER} failed sign-ins in a row. "
            f"Try again after {_at(until)}, or ask an admin to reset your password.")


async def _locked_page(request: Request, rt: Runtime, user: users.User, email: str, next_: str) -> HTMLResponse:
    async with rt.db.transaction() as conn:
        found = await users.get(conn, user.workspace_id, user.id)
    until = found.locked_until if found is not None and found.locked_until is not None else rt.now() + users.LOCK_FOR
    return await _page(request, status=403, email=email, next_=next_, error=_locked(until))


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


@router.post("/signout")
async def sign_out(request: Request) -> Response:
    """End this browser's session. A live one needs the CSRF token (`signed_in`); a cookie
    whose session already ended is cleared all the same (from this site only)."""
    rt = runtime_of(request)
    if not same_origin({k.lower(): v for k, v in request.headers.items()}, hosts(request, rt)):
        raise Refused(403, "That request came from another site, so nothing was changed.")
    token = request.cookies.get(SESSION_COOKIE, "")
    async with rt.db.transaction() as conn:
        live = token != "" and await users.session(conn, token, rt.now()) is not None
    if live:
        await signed_in(request)
        async with rt.db.transaction() as conn:
            await users.end_session(conn, token)
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
    """A new password of the person's choosing. Every session of theirs ends, this one too
    (a stolen cookie dies with it): this browser gets a new one. A wrong current password
    counts towards the lock as a wrong sign-in does."""
    rt = runtime_of(request)
    form = await request.form()
    current, new, again = (_text(form.get(name)) for name in ("current", "new", "again"))
    if new != again:
        return _account(request, person, status=400, error="The two new passwords differ, so nothing was changed.")
    try:
        passwords.check_new(new)
    except InputError as exc:
        return _account(request, person, status=400, error=f"{exc} Nothing was changed.")
    now = rt.now()
    number: int | None = None
    async with rt.db.transaction() as conn:
        user = await users.get(conn, person.workspace_id, person.user_id)
        assert user is not None  # the session was just found with its person
        if not person.must_change_password:
            number = await users.attempt(conn, user, now)
    if not person.must_change_password and number is None:
        return await _account_locked(request, rt, person)
    if person.must_change_password:
        same = await asyncio.to_thread(passwords.verify, user.password_hash, new)
    else:
        assert number is not None
        if not await asyncio.to_thread(passwords.verify, user.password_hash, current):
            if number >= users.LOCK_AFTER:
                return await _account_locked(request, rt, person)
            return _account(request, person, status=400, error="Your current password is not right, so nothing was changed.")
        same = new == current
    if same:
        return _account(request, person, status=400, error="Choose a password other than the one you have now.")
    hashed = await asyncio.to_thread(passwords.hash_password, new)
    async with rt.db.transaction() as conn:
        if number is not None and not await users.succeeded(conn, user, number, now):
            token = None  # other wrong guesses locked the account meanwhile
        else:
            user = await users.set_password(conn, user, hashed, now)
            token = await users.open_session(conn, user, now)
    if token is None:
        return await _account_locked(request, rt, person)
    if person.must_change_password:
        response: Response = RedirectResponse(HOME, status_code=303)
    else:
        renewed = replace(person, csrf=users.csrf_token(token))  # the new session's forms
        response = _account(request, renewed, done="Your password is changed. Any other browser you were signed in on is signed out.")
    set_session_cookie(response, token)
    return response


async def _account_locked(request: Request, rt: Runtime, person: Person) -> HTMLResponse:
    async with rt.db.transaction() as conn:
        user = await users.get(conn, person.workspace_id, person.user_id)
    until = user.locked_until if user is not None and user.locked_until is not None else rt.now() + users.LOCK_FOR
    return _account(request, person, status=403, error=_locked(until) + " Nothing was changed.")


@router.post("/account/signout-everywhere")
async def sign_out_everywhere(request: Request, person: Annotated[Person, Depends(signed_in)]) -> Response:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        await users.end_sessions(conn, person.user_id)
    response = RedirectResponse("/?signed_out=everywhere", status_code=303)
    clear_session_cookie(response)
    return response
