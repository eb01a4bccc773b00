"""What a person signed in to the web app may do through the JSON API with their session cookie:
built from `app.routes`, so a /v1 route added later is checked (and is for admins only until
it is listed in api/auth.py). The table below is the policy, written out on its own."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import routing

from empathic.api.app import create_app
from empathic.engine.runtime import Runtime
from tests.web.conftest import signed_in_client

# Reads a viewer may not make (an agent may make the exports).
EXPORTS = {"/v1/contacts/{contact_id}/export"}
WEBHOOKS = "/v1/webhooks"  # it and everything under it: admins only, reads too
# The only changes an agent may make through the API with a session.
AGENT_CHANGES = {
    ("POST", "/v1/messages"), ("POST", "/v1/messages/batch"),
    ("POST", "/v1/contacts"), ("PATCH", "/v1/contacts/{contact_id}"), ("POST", "/v1/contacts/{contact_id}/consents"),
    ("PUT", "/v1/contacts/{contact_id}/preferences"), ("POST", "/v1/contacts/{contact_id}/preference-link"),
    ("POST", "/v1/understand"), ("POST", "/v1/events"), ("POST", "/v1/flows/{name}/runs"),
    ("POST", "/v1/runs/{run_id}/cancel"), ("POST", "/v1/simulator/phones/{phone}/messages"),
    ("POST", "/v1/templates/{name}/preview"),
}
FILLED = {"phone": "+14155550190"}  # a parameter's stand-in; others get a made-up id


def api_routes(runtime: Runtime) -> list[tuple[str, str]]:
    """(method, template) of every /v1 route of the app."""
    app = create_app(runtime)
    listed = routing.iter_route_contexts(app.routes) if hasattr(routing, "iter_route_contexts") else app.routes
    found = {
        (method, template)
        for route in listed
        if (template := getattr(route, "path", None)) and template.startswith("/v1/")
        for method in getattr(route, "methods", None) or ()
        if method != "HEAD"
    }
    return sorted(found)


def allowed(role: str, method: str, template: str) -> bool:
    webhooks = template == WEBHOOKS or template.startswith(WEBHOOKS + "/")
    if method == "GET":
        if webhooks:
            return False
        return role == "agent" or template not in EXPORTS
    if template.startswith("/v1/inbox/") and method == "POST":
        return role == "agent"
    return role == "agent" and (method, template) in AGENT_CHANGES


def filled(template: str) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: FILLED.get(m.group(1), "x_00000000000000000000000000"), template)


@pytest.mark.parametrize("runtime", ["sqlite"], indirect=True)
async def test_every_api_route_answers_a_role_as_the_table_says(runtime: Runtime) -> None:
    routes = api_routes(runtime)
    assert ("DELETE", "/v1/contacts/{contact_id}") in routes and ("POST", "/v1/webhooks") in routes
    assert all(change in routes for change in AGENT_CHANGES), "the table names a route the app no longer has"
    app = create_app(runtime)
    async with await signed_in_client(runtime, "viewer", app=app) as viewer, \
            await signed_in_client(runtime, "agent", app=app) as agent:
        for client in (viewer, agent):
            for method, template in routes:
                answer = await client.request(method, filled(template), headers={"X-CSRF-Token": client.csrf},
                                              json=None if method == "GET" else {})
                # Refused or not is all that counts: a 404 or 422 means the role was let through.
                refused = answer.status_code == 403
                assert refused != allowed(client.role, method, template), (client.role, method, template, answer.text)
                if refused:
                    assert answer.headers["content-type"] == "application/problem+json"
                    assert "role" in answer.json()["detail"] or "CSRF" in answer.json()["detail"], answer.text


async def test_an_agent_works_the_inbox_but_cannot_erase_or_send_events_away(runtime: Runtime, api: httpx.AsyncClient) -> None:
    sent = await api.post("/v1/simulator/phones/+14155550191/messages", json={"body": "hello there"})
    assert sent.status_code == 202, sent.text
    threads = (await api.get("/v1/inbox", params={"status": "any"})).json()["data"]
    thread = next(t for t in threads if t["contact"]["phone"] == "+14155550191")
    contact_id = thread["contact"]["id"]
    async with await signed_in_client(runtime, "agent") as agent, await signed_in_client(runtime, "viewer") as viewer, \
            await signed_in_client(runtime, "admin") as admin:
        csrf = {"X-CSRF-Token": agent.csrf}
        note = await agent.post(f"/v1/inbox/{thread['id']}/notes", json={"body": "called back"}, headers=csrf)
        assert note.status_code in (200, 201), note.text
        reply = await agent.post(f"/v1/inbox/{thread['id']}/messages", json={"body": "thanks, we are on it"}, headers=csrf)
        assert reply.status_code in (200, 201, 202), reply.text
        assert (await agent.get(f"/v1/contacts/{contact_id}/export")).status_code == 200
        assert (await viewer.get(f"/v1/contacts/{contact_id}/export")).status_code == 403
        assert (await viewer.get("/v1/webhooks")).status_code == 403
        hook = await agent.post("/v1/webhooks", json={"url": "https://evil.test/all"}, headers=csrf)
        assert hook.status_code == 403 and "admin" in hook.json()["detail"]
        assert (await agent.patch("/v1/simulator", json={}, headers=csrf)).status_code == 403
        erase = await agent.delete(f"/v1/contacts/{contact_id}", headers=csrf)
        assert erase.status_code == 403 and "needs the admin role" in erase.json()["detail"]
        assert (await api.get(f"/v1/contacts/{contact_id}")).status_code == 200  # still there
        erased = await admin.delete(f"/v1/contacts/{contact_id}", headers={"X-CSRF-Token": admin.csrf})
        assert erased.status_code in (200, 204), erased.text


async def test_a_person_with_a_one_time_password_may_not_even_read(runtime: Runtime) -> None:
    async with await signed_in_client(runtime, "admin", must_change_password=True) as admin:
        for path in ("/v1/contacts", "/v1/inbox", "/v1/webhooks"):
            refused = await admin.get(path)
            assert refused.status_code == 403 and "/account/password" in refused.json()["detail"], path
