"""Tests for POST /v1/understand, through the router on a small app with the real error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from empathic.api import problems
from empathic.api import understand as understand_api
from empathic.api.auth import workspace

CLOCK = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York


def _app(*, authenticated: bool = True) -> FastAPI:
    app = FastAPI()
    app.state.runtime = SimpleNamespace(now=lambda: CLOCK)
    app.state.key_cache = {}
    problems.install(app)
    app.include_router(understand_api.router)
    if authenticated:
        app.dependency_overrides[workspace] = lambda: "ws_test"
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://empathic.test") as c:
        yield c


async def test_reads_a_reply_at_the_runtime_clock(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/understand", json={"text": "can we do thurs 4 instead", "timezone": "America/New_York"})
    assert r.status_code == 200
    body = r.json()
    assert body["intent"] == "reschedule"
    assert body["when"] == "2026-11-26T16:00:00-05:00"
    assert body["when_kind"] == "datetime"
    assert body["option"] is None
    assert body["language"] == "en"
    assert 0 <= body["confidence"] <= 1


async def test_now_options_and_a_date(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/understand",
        json={"text": "sí, la B, el viernes", "timezone": "Europe/Madrid", "now": "2027-03-09T09:00:00+01:00", "options": ["A", "B"]},
    )
    assert r.json() | {"confidence": None} == {
        "intent": "confirm", "when": "2027-03-12", "when_kind": "date", "option": "B", "language": "es", "confidence": None,
    }


async def test_timezone_defaults_to_utc(client: httpx.AsyncClient) -> None:
    body = (await client.post("/v1/understand", json={"text": "STOP"})).json()
    assert (body["intent"], body["when"], body["when_kind"]) == ("opt_out", None, None)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../etc/passwd"])
async def test_unknown_timezone_is_a_422_problem(client: httpx.AsyncClient, zone: str) -> None:
    r = await client.post("/v1/understand", json={"text": "yes", "timezone": zone})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"] == "timezone"


@pytest.mark.parametrize(
    "payload",
    [{"text": "yes", "now": "2026-11-23T10:00:00"}, {"text": "yes", "colour": "red"}, {}, {"text": "x" * 2001}],
)
async def test_invalid_requests_are_422_problems(client: httpx.AsyncClient, payload: dict[str, object]) -> None:
    r = await client.post("/v1/understand", json=payload)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_requires_an_api_key() -> None:
    transport = httpx.ASGITransport(app=_app(authenticated=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://empathic.test") as c:
        r = await c.post("/v1/understand", json={"text": "yes"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
