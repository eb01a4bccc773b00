"""A workspace's key never reads or changes another workspace's data.

Workspace A (the server's own, whose phones' replies it receives) gets one of every resource
(tests.integration.seed); workspace B gets its own key. Driven from the app's routes: every
route with a path parameter is called with B's key and A's ids or names, and must answer 404
(a route nobody classified fails the test). Lists and filters with B's key show none of A's
rows, and A's data read back with A's key is exactly as it was. Both backends; the loops do
not run, so nothing moves between the two readings but what B's calls did.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # FastAPI before included routers were resolved lazily: app.routes are flat
    def iter_route_contexts(routes: Any) -> Any:
        return iter(routes)

from empathic.api.app import create_app
from empathic.engine.runtime import Runtime
from empathic.store import keys
from tests.conftest import API_KEY, POSTGRES_URL, make_settings, postgres_schema
from tests.integration.seed import FLOW, seed_workspace

KEY_B = "emp_other_workspace_key_0123456789"
PHONE_A, PHONE_A_INBOX, PHONE_B = "+14155550161", "+14155550162", "+14155550163"

# Every route with a path parameter, by (method, path): what B's call with A's value answers.
# PUT by name writes B's own template or flow of that name (A's stays as it was); those run last.
EXPECTED: dict[tuple[str, str], int] = {
    ("GET", "/v1/messages/{message_id}"): 404,
    ("GET", "/v1/contacts/{contact_id}"): 404,
    ("PATCH", "/v1/contacts/{contact_id}"): 404,
    ("DELETE", "/v1/contacts/{contact_id}"): 404,
    ("GET", "/v1/contacts/{contact_id}/export"): 404,
    ("GET", "/v1/contacts/{contact_id}/preferences"): 404,
    ("PUT", "/v1/contacts/{contact_id}/preferences"): 404,
    ("POST", "/v1/contacts/{contact_id}/preference-link"): 404,
    ("GET", "/v1/contacts/{contact_id}/consents"): 404,
    ("POST", "/v1/contacts/{contact_id}/consents"): 404,
    ("GET", "/v1/templates/{name}"): 404,
    ("PUT", "/v1/templates/{name}"): 200,
    ("DELETE", "/v1/templates/{name}"): 404,
    ("POST", "/v1/templates/{name}/preview"): 404,
    ("PUT", "/v1/triggers/{name}"): 422,  # naming A's template: B has none of that name
    ("DELETE", "/v1/triggers/{name}"): 404,
    ("GET", "/v1/flows/{name}"): 404,
    ("PUT", "/v1/flows/{name}"): 201,
    ("DELETE", "/v1/flows/{name}"): 404,
    ("GET", "/v1/flows/{name}/versions"): 404,
    ("POST", "/v1/flows/{name}/runs"): 404,
    ("GET", "/v1/runs/{run_id}"): 404,
    ("POST", "/v1/runs/{run_id}/cancel"): 404,
    ("GET", "/v1/inbox/{thread_id}"): 404,
    ("POST", "/v1/inbox/{thread_id}/messages"): 404,
    ("POST", "/v1/inbox/{thread_id}/close"): 404,
    ("GET", "/v1/inbox/{thread_id}/timeline"): 404,
    ("POST", "/v1/inbox/{thread_id}/preview"): 404,
    ("POST", "/v1/inbox/{thread_id}/notes"): 404,
    ("POST", "/v1/inbox/{thread_id}/assign"): 404,
    ("GET", "/v1/webhooks/{webhook_id}"): 404,
    ("DELETE", "/v1/webhooks/{webhook_id}"): 404,
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): 404,
    ("GET", "/v1/simulator/phones/{phone}/messages"): 404,  # the simulator is the default workspace's
    ("POST", "/v1/simulator/phones/{phone}/messages"): 404,
}
# Routes with a path parameter that take no API key, and why.
NOT_KEYED = {
    ("GET", "/hooks/{channel}/{kind}"): "providers' callbacks: the provider's signature, not a key",
    ("POST", "/hooks/{channel}/{kind}"): "providers' callbacks: the provider's signature, not a key",
    ("GET", "/p/{token}"): "the preference page: the signed token names its workspace and contact",
    ("POST", "/p/{token}"): "the preference page: the signed token names its workspace and contact",
}
# Valid bodies, so that B's calls are refused for the id, not for the input.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/v1/contacts/{contact_id}"): {"locale": "de", "attributes": {"tag": "b"}},
    ("PUT", "/v1/contacts/{contact_id}/preferences"): {"language": "de"},
    ("POST", "/v1/contacts/{contact_id}/preference-link"): {"valid_days": 3},
    ("POST", "/v1/contacts/{contact_id}/consents"): {"topic": "*", "action": "revoked", "source": "api"},
    ("PUT", "/v1/templates/{name}"): {"body": "B's own text"},
    ("POST", "/v1/templates/{name}/preview"): {"event": {"data": {"n": 2}}},
    ("PUT", "/v1/triggers/{name}"): {"event": "b.happened", "template": "a-own"},
    ("PUT", "/v1/flows/{name}"): {"source": FLOW.format(name="a-own")},
    ("POST", "/v1/flows/{name}/runs"): {"contact": {"phone": PHONE_B}},
    ("POST", "/v1/inbox/{thread_id}/messages"): {"body": "B answers A's customer"},
    ("POST", "/v1/inbox/{thread_id}/preview"): {"body": "B's draft"},
    ("POST", "/v1/inbox/{thread_id}/notes"): {"body": "B's note"},
    ("POST", "/v1/inbox/{thread_id}/assign"): {"user_id": None},
    ("POST", "/v1/simulator/phones/{phone}/messages"): {"body": "STOP"},
}
METHOD_ORDER = {"GET": 0, "POST": 1, "PATCH": 2, "DELETE": 3, "PUT": 4}


def keyed_routes(app: Any) -> list[tuple[str, str]]:
    """The API's routes that name a row; the web pages' are held to the same by tests/web."""
    return sorted(
        {(method, route.path) for route in iter_route_contexts(app.routes)
         if isinstance(getattr(route, "route", route), APIRoute) and "{" in route.path
         and route.path.startswith(("/v1/", "/hooks/", "/p/")) for method in route.methods},
        key=lambda r: (METHOD_ORDER[r[0]], EXPECTED.get(r, 0) < 300, r[1]),  # writes of B's own last
    )


class World:
    def __init__(self, rt: Runtime, a: httpx.AsyncClient, b: httpx.AsyncClient) -> None:
        self.rt, self.a, self.b = rt, a, b
        self.ids: dict[str, str] = {}  # A's
        self.b_ids: dict[str, str] = {}

    async def snapshot(self) -> dict[str, Any]:
        """Everything A holds, as A's key reads it."""
        ids = self.ids
        urls = [
            f"/v1/contacts/{ids['contact_id']}", f"/v1/contacts/{ids['contact_id']}/consents",
            f"/v1/contacts/{ids['contact_id']}/preferences", f"/v1/contacts/{ids['contact_id']}/export",
            f"/v1/messages/{ids['message_id']}", f"/v1/webhooks/{ids['webhook_id']}",
            f"/v1/webhooks/{ids['webhook_id']}/deliveries", f"/v1/runs/{ids['run_id']}",
            f"/v1/inbox/{ids['thread_id']}", f"/v1/templates/{ids['name']}", f"/v1/flows/{ids['name']}",
            f"/v1/flows/{ids['name']}/versions", "/v1/rules", "/v1/contacts?limit=500", "/v1/messages?limit=500",
            "/v1/inbox?status=open", "/v1/inbox?status=closed", "/v1/runs", "/v1/webhooks", "/v1/templates",
            "/v1/triggers", "/v1/flows", f"/v1/simulator/phones/{PHONE_A}/messages",
        ]
        seen = {}
        for url in urls:
            answer = await self.a.get(url)
            assert answer.status_code == 200, (url, answer.text)
            view = answer.json()
            view.pop("exported_at", None)
            seen[url] = view
        return seen


