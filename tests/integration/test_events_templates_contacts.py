"""Events fire triggers that render templates; templates and contacts over the API."""

from __future__ import annotations

import httpx

from tests.conftest import eventually

DISPATCHED = {
    "type": "order.dispatched",
    "contact": {"phone": "+1 415 555 0150", "attributes": {"first_name": "Maya"}},
    "data": {"order_id": "A-1001", "expected_date": "Thu 26 Nov", "tracking_url": "https://t.example/A-1001"},
    "idempotency_key": "order-A-1001-dispatched",
}


async def test_event_upserts_contact_and_sends_the_rendered_template(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/events", json=DISPATCHED)
    assert response.status_code == 202, response.text
    event = response.json()
    (message,) = event["messages"]
    assert message["body"].startswith("Maya, your Acme order A-1001 is on its way!")
    assert message["template"] == "order_dispatched"
    contact = (await api.get(f"/v1/contacts/{event['contact_id']}")).json()
    assert contact["phone"] == "+14155550150"
    assert contact["timezone"] == "America/Los_Angeles"
    assert contact["attributes"] == {"first_name": "Maya"}

    async def on_phone() -> list | None:
        texts = (await api.get("/v1/simulator/phones/+14155550150/messages")).json()["messages"]
        return texts or None

    (text,) = await eventually(on_phone)
    assert text["body"] == message["body"]

    replay = (await api.post("/v1/events", json=DISPATCHED)).json()
    assert replay["replayed"] is True and replay["messages"][0]["id"] == message["id"]


async def test_event_merges_contact_attributes(api: httpx.AsyncClient) -> None:
    await api.post("/v1/events", json=DISPATCHED)
    later = {
        "type": "order.out_for_delivery",
        "contact": {"phone": "+14155550150", "attributes": {"tier": "gold"}, "timezone": "America/New_York"},
        "data": {"order_id": "A-1001", "courier": "Sam (DHL)", "eta": "14:30"},
    }
    event = (await api.post("/v1/events", json=later)).json()
    assert "with Sam (DHL), arriving around 14:30" in event["messages"][0]["body"]
    contact = (await api.get(f"/v1/contacts/{event['contact_id']}")).json()
    assert contact["attributes"] == {"first_name": "Maya", "tier": "gold"}
    assert contact["timezone"] == "America/New_York"


async def test_event_missing_template_data_is_rejected_and_stores_nothing(api: httpx.AsyncClient) -> None:
    bad = {**DISPATCHED, "data": {"order_id": "A-1"}, "idempotency_key": None}
    response = await api.post("/v1/events", json=bad)
    assert response.status_code == 422
    assert "expected_date" in response.json()["detail"]
    assert (await api.get("/v1/contacts")).json()["data"] == []
    assert (await api.get("/v1/messages")).json()["data"] == []


async def test_event_without_trigger_still_records_the_contact(api: httpx.AsyncClient) -> None:
    event = (await api.post("/v1/events", json={"type": "cart.updated", "contact": {"email": "a@b.example"}})).json()
    assert event["messages"] == []
    assert (await api.get(f"/v1/contacts/{event['contact_id']}")).json()["email"] == "a@b.example"
    assert (await api.post("/v1/events", json={"type": "x", "contact": {}})).status_code == 422
    assert (await api.post("/v1/events", json={"type": "x", "contact": {"phone": "+1415", "timezone": "Mars/Base"}})).status_code == 422


async def test_templates_reject_unknown_variables_at_upload(api: httpx.AsyncClient) -> None:
    response = await api.put("/v1/templates/promo", json={"body": "Hi {{ customer.name }}"})
    assert response.status_code == 422 and "customer" in response.json()["detail"]
    response = await api.put("/v1/templates/promo", json={"body": "Hi {% if %}"})
    assert response.status_code == 422


async def test_template_and_trigger_over_the_api(api: httpx.AsyncClient) -> None:
    body = "{{ contact.attributes.first_name | default('Hi') }}, {{ event.data.item }} is back in stock!"
    assert (await api.put("/v1/templates/back_in_stock", json={"body": body})).status_code == 200
    names = {t["name"]: t["source"] for t in (await api.get("/v1/templates")).json()["data"]}
    assert names["back_in_stock"] == "api" and names["order_dispatched"] == "project"

    trig = await api.put("/v1/triggers/restock", json={"event": "stock.back", "template": "back_in_stock", "topic": "deals"})
    assert trig.status_code == 200 and trig.json()["source"] == "api"
    bad = await api.put("/v1/triggers/x", json={"event": "e", "template": "nope"})
    assert bad.status_code == 422
    bad_topic = await api.put("/v1/triggers/x", json={"event": "e", "template": "back_in_stock", "topic": "gossip"})
    assert bad_topic.status_code == 422

    event = (await api.post("/v1/events", json={"type": "stock.back", "contact": {"phone": "+14155550151"},
                                                  "data": {"item": "Blue mug"}})).json()
    assert event["messages"][0]["body"] == "Hi, Blue mug is back in stock!"

    # A template with an event variable the event lacks fails at render, clearly.
    response = await api.post("/v1/events", json={"type": "stock.back", "contact": {"phone": "+14155550151"}, "data": {}})
    assert response.status_code == 422 and "item" in response.json()["detail"]

    assert (await api.delete("/v1/triggers/restock")).status_code == 204
    assert (await api.delete("/v1/triggers/order-dispatched")).status_code == 404  # from the project
    assert (await api.delete("/v1/templates/back_in_stock")).status_code == 204
    assert (await api.get("/v1/templates/back_in_stock")).status_code == 404


async def test_preview_gives_text_encoding_and_segments(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/templates/order_out_for_delivery/preview",
        json={"event": {"data": {"order_id": "B-7", "courier": "Léa 🚚", "eta": "10:00"}}},
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert "B-7" in preview["text"] and preview["encoding"] == "ucs2" and preview["segments"] == 2
    assert "".join(preview["parts"]) == preview["text"]
    inline = (await api.post("/v1/templates/draft/preview", json={"body": "Hi {{ contact.name }}", "contact": {"name": "Al"}})).json()
    assert inline == {"text": "Hi Al", "encoding": "gsm7", "segments": 1, "units": 5, "parts": ["Hi Al"]}
    missing = await api.post("/v1/templates/draft/preview", json={"body": "Hi {{ contact.name }}"})
    assert missing.status_code == 422 and "name" in missing.json()["detail"]


async def test_contacts_crud(api: httpx.AsyncClient) -> None:
    created = await api.post("/v1/contacts", json={"phone": "020 7946 0018", "region": "GB", "attributes": {"vip": True}})
    assert created.status_code == 201, created.text
    contact = created.json()
    assert contact["phone"] == "+442079460018" and contact["timezone"] == "Europe/London"
    dup = await api.post("/v1/contacts", json={"phone": "+442079460018"})
    assert dup.status_code == 409 and dup.json()["contact_id"] == contact["id"]

    patched = (await api.patch(f"/v1/contacts/{contact['id']}", json={"locale": "en-GB", "attributes": {"vip": None, "tier": 2}})).json()
    assert patched["locale"] == "en-GB" and patched["attributes"] == {"tier": 2}
    assert (await api.patch(f"/v1/contacts/{contact['id']}", json={"timezone": "Nowhere/City"})).status_code == 422

    listed = (await api.get("/v1/contacts", params={"phone": "+442079460018"})).json()["data"]
    assert [c["id"] for c in listed] == [contact["id"]]
    assert (await api.delete(f"/v1/contacts/{contact['id']}")).status_code == 204
    assert (await api.get(f"/v1/contacts/{contact['id']}")).status_code == 404
    assert (await api.post("/v1/contacts", json={"locale": "fr"})).status_code == 422
