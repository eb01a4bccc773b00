"""Webhooks out from the running engine: message.status, message.received, contact.opted_out."""

from __future__ import annotations

import json
import time
import httpx

from empathic.core.signing import verify
from tests.conftest import eventually
from tests.integration.conftest import Receiver


def events_of(receiver: Receiver) -> list[dict]:
    return [json.loads(r.body) for r in receiver.requests]


async def test_engine_events_reach_a_subscribed_webhook_signed(api: httpx.AsyncClient, receiver: Receiver) -> None:
    created = await api.post("/v1/webhooks", json={"url": receiver.url, "events": ["message.status", "message.received", "contact.opted_out"]})
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]

    sent = (await api.post("/v1/messages", json={"to": "+14155550160", "body": "hello"})).json()

    async def statuses() -> list[str] | None:
        # Deliveries may arrive out of order; their ids sort in the order the events happened.
        events = sorted(events_of(receiver), key=lambda e: e["id"])
        got = [e["data"]["status"] for e in events if e["type"] == "message.status" and e["data"]["message_id"] == sent["id"]]
        return got if len(got) == 4 else None

    assert await eventually(statuses) == ["queued", "sending", "sent", "delivered"]

    await api.post("/v1/simulator/phones/+14155550160/messages", json={"body": "STOP"})

    async def opted_out() -> list[dict] | None:
        found = [e for e in events_of(receiver) if e["type"] == "contact.opted_out"]
        return found or None

    (event,) = await eventually(opted_out)
    assert event["data"]["contact_id"] == sent["contact_id"] and event["data"]["source"] == "keyword"
    received = [e for e in events_of(receiver) if e["type"] == "message.received"]
    assert received[0]["data"]["body"] == "STOP" and received[0]["data"]["keyword"] == "opt_out"

    for request in receiver.requests:
        assert verify(secret, request.headers["empathic-signature"], request.body, now=int(time.time()))
        assert request.headers["empathic-event"] == json.loads(request.body)["type"]
    assert not verify("whsec_wrong", receiver.requests[0].headers["empathic-signature"], receiver.requests[0].body, now=int(time.time()))

    async def all_delivered() -> bool:
        log = (await api.get(f"/v1/webhooks/{created.json()['id']}/deliveries")).json()["data"]
        return bool(log) and all(d["status"] == "delivered" for d in log)

    await eventually(all_delivered)  # the confirmation text's own status events included


async def test_unsubscribed_events_are_not_sent(api: httpx.AsyncClient, receiver: Receiver) -> None:
    await api.post("/v1/webhooks", json={"url": receiver.url, "events": ["contact.opted_out"]})
    sent = (await api.post("/v1/messages", json={"to": "+14155550161", "body": "hello"})).json()

    async def delivered() -> bool:
        return (await api.get(f"/v1/messages/{sent['id']}")).json()["status"] == "delivered"

    await eventually(delivered)
    assert receiver.requests == []
    bad = await api.post("/v1/webhooks", json={"url": "ftp://x", "events": ["message.status"]})
    assert bad.status_code == 422 and "url" in bad.json()["detail"]