@pytest.fixture(params=["sqlite", "postgresql"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    database: dict[str, Any] = {}
    schemas = postgres_schema(migrated=True)
    if request.param == "postgresql":
        database = {"database_url": POSTGRES_URL, "database_schema": await schemas.__aenter__()}
    rt = Runtime(make_settings(tmp_path, run_workers=False, **database))
    await rt.start()
    try:
        async with rt.db.transaction() as conn:
            await keys.ensure_workspace(conn, "ws_other", "Other workspace", rt.now())
            await keys.add_key(conn, "ws_other", KEY_B, "other", rt.now())
        transport = httpx.ASGITransport(app=create_app(rt))
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://empathic.test",
                              headers={"Authorization": f"Bearer {API_KEY}"}) as a,
            httpx.AsyncClient(transport=transport, base_url="http://empathic.test",
                              headers={"Authorization": f"Bearer {KEY_B}"}) as b,
        ):
            world = World(rt, a, b)
            world.ids = await seed_workspace(a, PHONE_A, "a", inbox_phone=PHONE_A_INBOX)
            world.b_ids = await seed_workspace(b, PHONE_B, "b")
            yield world
    finally:
        await rt.stop()
        if request.param == "postgresql":
            await schemas.__aexit__(None, None, None)


def test_every_route_with_a_path_parameter_is_classified() -> None:
    routes = set(keyed_routes(create_app(None)))  # type: ignore[arg-type]  # only its routes are read
    unclassified = routes - EXPECTED.keys() - NOT_KEYED.keys()
    assert not unclassified, f"say what another workspace's key gets from these: {sorted(unclassified)}"
    assert not (EXPECTED.keys() | NOT_KEYED.keys()) - routes, "classified routes that are gone"


