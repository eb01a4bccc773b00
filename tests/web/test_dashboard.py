"""The dashboard page (/dashboard): every role sees its own workspace's figures, the period form
reads presets and from/to, bad input is a visible message, names are escaped; /v1/stats takes a
signed-in person's session."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from empathic.api.app import create_app
from empathic.engine.runtime import Runtime
from empathic.store.schema import messages
from tests.web.conftest import signed_in_client

HOSTILE = "<img src=x onerror=alert(1)>"


async def _texts(api: httpx.AsyncClient, count: int, topic: str = "orders") -> None:
    for i in range(count):
        sent = await api.post("/v1/messages", json={"to": f"+1415555{600 + i:04d}", "body": f"Hi {i}", "topic": topic})
        assert sent.status_code == 202, sent.text


def _figure(html: str, name: str) -> int:
    found = re.search(rf'data-figure="{name}">(\d+)', html)
    assert found, name
    return int(found.group(1))


@pytest.mark.parametrize("role", ["viewer", "agent", "admin"])
async def test_every_role_sees_the_figures_of_its_workspace(runtime: Runtime, api: httpx.AsyncClient, role: str) -> None:
    await _texts(api, 3)
    async with runtime.db.transaction() as conn:
        written = len((await conn.execute(select(messages.c.id).where(messages.c.direction == "outbound"))).all())
    async with await signed_in_client(runtime, role=role) as browser:
        page = await browser.get("/dashboard")
        assert page.status_code == 200, page.text
        html = page.text
        assert _figure(html, "accepted") == written == 3
        assert 'id="by-topic"' in html and ">orders<" in html
        for chart in ("throughput", "queue", "deferred", "failures"):
            assert f'id="{chart}-chart"' in html and f'aria-describedby="{chart}-summary"' in html
        assert '<script src="/static/vendor/chart.umd.min.js"' in html and "<script>" not in html
        # The charts' endpoints answer the page's own session, for every role.
        stats = await browser.get("/v1/stats/messages", params={"period": "24h"})
        assert stats.status_code == 200 and stats.json()["totals"]["accepted"] == 3
    async with await signed_in_client(runtime, role=role, workspace_id="ws_elsewhere") as stranger:
        other = await stranger.get("/dashboard")
        assert other.status_code == 200 and _figure(other.text, "accepted") == 0
        assert (await stranger.get("/v1/stats/messages")).json()["totals"]["accepted"] == 0


async def test_the_period_form_and_its_errors(runtime: Runtime, api: httpx.AsyncClient) -> None:
    await _texts(api, 2)
    async with await signed_in_client(runtime, role="viewer") as browser:
        week = await browser.get("/dashboard", params={"period": "7d"})
        assert week.status_code == 200 and '<option value="7d" selected>' in week.text
        assert 'data-query="period=7d"' in week.text and 'data-bucket="hour"' in week.text
        start = runtime.now().strftime("%Y-%m-%dT00:00")
        custom = await browser.get("/dashboard", params={"from": start, "period": "24h"})
        assert custom.status_code == 200 and _figure(custom.text, "accepted") == 2
        assert "data-query=\"from=" in custom.text
        bad = await browser.get("/dashboard", params={"from": "not a time"})
        assert bad.status_code == 422 and 'role="alert"' in bad.text and "from: must be a date and time" in bad.text
        backwards = await browser.get("/dashboard", params={"from": "2026-12-02T00:00", "to": "2026-12-01T00:00"})
        assert backwards.status_code == 422 and "must be before" in backwards.text
        too_fine = await browser.get("/dashboard", params={"period": "30d", "bucket": "minute"})
        assert too_fine.status_code == 422 and "bucket:" in too_fine.text


async def test_names_are_escaped(runtime: Runtime, api: httpx.AsyncClient) -> None:
    await _texts(api, 1)
    async with runtime.db.transaction() as conn:  # a trigger's name as hostile as a name can be
        await conn.execute(messages.update().values(trigger=HOSTILE))
    async with await signed_in_client(runtime, role="viewer") as browser:
        html = (await browser.get("/dashboard")).text
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


async def test_not_signed_in_is_sent_to_sign_in(runtime: Runtime, api: httpx.AsyncClient) -> None:
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="https://empathic.test") as anonymous:
        page = await anonymous.get("/dashboard")
        assert page.status_code == 303 and page.headers["location"].startswith("/?next=")
        assert (await anonymous.get("/v1/stats/messages")).status_code == 401
    assert (await api.get("/v1/stats/messages")).status_code == 200  # an API key reads them
