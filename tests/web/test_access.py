"""Every page of the web app asks who is there: built from `app.routes`, so a page added later
is covered without touching this file. Not signed in: a GET goes to the sign-in page, anything
else is refused; a viewer may change nothing; a change without the CSRF token is refused."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import routing

from empathic.api.app import create_app
from empathic.engine.runtime import Runtime
from tests.web.conftest import BASE_URL, signed_in_client

OUTSIDE = ("/v1", "/hooks", "/static", "/p/", "/docs", "/openapi", "/healthz", "/readyz", "/metrics", "/redoc")
PUBLIC = {("GET", "/"), ("POST", "/signin")}  # the sign-in page and its form
ANY_ROLE = {"/signout", "/account/password", "/account/signout-everywhere"}  # a viewer's own session and password


def web_routes(runtime: Runtime) -> list[tuple[str, str]]:
    """(method, path with every parameter filled) of each web route."""
    app = create_app(runtime)
    # FastAPI >= 0.160 keeps an included router as one entry: its routes are listed by iter_route_contexts.
    listed = routing.iter_route_contexts(app.routes) if hasattr(routing, "iter_route_contexts") else app.routes
    found: set[tuple[str, str]] = set()
    for route in listed:
        template, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if not template or not methods or template.startswith(OUTSIDE):
            continue  # a mount (/static) or the API
        path = re.sub(r"\{[^}]+\}", "usr_00000000000000000000000000", template)
        for method in methods:
            if method != "HEAD" and (method, template) not in PUBLIC:
                found.add((method, path))
    return sorted(found)


@pytest.mark.parametrize("runtime", ["sqlite"], indirect=True)
async def test_every_page_needs_a_person(runtime: Runtime) -> None:
    routes = web_routes(runtime)
    assert ("GET", "/users") in routes and ("POST", "/signout") in routes
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime)), base_url=BASE_URL) as nobody:
        for method, path in routes:
            answer = await nobody.request(method, path)
            if method == "GET":
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