async def test_another_workspace_lists_and_filters_none_of_its_rows(world: World) -> None:
    ids = world.ids
    a_values = [ids[k] for k in ("contact_id", "message_id", "webhook_id", "run_id", "thread_id")]
    a_values += [PHONE_A, PHONE_A_INBOX, "Hello from a", "a-own", "a@example.com"]
    for url in ["/v1/contacts?limit=500", "/v1/messages?limit=500", "/v1/inbox?status=open", "/v1/inbox?status=closed",
                "/v1/runs", "/v1/webhooks", "/v1/templates", "/v1/triggers", "/v1/flows", "/v1/rules"]:
        answer = await world.b.get(url)
        assert answer.status_code == 200, (url, answer.text)
        text = answer.text
        assert not [v for v in a_values if v in text], (url, text)
        assert [v for v in world.b_ids.values() if v in text] or url.startswith(("/v1/inbox", "/v1/rules")), url
    for url, params in [
        ("/v1/messages", {"contact_id": ids["contact_id"]}), ("/v1/runs", {"contact_id": ids["contact_id"]}),
        ("/v1/contacts", {"phone": PHONE_A}), ("/v1/contacts", {"email": "a@example.com"}),
    ]:
        answer = await world.b.get(url, params=params)
        assert answer.status_code == 200 and answer.json()["data"] == [], (url, params, answer.text)


async def test_another_workspace_reaches_nothing_of_it_by_id_or_name(world: World) -> None:
    before = await world.snapshot()
    app_routes = keyed_routes(create_app(world.rt))
    called = []
    for method, path in app_routes:
        if (method, path) in NOT_KEYED:
            continue
        values = re.findall(r"{(\w+)}", path)
        url = path
        for name in values:
            url = url.replace("{" + name + "}", world.ids[name])
        body = BODIES.get((method, path))
        answer = await world.b.request(method, url, json=body)
        assert answer.status_code == EXPECTED[(method, path)], (method, url, answer.status_code, answer.text)
        called.append((method, path))
    assert len(called) == len(EXPECTED)

    # B's own writes that name no id: with A's keys (idempotency), A's phone, A's email.
    for path, body in [
        ("/v1/messages", {"to": PHONE_A, "body": "B's text", "idempotency_key": "a-message"}),
        ("/v1/events", {"type": "a.happened", "contact": {"phone": PHONE_A}, "data": {"n": 3},
                        "idempotency_key": "a-event"}),
        ("/v1/contacts", {"email": "a@example.com"}),
    ]:
        answer = await world.b.post(path, json=body)
        assert answer.status_code in (201, 202), (path, answer.text)
        assert not [v for k, v in world.ids.items() if k.endswith("_id") and v in answer.text], (path, answer.text)
    made = await world.b.post("/v1/contacts", json={"phone": PHONE_A_INBOX})
    assert made.status_code == 201 and made.json()["id"] != world.ids["contact_id"], made.text  # not 409 naming A's
    assert (await world.b.put("/v1/rules", json={"rules": ""})).status_code in (200, 422)
    assert (await world.b.delete("/v1/rules")).status_code in (204, 404)

    after = await world.snapshot()
    for url in before:
        assert after[url] == before[url], (url, json.dumps(before[url])[:500], json.dumps(after[url])[:500])
    # B's PUT by A's name made B's own template (A's reads as before, in the snapshot).
    assert (await world.b.get("/v1/templates/a-own")).json()["body"] == "B's own text"
