"""Sign-in, sessions and CSRF through the real app on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from datetime import timedelta
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI

from empathic.api.app import create_app
from empathic.core import passwords
from empathic.core.errors import InputError
from empathic.engine.runtime import Runtime
from empathic.store import users
from empathic.web import auth, live, signin
from empathic.web.auth import Person, acting, administering, signed_in
from tests.conftest import eventually
from tests.patience import patient
from tests.web.conftest import BASE_URL, PASSWORD, password_hash, signed_in_client


class MovedClock:
    """The system clock, moved ahead by `ahead` (sessions, lock-outs)."""

    def __init__(self, runtime: Runtime) -> None:
        self.inner = runtime.clock
        self.ahead = timedelta(0)

    def now(self):  # type: ignore[no-untyped-def]
        return self.inner.now() + self.ahead


def move_clock(runtime: Runtime) -> MovedClock:
    clock = MovedClock(runtime)
    runtime.clock = clock
    return clock


# -- passwords ------------------------------------------------------------------------------


def test_hash_verify_and_rehash() -> None:
    hashed = passwords.hash_password("a long enough password")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify(hashed, "a long enough password")
    assert not passwords.verify(hashed, "a long enough passworD")
    assert not passwords.verify(None, "a long enough password")
    assert not passwords.verify("not a hash", "x")
    assert not passwords.needs_rehash(hashed)
    weak = passwords.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("x" * 10)
    assert passwords.needs_rehash(weak)


def test_new_password_rules() -> None:
    with pytest.raises(InputError, match="at least 10 characters"):
        passwords.check_new("short")
    passwords.check_new("0123456789")
    assert len(set(passwords.one_time() for _ in range(5))) == 5


# -- the dependencies -----------------------------------------------------------------------


def _with_probe_routes(runtime: Runtime):  # type: ignore[no-untyped-def]
    app = create_app(runtime)

    @app.get("/probe/any")
    async def any_role(person: Annotated[Person, Depends(signed_in)]) -> dict[str, str]:
        return {"role": person.role, "workspace": person.workspace_id}

    @app.post("/probe/act")
    async def act(person: Annotated[Person, Depends(acting)]) -> dict[str, str]:
        return {"role": person.role}

    @app.post("/probe/admin")
    async def admin(person: Annotated[Person, Depends(administering)]) -> dict[str, str]:
        return {"role": person.role}

    return app


async def test_signed_in_client_and_dependencies(runtime: Runtime) -> None:
    app = _with_probe_routes(runtime)
    async with await signed_in_client(runtime, "agent", app=app) as agent, \
            await signed_in_client(runtime, "viewer", app=app) as viewer, \
            await signed_in_client(runtime, "admin", app=app) as admin:
        answer = await agent.get("/probe/any")
        assert answer.status_code == 200 and answer.json() == {"role": "agent", "workspace": agent.workspace_id}
        assert (await agent.post("/probe/act", headers={"X-CSRF-Token": agent.csrf})).status_code == 200
        assert (await agent.post("/probe/act", data={"csrf": agent.csrf})).status_code == 200
        assert (await agent.post("/probe/act")).status_code == 403
        assert (await agent.post("/probe/act", data={"csrf": viewer.csrf})).status_code == 403
        assert (await agent.post("/probe/act", headers={"X-CSRF-Token": agent.csrf, "Origin": "https://evil.test"})).status_code == 403
        assert (await agent.post("/probe/act", headers={"X-CSRF-Token": agent.csrf, "Sec-Fetch-Site": "cross-site"})).status_code == 403
        assert (await agent.post("/probe/admin", headers={"X-CSRF-Token": agent.csrf})).status_code == 403
        assert (await viewer.post("/probe/act", headers={"X-CSRF-Token": viewer.csrf})).status_code == 403
        assert (await viewer.get("/probe/any")).status_code == 200
        assert (await admin.post("/probe/admin", headers={"X-CSRF-Token": admin.csrf})).status_code == 200
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as nobody:
        away = await nobody.get("/probe/any?x=1")
        assert away.status_code == 303 and away.headers["location"] == "/?next=%2Fprobe%2Fany%3Fx%3D1"
        assert (await nobody.post("/probe/act")).status_code == 401


async def test_role_and_disable_take_effect_at_next_request(runtime: Runtime) -> None:
    app = _with_probe_routes(runtime)
    async with await signed_in_client(runtime, "agent", app=app) as agent:
        assert (await agent.post("/probe/act", headers={"X-CSRF-Token": agent.csrf})).status_code == 200
        async with runtime.db.transaction() as conn:
            user = await users.get(conn, agent.workspace_id, agent.user_id)
            assert user is not None
            user = await users.set_role(conn, user, "viewer", runtime.now())
        assert (await agent.post("/probe/act", headers={"X-CSRF-Token": agent.csrf})).status_code == 403
        async with runtime.db.transaction() as conn:
            await users.set_disabled(conn, user, True, runtime.now())
        assert (await agent.get("/probe/any")).status_code == 303


async def test_session_expires_idle_and_absolute(runtime: Runtime) -> None:
    clock = move_clock(runtime)
    app = _with_probe_routes(runtime)
    async with await signed_in_client(runtime, "agent", app=app) as agent:
        clock.ahead = timedelta(hours=11)
        assert (await agent.get("/probe/any")).status_code == 200  # seen: idle counts from now
        clock.ahead = timedelta(hours=22)
        assert (await agent.get("/probe/any")).status_code == 200
        clock.ahead = timedelta(hours=34, minutes=1)
        assert (await agent.get("/probe/any")).status_code == 303  # 12 h unused
    async with await signed_in_client(runtime, "agent", app=app) as agent:
        for hours in range(11, 24 * 7, 11):
            clock.ahead = timedelta(hours=34 + hours)
            assert (await agent.get("/probe/any")).status_code == 200
        clock.ahead = timedelta(hours=34 + 24 * 7, minutes=2)
        assert (await agent.get("/probe/any")).status_code == 303  # 7 days in all


# -- signing in through the page --------------------------------------------------------------


async def _make_user(runtime: Runtime, email: str, role: str = "agent", **kw: object) -> users.User:
    async with runtime.db.transaction() as conn:
        return await users.create(conn, runtime.workspace_id, email, role, password_hash(), runtime.now(), **kw)  # type: ignore[arg-type]


def _csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def _sign_in(browser: httpx.AsyncClient, email: str, password: str, next_: str = "") -> httpx.Response:
    page = await browser.get("/")
    return await browser.post("/signin", data={"email": email, "password": password, "csrf": _csrf_of(page), "next": next_})


def _browser(runtime: Runtime, base_url: str = BASE_URL) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime)), base_url=base_url)


async def test_sign_in_ok_rotates_session_and_signs_out(runtime: Runtime) -> None:
    ana = await _make_user(runtime, "Ana@Example.com")
    async with runtime.db.transaction() as conn:
        planted = await users.open_session(conn, ana, runtime.now())  # a real session someone knows
    async with _browser(runtime) as browser:
        page = await browser.get("/")
        assert page.status_code == 200 and "Sign in" in page.text
        browser.cookies.set("empathic_session", planted, domain="empathic.test")
        assert (await browser.get("/account")).status_code == 200  # it signs in: signing in must end it
        done = await browser.post("/signin", data={"email": "ana@EXAMPLE.com", "password": PASSWORD, "csrf": _csrf_of(page),
                                                   "next": "/contacts?q=1"})
        assert done.status_code == 303 and done.headers["location"] == "/contacts?q=1"
        cookie = done.headers["set-cookie"]
        assert "empathic_session=" in cookie and "HttpOnly" in cookie and "Secure" in cookie
        assert "samesite=lax" in cookie.lower() and "Path=/" in cookie
        token = browser.cookies.get("empathic_session", domain="empathic.test")
        assert token and token != planted
        async with runtime.db.transaction() as conn:
            assert await users.session(conn, planted, runtime.now()) is None
            assert await users.session(conn, token, runtime.now()) is not None
        home = await browser.get("/")
        assert home.status_code == 303 and home.headers["location"] == "/inbox"
        account = await browser.get("/account")
        assert account.status_code == 200 and "ana@example.com" in account.text
        csrf = users.csrf_token(token)
        assert (await browser.post("/signout")).status_code == 403  # no CSRF
        out = await browser.post("/signout", data={"csrf": csrf})
        assert out.status_code == 303
        browser.cookies.set("empathic_session", token, domain="empathic.test")  # a copy of the old cookie
        assert (await browser.get("/account")).status_code == 303


@pytest.mark.parametrize("next_", ["https://evil.test/", "//evil.test/x", "/\\evil.test", "javascript:alert(1)"])
async def test_next_is_never_an_open_redirect(runtime: Runtime, next_: str) -> None:
    await _make_user(runtime, "ana@example.com")
    async with _browser(runtime) as browser:
        done = await _sign_in(browser, "ana@example.com", PASSWORD, next_=next_)
        assert done.status_code == 303 and done.headers["location"] == "/inbox"


async def test_wrong_email_and_wrong_password_read_the_same(runtime: Runtime) -> None:
    await _make_user(runtime, "ana@example.com")
    async with _browser(runtime) as browser:
        wrong_password = await _sign_in(browser, "ana@example.com", "not the password")
        wrong_email = await _sign_in(browser, "bob@example.com", PASSWORD)
        assert wrong_password.status_code == wrong_email.status_code == 401
        assert "do not match an account" in wrong_password.text and "do not match an account" in wrong_email.text
        assert "empathic_session" not in browser.cookies


async def test_forged_or_missing_signin_token_is_refused(runtime: Runtime) -> None:
    await _make_user(runtime, "ana@example.com")
    async with _browser(runtime) as browser:
        await browser.get("/")
        for csrf in ("", "forged"):
            refused = await browser.post("/signin", data={"email": "ana@example.com", "password": PASSWORD, "csrf": csrf})
            assert refused.status_code == 403 and "expired" in refused.text
        page = await browser.get("/")
        cross = await browser.post("/signin", headers={"Origin": "https://evil.test"},
                                   data={"email": "ana@example.com", "password": PASSWORD, "csrf": _csrf_of(page)})
        assert cross.status_code == 403


async def test_five_failures_lock_for_fifteen_minutes(runtime: Runtime) -> None:
    clock = move_clock(runtime)
    await _make_user(runtime, "ana@example.com")
    async with _browser(runtime) as browser:
        for _ in range(4):
            assert (await _sign_in(browser, "ana@example.com", "wrong password")).status_code == 401
        locked = await _sign_in(browser, "ana@example.com", "wrong password")
        assert locked.status_code == 403 and "locked" in locked.text and "Try again after" in locked.text
        still = await _sign_in(browser, "ana@example.com", PASSWORD)  # even the right password
        assert still.status_code == 403 and "locked" in still.text
        clock.ahead = timedelta(minutes=15, seconds=1)
        assert (await _sign_in(browser, "ana@example.com", PASSWORD)).status_code == 303
    async with runtime.db.transaction() as conn:
        user = await users.by_email(conn, "ana@example.com")
    assert user is not None and user.failed_signins == 0 and user.locked_until is None


async def test_a_success_resets_the_count(runtime: Runtime) -> None:
    await _make_user(runtime, "ana@example.com")
    async with _browser(runtime) as browser:
        for _ in range(4):
            await _sign_in(browser, "ana@example.com", "wrong password")
        assert (await _sign_in(browser, "ana@example.com", PASSWORD)).status_code == 303
        browser.cookies.clear()
        for _ in range(4):
            assert (await _sign_in(browser, "ana@example.com", "wrong password")).status_code == 401


async def test_ip_throttle_holds_back_spraying(runtime: Runtime) -> None:
    clock = move_clock(runtime)
    await _make_user(runtime, "ana@example.com")
    async with _browser(runtime) as browser:
        for n in range(20):
            assert (await _sign_in(browser, f"nobody{n}@example.com", "whatever guess")).status_code == 401
        held = await _sign_in(browser, "ana@example.com", PASSWORD)
        assert held.status_code == 429 and "Too many failed sign-ins" in held.text
        clock.ahead = timedelta(minutes=15, seconds=1)
        assert (await _sign_in(browser, "ana@example.com", PASSWORD)).status_code == 303


async def test_plain_http_refused_but_loopback_allowed(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    await _make_user(runtime, "ana@example.com")
    async with _browser(runtime, "http://empathic.example") as browser:
        page = await browser.get("/")
        assert "https://" in page.text and 'name="password"' not in page.text
        refused = await browser.post("/signin", data={"email": "ana@example.com", "password": PASSWORD, "csrf": "x"})
        assert refused.status_code == 403 and "empathic_session" not in browser.cookies
    async with _browser(runtime, "http://127.0.0.1:8000") as browser:
        page = await browser.get("/")  # browsers keep Secure cookies on loopback; httpx does not: sent by hand
        nonce = page.headers["set-cookie"].split(";")[0]
        assert "Secure" in page.headers["set-cookie"]
        done = await browser.post("/signin", headers={"Cookie": nonce},
                                  data={"email": "ana@example.com", "password": PASSWORD, "csrf": _csrf_of(page)})
        assert done.status_code == 303 and "Secure" in done.headers["set-cookie"]
    monkeypatch.setenv("EMPATHIC_WEB_ALLOW_HTTP", "1")
    async with _browser(runtime, "http://empathic.example") as browser:
        done = await _sign_in(browser, "ana@example.com", PASSWORD)
        assert done.status_code == 303 and "Secure" not in done.headers["set-cookie"]


async def test_one_time_password_must_be_changed_first(runtime: Runtime) -> None:
    await _make_user(runtime, "ana@example.com", must_change_password=True)
    async with _browser(runtime) as browser:
        done = await _sign_in(browser, "ana@example.com", PASSWORD)
        assert done.status_code == 303 and done.headers["location"] == "/account/password"
        assert (await browser.get("/account")).headers.get("location") == "/account/password"
        page = await browser.get("/account/password")
        assert page.status_code == 200 and "Choose your password" in page.text
        csrf = _csrf_of(page)
        short = await browser.post("/account/password", data={"csrf": csrf, "new": "short", "again": "short"})
        assert short.status_code == 400 and "at least 10 characters" in short.text
        differ = await browser.post("/account/password", data={"csrf": csrf, "new": "0123456789a", "again": "0123456789b"})
        assert differ.status_code == 400 and "differ" in differ.text
        chosen = await browser.post("/account/password", data={"csrf": csrf, "new": "my own passphrase", "again": "my own passphrase"})
        assert chosen.status_code == 303 and chosen.headers["location"] == "/inbox"
        assert (await browser.get("/account")).status_code == 200


async def test_changing_password_ends_every_session_this_one_too(runtime: Runtime) -> None:
    await _make_user(runtime, "ana@example.com")
    async with _browser(runtime) as here, _browser(runtime) as there:
        await _sign_in(here, "ana@example.com", PASSWORD)
        await _sign_in(there, "ana@example.com", PASSWORD)
        old = here.cookies.get("empathic_session", domain="empathic.test")
        assert old
        page = await here.get("/account")
        csrf = _csrf_of(page)
        wrong = await here.post("/account/password", data={"csrf": csrf, "current": "nope", "new": "a new passphrase", "again": "a new passphrase"})
        assert wrong.status_code == 400 and "current password" in wrong.text
        changed = await here.post("/account/password", data={"csrf": csrf, "current": PASSWORD, "new": "a new passphrase", "again": "a new passphrase"})
        assert changed.status_code == 200 and "is changed" in changed.text
        new = here.cookies.get("empathic_session", domain="empathic.test")
        assert new and new != old and "HttpOnly" in changed.headers["set-cookie"]
        assert _csrf_of(changed) == users.csrf_token(new)  # the page's forms go on working
        async with runtime.db.transaction() as conn:
            assert await users.session(conn, old, runtime.now()) is None  # a stolen copy of the cookie dies
        assert (await here.get("/account")).status_code == 200
        assert (await there.get("/account")).status_code == 303
        here.cookies.set("empathic_session", old, domain="empathic.test")
        assert (await here.get("/account")).status_code == 303
        here.cookies.clear()
        assert (await _sign_in(here, "ana@example.com", "a new passphrase")).status_code == 303


async def test_sign_out_everywhere(runtime: Runtime) -> None:
    await _make_user(runtime, "ana@example.com")
    async with _browser(runtime) as here, _browser(runtime) as there:
        await _sign_in(here, "ana@example.com", PASSWORD)
        await _sign_in(there, "ana@example.com", PASSWORD)
        csrf = _csrf_of(await here.get("/account"))
        assert (await here.post("/account/signout-everywhere")).status_code == 403
        out = await here.post("/account/signout-everywhere", data={"csrf": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/?signed_out=everywhere"
        assert (await here.get("/account")).status_code == 303
        assert (await there.get("/account")).status_code == 303


# -- the API with a session cookie ----------------------------------------------------------


async def test_api_takes_the_session_cookie(runtime: Runtime) -> None:
    async with await signed_in_client(runtime, "agent") as agent, await signed_in_client(runtime, "viewer") as viewer:
        body = {"phone": "+14155550123"}
        assert (await agent.get("/v1/contacts")).status_code == 200
        assert (await viewer.get("/v1/contacts")).status_code == 200
        missing = await agent.post("/v1/contacts", json=body)
        assert missing.status_code == 403 and "X-CSRF-Token" in missing.json()["detail"]
        assert missing.headers["content-type"] == "application/problem+json"
        assert (await agent.post("/v1/contacts", json=body, headers={"X-CSRF-Token": viewer.csrf})).status_code == 403
        made = await agent.post("/v1/contacts", json=body, headers={"X-CSRF-Token": agent.csrf})
        assert made.status_code == 201, made.text
        refused = await viewer.post("/v1/contacts", json={"phone": "+14155550124"}, headers={"X-CSRF-Token": viewer.csrf})
        assert refused.status_code == 403 and "viewer" in refused.json()["detail"]
        agent.cookies.clear()
        assert (await agent.get("/v1/contacts")).status_code == 401


async def test_api_session_of_another_workspace_sees_only_its_own(runtime: Runtime, api: httpx.AsyncClient) -> None:
    made = await api.post("/v1/contacts", json={"phone": "+14155550125"})
    assert made.status_code == 201
    async with await signed_in_client(runtime, "admin", workspace_id="ws_other") as other:
        assert (await other.get(f"/v1/contacts/{made.json()['id']}")).status_code == 404
        mine = await api.get(f"/v1/contacts/{made.json()['id']}")
        assert mine.status_code == 200


async def test_api_bearer_key_needs_no_csrf(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1/contacts", json={"phone": "+14155550126"})).status_code == 201


async def test_sign_in_rehashes_an_old_hash(runtime: Runtime) -> None:
    old = passwords.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    async with runtime.db.transaction() as conn:
        await users.create(conn, runtime.workspace_id, "ana@example.com", "agent", old, runtime.now())
    async with _browser(runtime) as browser:
        assert (await _sign_in(browser, "ana@example.com", PASSWORD)).status_code == 303
    async with runtime.db.transaction() as conn:
        user = await users.by_email(conn, "ana@example.com")
    assert user is not None and user.password_hash != old and not passwords.needs_rehash(user.password_hash)
    assert passwords.verify(user.password_hash, PASSWORD)


async def test_refusals_as_pages_once_installed(runtime: Runtime) -> None:
    from empathic.web.auth import install

    app = _with_probe_routes(runtime)
    install(app)
    async with await signed_in_client(runtime, "viewer", app=app) as viewer:
        refused = await viewer.post("/probe/act", data={"csrf": viewer.csrf})
        assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
        assert "A viewer can look but not change" in refused.text and viewer.email in refused.text
        viewer.cookies.clear()
        away = await viewer.get("/probe/any")
        assert away.status_code == 303 and away.headers["location"] == "/?next=%2Fprobe%2Fany"
        signed_out = await viewer.post("/probe/act")
        assert signed_out.status_code == 401 and 'href="/"' in signed_out.text


async def test_api_refuses_changes_until_a_one_time_password_is_replaced(runtime: Runtime) -> None:
    async with await signed_in_client(runtime, "agent", must_change_password=True) as agent:
        refused = await agent.post("/v1/contacts", json={"phone": "+14155550127"}, headers={"X-CSRF-Token": agent.csrf})
        assert refused.status_code == 403 and "/account/password" in refused.json()["detail"]


async def test_session_store_keeps_only_a_hash_and_marks_seen_once_a_minute(runtime: Runtime) -> None:
    user = await _make_user(runtime, "ana@example.com")
    start = runtime.now().replace(microsecond=0)
    async with runtime.db.transaction() as conn:
        token = await users.open_session(conn, user, start)
        stored = (await conn.exec_driver_sql("SELECT token_hash FROM web_sessions")).scalars().all()
        assert stored == [users.token_hash(token)] and token not in stored
        early = await users.session(conn, token, start + timedelta(seconds=50))
        assert early is not None and early.seen_at == start
        later = await users.session(conn, token, start + timedelta(seconds=61))
        assert later is not None and later.seen_at == start + timedelta(seconds=61)
        assert await users.session(conn, token + "x", start) is None
        assert await users.session(conn, token, start + timedelta(seconds=61) + users.IDLE) is None
        assert await users.sessions_of(conn, user.id) == 0  # an expired one is deleted when found


# -- guesses at once, the current password, sign-out, the live stream ------------------------


class CountedChecks:
    """passwords.verify, slowed (so guesses overlap) and counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, delay: float = 0.3) -> None:
        self.started = 0
        self._lock = threading.Lock()
        real = passwords.verify

        def slow(hashed: str | None, password: str) -> bool:
            with self._lock:
                self.started += 1
            time.sleep(delay)
            return real(hashed, password)

        monkeypatch.setattr(passwords, "verify", slow)


