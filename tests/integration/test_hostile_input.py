"""What a security probe sent that once got through (issue 21): each answered 4xx before
anything is stored, never 500, and what was refused is not kept. Both backends."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from empathic.channels import twilio, vonage
from empathic.core import links
from empathic.engine.runtime import Runtime
from empathic.store import keys
from tests.conftest import API_KEY, eventually

SURROGATE = '"\\udfff"'  # JSON for a lone UTF-16 surrogate: valid JSON, not text


def problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    return answer.json()


async def contacts(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    answer = await api.get("/v1/contacts")
    assert answer.status_code == 200
    return answer.json()["data"]


async def post_raw(api: httpx.AsyncClient, path: str, raw: str, method: str = "POST") -> httpx.Response:
    return await api.request(method, path, content=raw.encode(), headers={"content-type": "application/json"})


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """A refused request is logged, if at all, as a refusal: no error, no traceback."""
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


async def test_a_lone_surrogate_anywhere_in_a_body_is_422_naming_it_and_nothing_is_stored(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    before = await contacts(api)
    body = problem(await post_raw(api, "/v1/contacts", '{"phone": "+14155550106", "attributes": {"n": %s}}' % SURROGATE), 422)
    assert body["errors"] == [{"field": "attributes.n", "detail": body["errors"][0]["detail"]}]
    assert "surrogate" in body["detail"]
    assert await contacts(api) == before  # nothing stored, and the list still reads

    # In a key, and deep in a list; events and batches alike.
    body = problem(await post_raw(api, "/v1/events", '{"type": "x", "contact": {"phone": "+14155550106"}, '
                                                     '"data": {"items": [1, {"ok": "a", %s: 2}]}}' % SURROGATE), 422)
    assert body["errors"][0]["field"] == "data.items[1]"
    body = problem(await post_raw(api, "/v1/messages/batch",
                                  '{"messages": [{"to": "+14155550106", "body": "hi"}, '
                                  '{"to": "+14155550106", "body": %s}]}' % SURROGATE), 422)
    assert body["errors"][0]["field"] == "messages[1].body"
    assert (await api.get("/v1/messages")).json()["data"] == []

    # A PATCH is refused the same way and leaves the contact as it was.
    made = await api.post("/v1/contacts", json={"phone": "+14155550106", "attributes": {"n": "ok"}})
    assert made.status_code == 201, made.text
    contact = made.json()
    problem(await post_raw(api, f"/v1/contacts/{contact['id']}", '{"attributes": {"n": %s}}' % SURROGATE, "PATCH"), 422)
    assert (await api.get(f"/v1/contacts/{contact['id']}")).json()["attributes"] == {"n": "ok"}
    assert (await api.get(f"/v1/contacts/{contact['id']}/export")).status_code == 200

    # A surrogate pair, escaped, is one character (an emoji) and welcome.
    pair = await post_raw(api, f"/v1/contacts/{contact['id']}", '{"attributes": {"n": "\\ud83d\\ude00"}}', "PATCH")
    assert pair.status_code == 200, pair.text
    assert pair.json()["attributes"] == {"n": "😀"}
    no_traceback(caplog)


async def test_a_body_over_the_limit_is_413_before_it_is_read_and_stores_nothing(api: httpx.AsyncClient) -> None:
    big = json.dumps({"phone": "+14155550107", "attributes": {"n": "a" * (1024 * 1024)}})
    body = problem(await post_raw(api, "/v1/contacts", big), 413)
    assert "1,024 KiB" in body["detail"]

    async def chunks() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b"x" * 65536

    streamed = await api.post("/v1/events", content=chunks(), headers={"content-type": "application/json"})
    problem(streamed, 413)
    assert await contacts(api) == []

    # A batch may be larger: 1,000 texts of 10 segments each fit.
    texts = [{"to": f"+1415555{i:04d}", "body": "ж" * 670, "idempotency_key": f"k{i}"} for i in range(1000)]
    raw = json.dumps({"messages": texts})  # UCS-2, 10 segments each, as \u0436 escapes: about 4 MiB
    assert len(raw) > 3 * 1024 * 1024
    answer = await post_raw(api, "/v1/messages/batch", raw)
    assert answer.status_code == 202, answer.text[:300]


async def test_free_form_json_has_a_size_limit_even_when_merged(api: httpx.AsyncClient) -> None:
    body = problem(await api.post("/v1/contacts", json={"phone": "+14155550108", "attributes": {"n": "a" * 17_000}}), 422)
    assert body["errors"][0]["field"] == "attributes"
    assert await contacts(api) == []
    problem(await api.post("/v1/events", json={"type": "x", "contact": {"phone": "+14155550108"},
                                               "data": {"n": "a" * 70_000}}), 422)
    made = await api.post("/v1/contacts", json={"phone": "+14155550108", "attributes": {"a": "x" * 10_000}})
    assert made.status_code == 201
    contact_id = made.json()["id"]
    body = problem(await api.patch(f"/v1/contacts/{contact_id}", json={"attributes": {"b": "y" * 10_000}}), 422)
    assert "merged" in body["detail"]
    assert (await api.get(f"/v1/contacts/{contact_id}")).json()["attributes"] == {"a": "x" * 10_000}
    # An event's contact merges the same way: refused, not stored.
    answer = await api.post("/v1/events", json={"type": "x", "contact": {"phone": "+14155550108",
                                                                         "attributes": {"b": "y" * 10_000}}})
    problem(answer, 422)
    assert (await api.get(f"/v1/contacts/{contact_id}")).json()["attributes"] == {"a": "x" * 10_000}


async def test_every_answer_carries_the_security_headers(api: httpx.AsyncClient) -> None:
    for answer in (await api.get("/healthz"), await api.get("/v1/nothing-here"), await api.get("/docs"),
                   await post_raw(api, "/v1/contacts", '{"attributes": {"n": %s}}' % SURROGATE)):
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


async def _preference_link(api: httpx.AsyncClient) -> tuple[str, str]:
    made = await api.post("/v1/contacts", json={"phone": "+14155550109"})
    contact_id = made.json()["id"]
    link = await api.post(f"/v1/contacts/{contact_id}/preference-link")
    assert link.status_code == 200 or link.status_code == 201, link.text
    return contact_id, link.json()["url"].split("/p/", 1)[1]


async def test_the_preference_form_is_refused_from_another_site_or_without_its_token(
    api: httpx.AsyncClient, runtime: Runtime
) -> None:
    contact_id, token = await _preference_link(api)
    page = await api.get(f"/p/{token}")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    form_token = page.text.split('name="form_token" value="', 1)[1].split('"', 1)[0]
    form = {"action": "stop_all", "form_token": form_token}

    async def ledger() -> list[Any]:
        return (await api.get(f"/v1/contacts/{contact_id}/consents")).json()["history"]

    before = await ledger()
    evil = await api.post(f"/p/{token}", data=form, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403
    framed = await api.post(f"/p/{token}", data=form, headers={"Sec-Fetch-Site": "cross-site"})
    assert framed.status_code == 403
    tokenless = await api.post(f"/p/{token}", data={"action": "stop_all"})
    assert tokenless.status_code == 403
    forged = ("B" if form_token[0] == "A" else "A") + form_token[1:]  # always another token (a fixed "AA" ending was not)
    other = await api.post(f"/p/{token}", data={"action": "stop_all", "form_token": forged})
    assert other.status_code == 403
    assert await ledger() == before  # nothing recorded

    same_site = await api.post(f"/p/{token}", data=form, headers={"Origin": "http://empathic.test"})
    assert same_site.status_code == 200, same_site.text
    assert len(await ledger()) > len(before)


async def test_a_link_with_a_strange_signature_is_a_404_page_not_an_error(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    _, token = await _preference_link(api)
    for signature in ("%C3%A9", "%FF", "\uff21", "%ED%B3%BF", ""):
        forged = token.rsplit(".", 1)[0] + "." + signature + "x"
        for answer in (await api.get(f"/p/{forged}"), await api.post(f"/p/{forged}", data={"action": "stop_all"})):
            assert answer.status_code in (403, 404), (signature, answer.text)
    no_traceback(caplog)


# Any character, lone surrogates (which st.text leaves out by default) included.
_any_text = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=20)


_KEY, _NOW = b"k" * 32, datetime(2026, 1, 1, tzinfo=UTC)
_GOOD = links.sign(_KEY, "ws_1", "ct_1", _NOW + timedelta(days=1))


@settings(max_examples=200, deadline=None)
@given(_any_text)
def test_link_verification_refuses_any_other_signature_as_a_bad_link(signature: str) -> None:
    token = _GOOD.rsplit(".", 1)[0] + "." + signature
    if token == _GOOD:
        assert links.verify(_KEY, token, _NOW).contact_id == "ct_1"
        return
    with pytest.raises(links.BadLink):
        links.verify(_KEY, token, _NOW)


async def test_the_simulated_phone_shows_a_workspace_only_its_own_texts(api: httpx.AsyncClient, runtime: Runtime) -> None:
    other_key = "emp_hostile_other_workspace_0123456789"
    async with runtime.db.transaction() as conn:
        await keys.ensure_workspace(conn, "ws_hostile_other", "Other", runtime.now())
        await keys.add_key(conn, "ws_hostile_other", other_key, "other", runtime.now())
    phone = "+14155550110"
    theirs = await api.post("/v1/messages", json={"to": phone, "body": "from the other workspace"},
                            headers={"Authorization": f"Bearer {other_key}"})
    assert theirs.status_code == 202, theirs.text
    ours = await api.post("/v1/messages", json={"to": phone, "body": "from the default workspace"})
    assert ours.status_code == 202

    async def both_sent() -> bool:
        states = [(await api.get(f"/v1/messages/{m.json()['id']}",
                                 headers={"Authorization": f"Bearer {k}"})).json()["status"]
                  for m, k in ((theirs, other_key), (ours, API_KEY))]
        return all(s in ("sent", "delivered") for s in states)

    await eventually(both_sent)
    seen = (await api.get(f"/v1/simulator/phones/{phone}/messages")).json()["messages"]
    assert [m["body"] for m in seen] == ["from the default workspace"]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_any_text, _any_text, max_size=4), _any_text)
def test_provider_signature_checks_answer_no_to_any_text_and_never_raise(params: dict[str, str], given_sig: str) -> None:
    # Lone surrogates included (hypothesis' text() draws them): once a 500 before the 403.
    for method in vonage.SignatureMethod:
        assert vonage.verify("secret", method, params | {"sig": given_sig}) is (
            given_sig.lower() == vonage.signature("secret", method, params))
    assert twilio.verify("token", "https://example.test/hooks/t/status", params, given_sig) is False or \
        given_sig == twilio.signature("token", "https://example.test/hooks/t/status", params)
