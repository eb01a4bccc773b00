"""Hostile templates over the API (issue 21, points 3 and 4): answered 422 at once, the
server free meanwhile, nothing kept of a refused event. (The times allowed are generous for a
loaded test machine; a render itself is cut off at 0.2 s, tests/core/test_templates.py.)"""

from __future__ import annotations

import asyncio
import time

import httpx

CONTACT = {"phone": "+14155550177"}


async def timed(request: asyncio.Future[httpx.Response] | object) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await request  # type: ignore[misc]
    return response, time.perf_counter() - started


async def test_a_huge_power_is_stored_at_once_and_refused_when_rendered(api: httpx.AsyncClient) -> None:
    # The probe: this PUT held the whole server 22 s while Jinja folded the constant.
    put, took = await timed(api.put("/v1/templates/x", json={"body": "{{ 3 ** 10000000 }}"}))
    assert put.status_code == 200 and took < 3.0
    preview, took = await timed(api.post("/v1/templates/x/preview", json={}))
    assert preview.status_code == 422 and took < 3.0
    assert "4,096 bits" in preview.json()["detail"]
    assert preview.json()["errors"] == [{"field": "body", "detail": preview.json()["detail"]}]

    # A trigger on it refuses the event: no contact, no message kept.
    trigger = {"event": "power.up", "template": "x", "topic": "transactional"}
    assert (await api.put("/v1/triggers/power", json=trigger)).status_code == 200
    event = await api.post("/v1/events", json={"type": "power.up", "contact": CONTACT})
    assert event.status_code == 422 and "4,096 bits" in event.json()["detail"]
    assert (await api.get("/v1/messages")).json()["data"] == []
    assert (await api.get("/v1/contacts")).json()["data"] == []


async def test_a_huge_repetition_is_refused_and_health_answers_meanwhile(api: httpx.AsyncClient) -> None:
    # The probe: its preview returned 202 MB after 16-20 s, and /healthz waited as long.
    preview = api.post("/v1/templates/x/preview", json={"body": "{{ 'a' * 100000000 }}"})
    (answer, took), health = await asyncio.gather(timed(preview), api.get("/healthz"))
    assert answer.status_code == 422 and took < 3.0
    assert "262,144 characters" in answer.json()["detail"]
    assert health.status_code == 200


async def test_a_preview_longer_than_a_text_may_be_is_refused(api: httpx.AsyncClient) -> None:
    fits = await api.post("/v1/templates/x/preview", json={"body": "{{ 'a' * 1530 }}"})
    assert fits.status_code == 200 and fits.json()["segments"] == 10
    answer = await api.post("/v1/templates/x/preview", json={"body": "{{ 'a' * 1531 }}"})
    assert answer.status_code == 422
    assert "11 segments" in answer.json()["detail"] and "at most 10" in answer.json()["detail"]


async def test_a_runaway_loop_is_refused(api: httpx.AsyncClient) -> None:
    loops = "{% set l = event.data.l %}" + "{% for a in l %}" * 5 + "x" + "{% endfor %}" * 5
    preview, took = await timed(api.post("/v1/templates/x/preview", json={"body": loops, "event": {"data": {"l": list(range(30))}}}))
    assert preview.status_code == 422 and took < 3.0
    assert "to render" in preview.json()["detail"] or "loop iterations" in preview.json()["detail"]
