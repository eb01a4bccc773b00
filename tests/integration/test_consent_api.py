"""Recording consent over the API, and what the gate then does with marketing."""

from __future__ import annotations

import json

import httpx

from tests.conftest import daytime_zone, eventually
from tests.integration.conftest import Receiver


async def final(api: httpx.AsyncClient, message_id: str) -> dict:
    async def settled() -> dict | None:
        view = (await api.get(f"/v1/messages/{message_id}")).json()
        return view if view["status"] not in ("queued", "sending", "sent") else None

    return await eventually(settled)


async def test_marketing_waits_for_express_consent_recorded_over_the_api(api: httpx.AsyncClient) -> None:
    contact = (await api.post("/v1/contacts", json={"phone": "+14155550170", "timezone": daytime_zone()})).json()
    first = (await api.post("/v1/messages", json={"to": "+14155550170", "body": "20% off", "topic": "deals"})).json()
    view = await final(api, first["id"])
    assert (view["status"], view["reason"]) == ("blocked", "no_consent")

    granted = await api.post(
        f"/v1/contacts/{contact['id']}/consents",
        json={"topic": "deals", "action": "granted", "source": "web_form", "evidence": "form-42"},
    )
    assert granted.status_code == 201, granted.text
    state = granted.json()
    assert state["topics"]["deals"] == {"sms": "granted", "email": None}
    assert state["history"][-1] | {"at": None} == {
        "topic": "deals", "channel": "sms", "action": "granted", "source": "web_form",
        "actor": "api:ws_default", "evidence": "form-42", "at": None,
    }
    second = (await api.post("/v1/messages", json={"to": "+14155550170", "body": "30% off", "topic": "deals"})).json()
    assert (await final(api, second["id"]))["status"] == "delivered"

    # The same content again is refused; a revocation over the API is honoured at once.
    again = (await api.post("/v1/messages", json={"to": "+14155550170", "body": "30% off", "topic": "deals"})).json()
    assert (await final(api, again["id"]))["reason"] == "duplicate_content"
    revoked = await api.post(f"/v1/contacts/{contact['id']}/consents", json={"topic": "deals", "action": "revoked"})
    assert revoked.json()["topics"]["deals"]["sms"] == "revoked"
    third = (await api.post("/v1/messages", json={"to": "+14155550170", "body": "40% off", "topic": "deals"})).json()
    assert (await final(api, third["id"]))["reason"] == "opted_out"


async def test_bad_consent_requests_are_clear_errors(api: httpx.AsyncClient) -> None:
    contact = (await api.post("/v1/contacts", json={"phone": "+14155550171"})).json()
    url = f"/v1/contacts/{contact['id']}/consents"
    cases = [
        ({"topic": "gossip", "action": "granted"}, 422, "topic"),
        ({"topic": "otp", "action": "revoked"}, 422, "essential"),
        ({"topic": "deals", "action": "maybe"}, 422, "action"),
        ({"topic": "deals", "action": "granted", "channel": "fax"}, 422, "channel"),
    ]
    for payload, status, words in cases:
        response = await api.post(url, json=payload)
        assert response.status_code == status and words in response.text, (payload, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    missing = await api.post("/v1/contacts/ct_nope/consents", json={"topic": "deals", "action": "granted"})
    assert missing.status_code == 404
    assert (await api.get(url)).json()["history"] == []  # nothing written by the bad requests


async def test_expired_and_past_valid_until(api: httpx.AsyncClient) -> None:
    stale = (await api.post("/v1/messages", json={"to": "+14155550172", "body": "ETA 9:00", "valid_until": "2020-01-01T00:00:00Z"})).json()
    view = await final(api, stale["id"])
    assert (view["status"], view["reason"]) == ("expired", "expired")
    assert view["valid_until"].startswith("2020-01-01T00:00:00")
    naive = await api.post("/v1/messages", json={"to": "+14155550172", "body": "x", "valid_until": "2030-01-01T00:00:00"})
    assert naive.status_code == 422 and "valid_until" in naive.text


async def test_revocations_by_api_and_by_topic_keyword_reach_webhooks(api: httpx.AsyncClient, receiver: Receiver) -> None:
    hook = await api.post("/v1/webhooks", json={"url": receiver.url, "events": ["contact.opted_out"]})
    assert hook.status_code == 201, hook.text
    phone = "+14155550173"
    contact = (await api.post("/v1/contacts", json={"phone": phone, "timezone": daytime_zone()})).json()
    await api.post(f"/v1/contacts/{contact['id']}/consents", json={"topic": "deals", "action": "granted"})
    await api.post(f"/v1/simulator/phones/{phone}/messages", json={"body": "STOP DEALS"})
    await api.post(f"/v1/contacts/{contact['id']}/consents", json={"topic": "*", "action": "revoked", "source": "agent"})

    async def opted_out() -> list[dict] | None:
        found = [json.loads(r.body)["data"] for r in receiver.requests]
        return found if len(found) >= 2 else None

    events = sorted(await eventually(opted_out), key=lambda d: d["at"])
    assert [(e["topic"], e["source"], e["contact_id"]) for e in events] == [
        ("deals", "keyword", contact["id"]), ("*", "agent", contact["id"]),
    ]
    assert events[0]["message_id"].startswith("msg_")  # the STOP DEALS message is the evidence
