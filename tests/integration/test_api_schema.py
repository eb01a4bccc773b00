"""What the API takes is what its OpenAPI document says: strict types (issue 21, point 8),
every method of a path in `Allow`, and the rules the schema cannot state listed with their
422. tests/integration/test_openapi_fuzz.py holds the whole document to this with
schemathesis; these are the cases the issue named."""

from __future__ import annotations

import httpx

from empathic.api.app import create_app

LAX = [
    ("GET", "/v1/messages", {"params": {"since": "0.5"}}, "since"),
    ("GET", "/v1/messages", {"params": {"since": "2026-11-23T10:00:00"}}, "since"),  # no offset
    ("GET", "/v1/messages", {"params": {"limit": "5.0"}}, "limit"),
    ("PATCH", "/v1/simulator", {"json": {"fail_share": False}}, "fail_share"),
    ("PATCH", "/v1/simulator", {"json": {"receipt_delay": "0.5"}}, "receipt_delay"),
    ("POST", "/v1/understand", {"json": {"text": "yes", "now": 0}}, "now"),
    ("POST", "/v1/understand", {"json": {"text": "yes", "now": "1700000000"}}, "now"),
    ("POST", "/v1/messages", {"json": {"to": "+14155550100", "body": "x", "valid_until": 4102444800}}, "valid_until"),
    ("POST", "/v1/messages", {"json": {"to": "+14155550100", "body": " \u3000\x1c"}}, "body"),
    ("PUT", "/v1/contacts/ct_x/preferences", {"json": {"max_marketing_per_week": True}}, "max_marketing_per_week"),
    ("PUT", "/v1/contacts/ct_x/preferences", {"json": {"quiet_hours": {"from": "21:00", "to": "08:00", "days": "weekdays"}}},
     "quiet_hours.days"),
    ("POST", "/v1/webhooks", {"json": {"url": "https://shop.example/h", "events": ["message.sent"]}}, "events[0]"),
]


async def test_a_loose_type_is_refused_naming_the_field(api: httpx.AsyncClient) -> None:
    for method, path, given, field in LAX:  # one runtime for all the cases
        answer = await api.request(method, path, **given)
        assert answer.status_code == 422, (method, path, given, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in answer.json()["errors"]], (method, path, given)


async def test_the_strict_forms_are_taken(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/messages", params={"since": "2026-11-23T10:00:00Z", "limit": "5"})).status_code == 200
    assert (await api.patch("/v1/simulator", json={"fail_share": 0, "receipt_delay": 0.05})).json()["fail_share"] == 0
    understood = await api.post("/v1/understand", json={"text": "yes", "now": "2026-11-23T10:00:00+01:00"})
    assert understood.status_code == 200 and understood.json()["intent"] == "confirm"


async def test_options_answers_every_method_of_the_path(api: httpx.AsyncClient) -> None:
    answer = await api.options("/v1/contacts/ct_whoever")
    assert answer.status_code == 204
    assert answer.headers["allow"] == "DELETE, GET, OPTIONS, PATCH"
    assert (await api.options("/v1/webhooks")).headers["allow"] == "GET, OPTIONS, POST"
    assert (await api.options("/nowhere")).status_code == 404


async def test_405_names_every_method_of_the_path(api: httpx.AsyncClient) -> None:
    answer = await api.put("/v1/contacts/ct_whoever", json={})
    assert answer.status_code == 405
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["allow"] == "DELETE, GET, OPTIONS, PATCH"


def test_the_document_states_the_rules_it_cannot_check() -> None:
    document = create_app(None).openapi()  # type: ignore[arg-type]
    send = document["paths"]["/v1/messages"]["post"]
    assert set(send["responses"]["422"]["x-rules"]) == {"to", "body", "subject", "html"}
    assert send["security"] == [{"apiKey": []}]
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    batch = document["components"]["schemas"]["SendBatch"]["properties"]["messages"]
    assert batch["maxItems"] == 1000
    since = next(p for p in document["paths"]["/v1/messages"]["get"]["parameters"] if p["name"] == "since")
    assert {"type": "string", "format": "date-time"} in since["schema"]["anyOf"]
    assert "security" not in document["paths"]["/v1/flows/schema"]["get"]


async def test_served_document_names_the_projects_topics(api: httpx.AsyncClient) -> None:
    document = (await api.get("/openapi.json")).json()
    topic = document["components"]["schemas"]["SendMessage"]["properties"]["topic"]
    assert "transactional" in topic["enum"] and "marketing" in topic["enum"]
    consent = document["components"]["schemas"]["ConsentIn"]["properties"]["topic"]
    assert "*" in consent["enum"] and "otp" not in consent["enum"]
