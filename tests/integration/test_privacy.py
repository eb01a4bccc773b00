"""Privacy: export everything about a person, erase them, keep an opted-out number suppressed,
redact old bodies on schedule."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select

from empathic.engine.runtime import Runtime
from empathic.store import schema
from tests.conftest import eventually, subscribe
from tests.integration.test_consent_api import final

PHONE = "+14155550180"


async def text_in(api: httpx.AsyncClient, phone: str, body: str) -> None:
    response = await api.post(f"/v1/simulator/phones/{phone}/messages", json={"body": body})
    assert response.status_code == 202, response.text


async def rows_about(runtime: Runtime, contact_id: str, phone: str) -> dict[str, int]:
    """How many rows in each table still mention the contact or the number."""
    counts = {}
    async with runtime.db.transaction() as conn:
        for table in (schema.contacts, schema.consent_ledger, schema.preferences, schema.threads, schema.events):
            column = table.c.id if table is schema.contacts else table.c.contact_id
            counts[table.name] = (await conn.execute(select(func.count()).where(column == contact_id))).scalar_one()
        m = schema.messages.c
        counts["messages"] = (
            await conn.execute(select(func.count()).where((m.contact_id == contact_id) | (m.to_addr == phone) | (m.from_addr == phone)))
        ).scalar_one()
    return counts


async def test_export_holds_everything_and_erase_leaves_nothing_but_the_suppression(
    api: httpx.AsyncClient, runtime: Runtime
) -> None:
    contact_id = await subscribe(api, PHONE)
    await api.put(f"/v1/contacts/{contact_id}/preferences", json={"language": "es", "max_marketing_per_week": 3})
    sent = (await api.post("/v1/messages", json={"to": PHONE, "body": "Your order shipped", "topic": "transactional"})).json()
    await final(api, sent["id"])
    await text_in(api, PHONE, "where is it though?")  # opens an inbox thread
    await text_in(api, PHONE, "STOP")

    async def exported() -> dict | None:
        data = (await api.get(f"/v1/contacts/{contact_id}/export")).json()
        return data if len(data["messages"]) >= 4 else None  # ours, two replies, the confirmation

    data = await eventually(exported)
    assert data["contact"]["phone"] == PHONE
    assert data["preferences"]["language"] == "es"
    assert [h["action"] for h in data["consent_history"]] == ["granted", "revoked"]
    bodies = {m["body"] for m in data["messages"]}
    assert {"Your order shipped", "where is it though?", "STOP"} <= bodies
    shipped = next(m for m in data["messages"] if m["id"] == sent["id"])
    assert [e["status"] for e in shipped["events"]][:2] == ["queued", "sending"]
    assert data["threads"] and data["threads"][0]["status"] == "open"
    thread_id = data["threads"][0]["id"]
    assert (await api.post(f"/v1/inbox/{thread_id}/notes", json={"body": "Lives at 12 Elm St"})).status_code == 201
    async with runtime.db.transaction() as conn:  # a person has read the thread
        await conn.execute(schema.thread_reads.insert().values(thread_id=thread_id, user_id="usr_x", read_at=runtime.now()))
    data = (await api.get(f"/v1/contacts/{contact_id}/export")).json()
    assert [n["body"] for n in data["threads"][0]["notes"]] == ["Lives at 12 Elm St"]
    heard = {r["message_id"]: r for r in data["readings"]}
    replies = {m["body"]: m["id"] for m in data["messages"] if m["direction"] == "inbound"}
    assert heard[replies["STOP"]]["keyword"] == "stop" and heard[replies["where is it though?"]]["intent"]

    async def settled() -> bool:  # the STOP confirmation must be claimed and handed off first
        page = (await api.get("/v1/messages", params={"contact_id": contact_id})).json()["data"]
        return all(m["status"] not in ("queued", "sending") for m in page)

    await eventually(settled)
    assert (await api.delete(f"/v1/contacts/{contact_id}")).status_code == 204
    assert (await api.get(f"/v1/contacts/{contact_id}")).status_code == 404
    assert (await api.get(f"/v1/contacts/{contact_id}/export")).status_code == 404
    assert (await api.delete(f"/v1/contacts/{contact_id}")).status_code == 404
    assert await rows_about(runtime, contact_id, PHONE) == dict.fromkeys(
        ["contacts", "consent_ledger", "preferences", "threads", "events", "messages"], 0
    )
    async with runtime.db.transaction() as conn:  # nothing a person wrote or read of it, nothing heard
        for table in (schema.thread_notes, schema.thread_reads, schema.message_readings):
            assert (await conn.execute(select(func.count()).select_from(table))).scalar_one() == 0, table.name
    async with runtime.db.transaction() as conn:
        kept = (await conn.execute(select(schema.suppressions))).mappings().all()
    assert len(kept) == 1 and PHONE not in str(dict(kept[0])) and kept[0]["opt_outs"] == [["*", "sms"]]

    # The number comes back: a new contact, still opted out of every non-essential topic (its
    # old opt-out is back in its ledger); a code the person asks for still goes.
    back = (await api.post("/v1/messages", json={"to": PHONE, "body": "Big sale", "topic": "deals"})).json()
    assert (await final(api, back["id"]))["reason"] == "opted_out"
    new_contact = back["contact_id"]
    assert new_contact != contact_id
    history = (await api.get(f"/v1/contacts/{new_contact}/consents")).json()["history"]
    assert [(h["action"], h["source"]) for h in history] == [("revoked", "suppression")]
    code = (await api.post("/v1/messages", json={"to": PHONE, "body": "Code 123456", "topic": "otp"})).json()
    assert (await final(api, code["id"]))["status"] == "delivered"


async def test_erasing_a_contact_who_never_opted_out_keeps_nothing(api: httpx.AsyncClient, runtime: Runtime) -> None:
    made = (await api.post("/v1/contacts", json={"phone": "+14155550181"})).json()
    assert (await api.delete(f"/v1/contacts/{made['id']}")).status_code == 204
    async with runtime.db.transaction() as conn:
        assert (await conn.execute(select(func.count()).select_from(schema.suppressions))).scalar_one() == 0
    again = (await api.post("/v1/contacts", json={"phone": "+14155550181"})).json()
    assert (await api.get(f"/v1/contacts/{again['id']}/consents")).json()["history"] == []


async def test_a_topic_opt_out_survives_erasure_for_that_topic_only(api: httpx.AsyncClient) -> None:
    phone = "+14155550182"
    contact_id = await subscribe(api, phone)
    await api.post(f"/v1/contacts/{contact_id}/consents", json={"topic": "deals", "action": "revoked"})
    assert (await api.delete(f"/v1/contacts/{contact_id}")).status_code == 204
    again = (await api.post("/v1/contacts", json={"phone": phone})).json()
    view = (await api.get(f"/v1/contacts/{again['id']}/consents")).json()
    assert view["topics"]["deals"]["sms"] == "revoked" and view["sms"]["opted_out_of_all"] is False


async def test_suppression_hashes_are_salted_per_workspace(runtime: Runtime) -> None:
    from empathic.store import keys, suppressions

    async with runtime.db.transaction() as conn:
        await keys.ensure_workspace(conn, "ws_other", "Other", runtime.now())
        mine = suppressions.phone_hash(await suppressions.salt(conn, runtime.workspace_id), PHONE)
        theirs = suppressions.phone_hash(await suppressions.salt(conn, "ws_other"), PHONE)
        assert mine != theirs and len(mine) == 64


async def test_retention_redacts_old_settled_bodies_and_keeps_marketing_de_duplication(
    api: httpx.AsyncClient, runtime: Runtime
) -> None:
    phone = "+14155550183"
    await subscribe(api, phone)
    offer = (await api.post("/v1/messages", json={"to": phone, "body": "Winter offer: 2 for 1", "topic": "deals"})).json()
    alert = (await api.post("/v1/messages", json={"to": phone, "body": "Code 555111", "topic": "otp"})).json()
    for message_id in (offer["id"], alert["id"]):
        assert (await final(api, message_id))["status"] == "delivered"
    assert await runtime.retention.redact_due() == 0  # nothing is old yet

    async with runtime.db.transaction() as conn:  # age them past the retention
        old = runtime.now() - timedelta(days=runtime.settings.retention_days + 1)
        await conn.execute(schema.messages.update().values(created_at=old))
    assert await runtime.retention.redact_due() == 2
    assert await runtime.retention.redact_due() == 0  # once only
    code = (await api.get(f"/v1/messages/{alert['id']}")).json()
    assert code["body"] == "" and code["status"] == "delivered"
    redacted_offer = (await api.get(f"/v1/messages/{offer['id']}")).json()["body"]
    assert "2 for 1" not in redacted_offer and redacted_offer.startswith("sha256:")

    again = (await api.post("/v1/messages", json={"to": phone, "body": "Winter offer: 2 for 1", "topic": "deals"})).json()
    assert (await final(api, again["id"]))["reason"] == "duplicate_content"


async def test_erasing_waits_while_a_message_is_being_handed_to_the_carrier(api: httpx.AsyncClient, runtime: Runtime) -> None:
    made = (await api.post("/v1/contacts", json={"phone": "+14155550184"})).json()
    sent = (await api.post("/v1/messages", json={"to": "+14155550184", "body": "Your order shipped"})).json()
    await final(api, sent["id"])
    async with runtime.db.transaction() as conn:  # as if the dispatcher were mid-hand-off
        await conn.execute(schema.messages.update().where(schema.messages.c.id == sent["id"]).values(status="sending"))
    refused = await api.delete(f"/v1/contacts/{made['id']}")
    assert refused.status_code == 409 and sent["id"] in refused.json()["detail"]
    assert (await api.get(f"/v1/contacts/{made['id']}")).status_code == 200  # nothing half-erased
    assert (await api.get(f"/v1/messages/{sent['id']}")).status_code == 200


async def test_a_contact_changing_to_a_suppressed_number_gets_its_opt_outs(api: httpx.AsyncClient) -> None:
    gone = (await api.post("/v1/contacts", json={"phone": "+14155550185"})).json()
    await api.post(f"/v1/contacts/{gone['id']}/consents", json={"topic": "*", "action": "revoked"})
    assert (await api.delete(f"/v1/contacts/{gone['id']}")).status_code == 204
    other = (await api.post("/v1/contacts", json={"phone": "+14155550186"})).json()
    assert (await api.get(f"/v1/contacts/{other['id']}/consents")).json()["sms"]["opted_out_of_all"] is False
    moved = await api.patch(f"/v1/contacts/{other['id']}", json={"phone": "+14155550185"})
    assert moved.status_code == 200, moved.text
    view = (await api.get(f"/v1/contacts/{other['id']}/consents")).json()
    assert view["sms"]["opted_out_of_all"] is True and view["history"][-1]["source"] == "suppression"
