"""Sending over HTTP and following a message to delivery, on a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.conftest import eventually


async def status_of(api: httpx.AsyncClient, message_id: str) -> dict:
    return (await api.get(f"/v1/messages/{message_id}")).json()


async def test_send_reaches_delivered_with_full_history(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/messages", json={"to": "+14155550100", "body": "Your order shipped"})
    assert response.status_code == 202
    sent = response.json()
    assert sent["to"] == "+14155550100"
    assert sent["status"] == "queued"
    assert sent["segments"] == 1 and sent["encoding"] == "gsm7"

    async def delivered() -> dict | None:
        view = await status_of(api, sent["id"])
        return view if view["status"] == "delivered" else None

    view = await eventually(delivered)
    assert [e["status"] for e in view["events"]] == ["queued", "sending", "sent", "delivered"]
    assert all(e["reason"] for e in view["events"])
    phone = (await api.get("/v1/simulator/phones/+14155550100/messages")).json()
    assert [m["body"] for m in phone["messages"]] == ["Your order shipped"]


async def test_idempotency_key_returns_the_first_message(api: httpx.AsyncClient) -> None:
    first = (await api.post("/v1/messages", json={"to": "+14155550101", "body": "one", "idempotency_key": "k-1"})).json()
    again = (await api.post("/v1/messages", json={"to": "+14155550101", "body": "two", "idempotency_key": "k-1"})).json()
    assert again["id"] == first["id"] and again["body"] == "one"
    listed = (await api.get("/v1/messages", params={"direction": "outbound"})).json()["data"]
    assert len(listed) == 1


async def test_national_number_with_region_and_default_region(api: httpx.AsyncClient) -> None:
    fr = (await api.post("/v1/messages", json={"to": "06 12 34 56 78", "region": "FR", "body": "Bonjour"})).json()
    assert fr["to"] == "+33612345678"
    us = (await api.post("/v1/messages", json={"to": "(415) 555-0102", "body": "hi"})).json()
    assert us["to"] == "+14155550102"


async def test_unicode_and_long_bodies_are_counted(api: httpx.AsyncClient) -> None:
    view = (await api.post("/v1/messages", json={"to": "+14155550103", "body": "Привет 👋 " * 10})).json()
    assert view["encoding"] == "ucs2" and view["segments"] == 2


async def test_bad_input_is_a_problem_and_stores_nothing(api: httpx.AsyncClient) -> None:
    cases = [
        ({"to": "12", "body": "x"}, 422, "to"),
        ({"to": "+14155550100", "body": "x", "topic": "nope"}, 422, "topic"),
        ({"to": "+14155550100", "body": "a" * 1531}, 422, "body"),  # 11 segments
        ({"to": "+14155550100"}, 422, "body"),
        ({"to": "+14155550100", "body": "x", "colour": "red"}, 422, "colour"),
    ]
    for payload, status, field in cases:
        response = await api.post("/v1/messages", json=payload)
        assert response.status_code == status, payload
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == status and field in problem["detail"], problem
    malformed = await api.post("/v1/messages", content=b'{"to": ', headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and "JSON" in malformed.json()["detail"]
    assert (await api.get("/v1/messages")).json()["data"] == []
    assert (await api.get("/v1/contacts")).json()["data"] == []


async def test_batch_is_all_or_nothing_and_capped(api: httpx.AsyncClient) -> None:
    good = [{"to": f"+1415555{i:04d}", "body": f"hello {i}"} for i in range(100, 110)]
    bad = good + [{"to": "not a number", "body": "x"}]
    response = await api.post("/v1/messages/batch", json={"messages": bad})
    assert response.status_code == 422 and "messages[10].to" in response.json()["detail"]
    assert (await api.get("/v1/messages")).json()["data"] == []

    too_many = {"messages": [{"to": "+14155550100", "body": "x"}] * 1001}
    assert (await api.post("/v1/messages/batch", json=too_many)).status_code == 422

    thousand = {"messages": [{"to": f"+1415555{i % 10000:04d}", "body": f"n{i}"} for i in range(1000)]}
    response = await api.post("/v1/messages/batch", json=thousand)
    assert response.status_code == 202
    assert len({m["id"] for m in response.json()["messages"]}) == 1000


async def test_list_filters_and_cursor_pagination(api: httpx.AsyncClient) -> None:
    ids = []
    for i in range(7):
        ids.append((await api.post("/v1/messages", json={"to": "+14155550104", "body": f"m{i}"})).json()["id"])
    other = (await api.post("/v1/messages", json={"to": "+14155550105", "body": "other"})).json()
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, "contact_id": (await api.get(f"/v1/messages/{ids[0]}")).json()["contact_id"]}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("/v1/messages", params=params)).json()
        seen += [m["id"] for m in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    assert other["id"] not in seen
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await api.get("/v1/messages", params={"since": future})).json()["data"] == []
    assert (await api.get("/v1/messages", params={"status": "bogus"})).status_code == 422


async def test_missing_or_wrong_key_is_401(api: httpx.AsyncClient) -> None:
    anonymous = await api.get("/v1/messages", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    wrong = await api.get("/v1/messages", headers={"Authorization": "Bearer emp_wrong"})
    assert wrong.status_code == 401
    assert (await api.get("/healthz", headers={"Authorization": ""})).status_code == 200


async def test_unknown_message_is_404_problem(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/messages/msg_nope")
    assert response.status_code == 404 and "msg_nope" in response.json()["detail"]


async def test_simulator_failures_end_undelivered(api: httpx.AsyncClient) -> None:
    assert (await api.patch("/v1/simulator", json={"fail_share": 1.0})).json()["fail_share"] == 1.0
    sent = (await api.post("/v1/messages", json={"to": "+14155550106", "body": "x"})).json()

    async def settled() -> dict | None:
        view = await status_of(api, sent["id"])
        return view if view["status"] == "undelivered" else None

    view = await eventually(settled)
    assert view["reason"].startswith("carrier_error_")
    assert (await api.patch("/v1/simulator", json={"fail_share": 2})).status_code == 422


async def test_openapi_is_served(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    assert "/v1/messages" in spec["paths"] and "/v1/events" in spec["paths"]
    # Errors are documented as they are sent: problem+json, never FastAPI's unsent 422 shape.
    answers = spec["paths"]["/v1/messages"]["post"]["responses"]
    assert set(answers) == {"202", "422", "4XX", "503"}  # 422: the rules the schema cannot state (x-rules)
    for code in ("422", "4XX"):
        assert answers[code]["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert "Retry-After" in answers["503"]["headers"] and "HTTPValidationError" not in str(spec)
    refused = await api.post("/v1/messages", json={"to": "not a number", "body": "hi"})
    assert refused.headers["content-type"] == "application/problem+json"
    assert set(spec["components"]["schemas"]["Problem"]["required"]) <= set(refused.json())


async def test_metrics_count_statuses(api: httpx.AsyncClient) -> None:
    def delivered_count(text: str) -> float:
        for line in text.splitlines():
            if line.startswith('empathic_message_status_total{direction="outbound",status="delivered"}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = delivered_count((await api.get("/metrics")).text)
    sent = (await api.post("/v1/messages", json={"to": "+14155550107", "body": "count me"})).json()

    async def delivered() -> bool:
        return (await status_of(api, sent["id"]))["status"] == "delivered"

    await eventually(delivered)
    assert delivered_count((await api.get("/metrics")).text) == before + 1
