"""Every page of the web app asks who is there: built from `app.routes`, so a page added later
is covered without touching this file. Not signed in: a GET goes to the sign-in page, anything
else is refused; a viewer may change nothing; a change without the CSRF token is refused; an
agent opens no admin's page; another workspace's admin finds none of this workspace's rows."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import routing

from empathic.api.app import create_app
from empathic.engine.runtime import Runtime
from empathic.web.auth import administering
from tests.conftest import eventually
from tests.web.conftest import BASE_URL, signed_in_client
from tests.web.test_phone_pages import start_fraud_alert

OUTSIDE = ("/v1", "/hooks", "/static", "/p/", "/docs", "/openapi", "/healthz", "/readyz", "/metrics", "/redoc")
PUBLIC = {("GET", "/"), ("POST", "/signin")}  # the sign-in page and its form
ANY_ROLE = {"/signout", "/account/password", "/account/signout-everywhere"}  # a viewer's own session and password
SIGN_OUT = ("POST", "/signout")  # clears the cookie even when there is no session to end
STREAMS = {"/live"}  # never ends while signed in


def web_templates(runtime: Runtime, only: Callable[[object], bool] = lambda route: True) -> list[tuple[str, str]]:
    """(method, template) of each web route (`only` those it accepts)."""
    app = create_app(runtime)
    # FastAPI >= 0.160 keeps an included router as one entry: its routes are listed by iter_route_contexts.
    listed = routing.iter_route_contexts(app.routes) if hasattr(routing, "iter_route_contexts") else app.routes
    found: set[tuple[str, str]] = set()
    for route in listed:
        template, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if not template or not methods or template.startswith(OUTSIDE) or not only(route):
            continue  # a mount (/static) or the API
        for method in methods:
            if method != "HEAD" and (method, template) not in PUBLIC:
                found.add((method, template))
    return sorted(found)


def web_routes(runtime: Runtime) -> list[tuple[str, str]]:
    """(method, path with every parameter filled) of each web route."""
    return sorted({(method, fill(template, {})) for method, template in web_templates(runtime)})


def fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: values.get(m.group(1), "usr_00000000000000000000000000"), template)


def depends_on(route: object, dependency: object) -> bool:
    """Whether `dependency` is among the route's dependencies, at any depth."""
    dependant = getattr(route, "dependant", None) or getattr(getattr(route, "original_route", None), "dependant", None)
    assert dependant is not None, route
    pending = list(dependant.dependencies)
    while pending:
        found = pending.pop()
        if found.call is dependency:
            return True
        pending.extend(found.dependencies)
    return False


@pytest.mark.parametrize("runtime", ["sqlite"], indirect=True)
async def test_every_page_needs_a_person(runtime: Runtime) -> None:
    routes = web_routes(runtime)
    assert ("GET", "/users") in routes and ("POST", "/signout") in routes
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime)), base_url=BASE_URL) as nobody:
        for method, path in routes:
            answer = await nobody.request(method, path)
            if (method, path) == SIGN_OUT:
                assert answer.status_code == 303 and answer.headers["location"] == "/?signed_out=1"
            elif method == "GET":
                assert answer.status_code == 303, (method, path, answer.status_code)
                assert answer.headers["location"].startswith("/?next=%2F"), (method, path)
            else:
                assert answer.status_code in (401, 403), (method, path, answer.status_code)


@pytest.mark.parametrize("runtime", ["sqlite"], indirect=True)
async def test_every_change_needs_a_role_and_the_csrf_token(runtime: Runtime) -> None:
    changes = [(method, path) for method, path in web_routes(runtime) if method != "GET"]
    assert changes
    app = create_app(runtime)
    async with await signed_in_client(runtime, "viewer", app=app) as viewer, \
            await signed_in_client(runtime, "admin", app=app) as admin:
        for method, path in changes:
            forged = await admin.request(method, path, data={"csrf": "forged"})
            assert forged.status_code == 403, (method, path, forged.status_code)
            bare = await admin.request(method, path, headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert bare.status_code == 403, (method, path, bare.status_code)
            if path not in ANY_ROLE:
                as_viewer = await viewer.request(method, path, data={"csrf": viewer.csrf},
                                                 headers={"X-CSRF-Token": viewer.csrf})
                assert as_viewer.status_code == 403, (method, path, as_viewer.status_code)


@pytest.mark.parametrize("runtime", ["sqlite"], indirect=True)
async def test_an_agent_opens_no_admin_page(runtime: Runtime) -> None:
    admins_only = web_templates(runtime, lambda route: depends_on(route, administering))
    assert ("GET", "/users") in admins_only and ("POST", "/contacts/{contact_id}/erase") in admins_only
    async with await signed_in_client(runtime, "agent") as agent:
        for method, template in admins_only:
            answer = await agent.request(method, fill(template, {}), data=None if method == "GET" else {"csrf": agent.csrf})
            assert answer.status_code == 403, (method, template, answer.status_code)
            assert "Only an admin" in answer.text


async def test_another_workspaces_admin_finds_none_of_these_rows(runtime: Runtime, api: httpx.AsyncClient) -> None:
    phone, texter = "+14155550170", "+14155550171"  # one in a flow run, one who wrote to the inbox
    app = create_app(runtime)
    async with await signed_in_client(runtime, "agent", app=app) as agent_a, \
            await signed_in_client(runtime, "admin", workspace_id="ws_b", app=app) as admin_b:
        await start_fraud_alert(agent_a, phone)
        assert (await api.post(f"/v1/simulator/phones/{texter}/messages", json={"body": "can we talk friday?"})).status_code == 202

        async def thread_of_phone() -> dict[str, Any] | None:  # Any: the API's JSON
            listed = (await api.get("/v1/inbox", params={"status": "any"})).json()["data"]
            return next((t for t in listed if t["contact"]["phone"] == texter), None)

        thread = await eventually(thread_of_phone)
        flow = await api.put("/v1/flows/only-in-a", content="flow: only-in-a\nsteps:\n  - send: hi\n",
                             headers={"Content-Type": "application/yaml"})
        assert flow.status_code == 201, flow.text
        ids = {"thread_id": thread["id"], "contact_id": thread["contact"]["id"], "user_id": agent_a.user_id,
               "number": phone, "name": "only-in-a"}
        with_ids = [(m, t) for m, t in web_templates(runtime) if "{" in t and t not in STREAMS]
        assert {name for _, t in with_ids for name in re.findall(r"\{([^}]+)\}", t)} <= set(ids), with_ids
        form = {"csrf": admin_b.csrf, "body": "hi", "role": "viewer", "flow": "fraud-alert", "data": "{}", "how": "run"}
        for method, template in with_ids:
            answer = await admin_b.request(method, fill(template, ids), data=None if method == "GET" else form)
            assert answer.status_code == 404, (method, template, answer.status_code)
            assert texter not in answer.text and agent_a.email not in answer.text
        assert (await api.get(f"/v1/contacts/{ids['contact_id']}")).status_code == 200  # not erased
        assert (await agent_a.get("/account")).status_code == 200  # still signed in, not disabled