def _from(app: FastAPI, address: str, signin: httpx.Response) -> httpx.AsyncClient:
    """A browser at `address` that holds the sign-in form `signin` came with."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    browser = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
    browser.cookies.set("empathic_signin", signin.cookies["empathic_signin"], domain="empathic.test")
    return browser


async def test_guesses_at_once_get_at_most_five_checks_and_then_even_the_right_one_is_refused(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _make_user(runtime, "ana@example.com")
    app = create_app(runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as first:
        page = await first.get("/")
    checks = CountedChecks(monkeypatch)
    browsers = [_from(app, f"10.0.0.{n}", page) for n in range(31)]  # many addresses: no IP hold

    async def guess(browser: httpx.AsyncClient, password: str) -> httpx.Response:
        return await browser.post("/signin", data={"email": "ana@example.com", "password": password, "csrf": _csrf_of(page)})

    async def five_checks_started() -> bool:
        return checks.started >= users.LOCK_AFTER

    async def right_one_while_they_are_checked() -> httpx.Response:
        await eventually(five_checks_started, timeout=5)
        return await guess(browsers[-1], PASSWORD)

    try:
        *wrong, right = await asyncio.gather(*(guess(b, f"guess number {n}") for n, b in enumerate(browsers[:-1])),
                                              right_one_while_they_are_checked())
    finally:
        for browser in browsers:
            await browser.aclose()
    assert checks.started == users.LOCK_AFTER  # not one check per guess
    assert sorted({answer.status_code for answer in wrong}) == [401, 403]
    assert right.status_code == 403 and "locked" in right.text
    async with _browser(runtime) as later:
        refused = await _sign_in(later, "ana@example.com", PASSWORD)
        assert refused.status_code == 403 and "locked" in refused.text
    assert checks.started == users.LOCK_AFTER


async def test_sprayed_guesses_at_once_from_one_address_are_held_back(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    checks = CountedChecks(monkeypatch, delay=0.05)
    async with _browser(runtime) as browser:
        page = await browser.get("/")
        answers = await asyncio.gather(*(
            browser.post("/signin", data={"email": f"nobody{n}@example.com", "password": "guess", "csrf": _csrf_of(page)})
            for n in range(30)
        ))
    assert checks.started == signin.IP_FAILURES
    assert sorted(a.status_code for a in answers) == [401] * signin.IP_FAILURES + [429] * (30 - signin.IP_FAILURES)


async def test_the_current_password_counts_towards_the_lock(runtime: Runtime) -> None:
    await _make_user(runtime, "ana@example.com")
    async with _browser(runtime) as browser:
        await _sign_in(browser, "ana@example.com", PASSWORD)
        csrf = _csrf_of(await browser.get("/account"))
        new = {"csrf": csrf, "new": "a new passphrase", "again": "a new passphrase"}
        for _ in range(users.LOCK_AFTER - 1):
            wrong = await browser.post("/account/password", data={**new, "current": "a guess at it"})
            assert wrong.status_code == 400 and "current password is not right" in wrong.text
        locked = await browser.post("/account/password", data={**new, "current": "a guess at it"})
        assert locked.status_code == 403 and "locked" in locked.text
        still = await browser.post("/account/password", data={**new, "current": PASSWORD})
        assert still.status_code == 403 and "locked" in still.text
    async with _browser(runtime) as elsewhere:
        assert (await _sign_in(elsewhere, "ana@example.com", PASSWORD)).status_code == 403
    async with runtime.db.transaction() as conn:
        user = await users.by_email(conn, "ana@example.com")
    assert user is not None and passwords.verify(user.password_hash, PASSWORD)  # unchanged


async def test_signing_out_an_ended_session_clears_its_cookie(runtime: Runtime) -> None:
    clock = move_clock(runtime)
    async with await signed_in_client(runtime, "agent") as agent:
        csrf = agent.csrf
        clock.ahead = users.IDLE + timedelta(minutes=1)
        cross = await agent.post("/signout", data={"csrf": csrf}, headers={"Origin": "https://evil.test"})
        assert cross.status_code == 403 and "empathic_session" in agent.cookies
        out = await agent.post("/signout", data={"csrf": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/?signed_out=1"
        assert 'empathic_session=""' in out.headers["set-cookie"] and "empathic_session" not in agent.cookies


@pytest.mark.parametrize("ending", ["sign out", "disable", "reset password", "expire"])
async def test_the_live_stream_ends_when_its_session_does(runtime: Runtime, monkeypatch: pytest.MonkeyPatch, ending: str) -> None:
    monkeypatch.setattr(auth, "SESSION_RECHECK", 0.05)
    monkeypatch.setattr(live, "POLL", 0.02)
    clock = move_clock(runtime)
    async with await signed_in_client(runtime, "agent") as agent:
        stream = asyncio.create_task(agent.get("/live"))  # the transport answers once the stream ends
        await asyncio.sleep(0.3)
        assert not stream.done()
        async with runtime.db.transaction() as conn:
            user = await users.get(conn, agent.workspace_id, agent.user_id)
            assert user is not None
            if ending == "disable":
                await users.set_disabled(conn, user, True, runtime.now())
            elif ending == "reset password":
                await users.set_password(conn, user, password_hash(), runtime.now(), must_change=True)
        if ending == "sign out":
            assert (await agent.post("/signout", data={"csrf": agent.csrf})).status_code == 303
        elif ending == "expire":
            clock.ahead = users.IDLE + timedelta(minutes=1)
        ended = await asyncio.wait_for(stream, patient(5))
        assert ended.status_code == 200 and ended.text.startswith("retry:")
