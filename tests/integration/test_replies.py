"""Replies from phones: opt-out keywords, HELP, START, and the inbox for everything else."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import eventually, subscribe

PHONE = "+14155550140"


async def phone_texts(api: httpx.AsyncClient, phone: str = PHONE) -> list[str]:
    messages = (await api.get(f"/v1/simulator/phones/{phone}/messages")).json()["messages"]
    return [m["body"] for m in messages if m["direction"] == "received"]


async def final_status(api: httpx.AsyncClient, message_id: str) -> dict:
    async def settled() -> dict | None:
        view = (await api.get(f"/v1/messages/{message_id}")).json()
        return view if view["status"] in ("delivered", "blocked", "failed", "undelivered") else None

    return await eventually(settled)


async def text_from_phone(api: httpx.AsyncClient, body: str, phone: str = PHONE) -> str:
    response = await api.post(f"/v1/simulator/phones/{phone}/messages", json={"body": body})
    assert response.status_code == 202
    return response.json()["message_id"]


async def test_stop_blocks_marketing_with_one_confirmation(api: httpx.AsyncClient) -> None:
    await subscribe(api, PHONE, "deals")
    first = (await api.post("/v1/messages", json={"to": PHONE, "body": "Deal: 20% off", "topic": "deals"})).json()
    assert (await final_status(api, first["id"]))["status"] == "delivered"

    await text_from_phone(api, "  Stop! ")
    texts = await eventually(lambda: _after(api, 2))
    assert "unsubscribed" in texts[1]

    blocked = (await api.post("/v1/messages", json={"to": PHONE, "body": "Another deal", "topic": "deals"})).json()
    view = await final_status(api, blocked["id"])
    assert view["status"] == "blocked" and view["reason"] == "opted_out"
    # Plain STOP stops every non-essential topic, transactional too.
    alert = (await api.post("/v1/messages", json={"to": PHONE, "body": "Your order shipped"})).json()
    assert (await final_status(api, alert["id"]))["status"] == "blocked"

    # A second STOP changes nothing, so it gets no second confirmation.
    await text_from_phone(api, "STOP")
    await asyncio.sleep(0.3)
    assert len(await phone_texts(api)) == 2

    contact_id = view["contact_id"]
    consents = (await api.get(f"/v1/contacts/{contact_id}/consents")).json()
    assert consents["sms"]["opted_out_of_all"] is True
    granted, entry = consents["history"]
    assert granted["action"] == "granted" and granted["source"] == "web_form" and granted["topic"] == "deals"
    assert entry["action"] == "revoked" and entry["source"] == "keyword" and entry["topic"] == "*"
    assert entry["evidence"].startswith("msg_") and entry["actor"] == f"contact:{contact_id}"


async def _after(api: httpx.AsyncClient, count: int) -> list[str] | None:
    texts = await phone_texts(api)
    return texts if len(texts) >= count else None


async def test_every_opt_out_word_and_shape_is_honoured(api: httpx.AsyncClient) -> None:
    words = ["STOP", "stopall", "Unsubscribe", "cancel", "END.", "quit!", "  revoke ", "OptOut", "opt-out", "ＳＴＯＰ"]
    for i, word in enumerate(words):
        phone = f"+1415555{2000 + i:04d}"
        inbound_id = await text_from_phone(api, word, phone)
        inbound = (await api.get(f"/v1/messages/{inbound_id}")).json()
        consents = (await api.get(f"/v1/contacts/{inbound['contact_id']}/consents")).json()
        assert consents["sms"]["opted_out_of_all"], word
        texts = await eventually(lambda p=phone: _texts_at_least(api, p, 1))
        assert len(texts) == 1 and "unsubscribed" in texts[0], word


async def _texts_at_least(api: httpx.AsyncClient, phone: str, n: int) -> list[str] | None:
    texts = await phone_texts(api, phone)
    return texts if len(texts) >= n else None


async def test_start_opts_back_in_and_help_answers(api: httpx.AsyncClient) -> None:
    await subscribe(api, PHONE, "deals")
    await text_from_phone(api, "stop")
    await text_from_phone(api, "Start")
    await text_from_phone(api, "help")
    texts = await eventually(lambda: _after(api, 3))
    assert "unsubscribed" in texts[0] and "subscribed" in texts[1] and "Reply STOP" in texts[2]
    deal = (await api.post("/v1/messages", json={"to": PHONE, "body": "Back in stock", "topic": "deals"})).json()
    assert (await final_status(api, deal["id"]))["status"] == "delivered"
    contact_id = deal["contact_id"]
    history = (await api.get(f"/v1/contacts/{contact_id}/consents")).json()["history"]
    assert [(h["topic"], h["action"]) for h in history] == [("deals", "granted"), ("*", "revoked"), ("*", "granted")]


async def test_other_replies_land_in_the_inbox_and_a_person_answers(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/inbox")).json()["data"] == []
    inbound_id = await text_from_phone(api, "Will someone be home? I'm out till 6")
    threads = (await api.get("/v1/inbox")).json()["data"]
    assert len(threads) == 1
    thread = threads[0]
    assert thread["last_message"]["id"] == inbound_id and thread["contact"]["phone"] == PHONE

    reply = await api.post(f"/v1/inbox/{thread['id']}/messages", json={"body": "No problem, we'll leave it next door."})
    assert reply.status_code == 202
    assert reply.json()["in_reply_to"] == inbound_id  # a reply: quiet hours and caps do not hold it
    assert (await final_status(api, reply.json()["id"]))["status"] == "delivered"
    assert await phone_texts(api) == ["No problem, we'll leave it next door."]

    transcript = (await api.get(f"/v1/inbox/{thread['id']}")).json()["messages"]
    assert [m["direction"] for m in transcript] == ["inbound", "outbound"]

    closed = (await api.post(f"/v1/inbox/{thread['id']}/close")).json()
    assert closed["status"] == "closed"
    assert (await api.get("/v1/inbox")).json()["data"] == []
    assert len((await api.get("/v1/inbox", params={"status": "closed"})).json()["data"]) == 1
    # A new reply reopens the thread.
    await text_from_phone(api, "thanks!")
    assert len((await api.get("/v1/inbox")).json()["data"]) == 1


async def test_keywords_do_not_open_inbox_threads(api: httpx.AsyncClient) -> None:
    await text_from_phone(api, "HELP")
    assert (await api.get("/v1/inbox")).json()["data"] == []


async def test_duplicate_inbound_from_carrier_is_stored_once(runtime, api: httpx.AsyncClient) -> None:
    from datetime import UTC, datetime

    from empathic.channels.base import Inbound

    message = Inbound("simulator", "carrier-dup-1", PHONE, runtime.channel.sender, "STOP", datetime.now(UTC))
    first = await runtime.on_inbound(message)
    second = await runtime.on_inbound(message)
    assert first == second
    inbound = (await api.get("/v1/messages", params={"direction": "inbound"})).json()["data"]
    assert len(inbound) == 1
    await asyncio.sleep(0.3)
    assert len(await phone_texts(api)) == 1  # one confirmation


async def test_stop_from_a_short_code_is_recorded_without_a_reply(runtime, api: httpx.AsyncClient) -> None:
    # Short codes and alphanumeric senders are not E.164: the message and the opt-out are
    # kept, and no confirmation is attempted (which would otherwise undo the whole inbound).
    from datetime import UTC, datetime

    from empathic.channels.base import Inbound

    for n, (sender, body) in enumerate([("72345", "STOP"), ("ACME", "HELP"), ("72345", "hello?")]):
        await runtime.on_inbound(Inbound("simulator", f"sc-{n}", sender, runtime.channel.sender, body, datetime.now(UTC)))
    inbound = (await api.get("/v1/messages", params={"direction": "inbound"})).json()["data"]
    assert sorted(m["body"] for m in inbound) == ["HELP", "STOP", "hello?"]
    outbound = (await api.get("/v1/messages", params={"direction": "outbound"})).json()["data"]
    assert outbound == []
    contact_id = next(m["contact_id"] for m in inbound if m["body"] == "STOP")
    consents = (await api.get(f"/v1/contacts/{contact_id}/consents")).json()
    assert [e["action"] for e in consents["history"]] == ["revoked"]
    assert len((await api.get("/v1/inbox")).json()["data"]) == 1


async def test_stop_with_a_topic_narrows_to_that_topic(api: httpx.AsyncClient) -> None:
    phone = "+14155550145"
    contact_id = await subscribe(api, phone, "deals")
    await text_from_phone(api, "Stop deals", phone)
    texts = await eventually(lambda: _texts_at_least(api, phone, 1))
    assert "deals" in texts[0] and "STOP" in texts[0]
    deal = (await api.post("/v1/messages", json={"to": phone, "body": "Flash sale", "topic": "deals"})).json()
    assert (await final_status(api, deal["id"]))["reason"] == "opted_out"
    alert = (await api.post("/v1/messages", json={"to": phone, "body": "Your parcel is out"})).json()
    assert (await final_status(api, alert["id"]))["status"] == "delivered"  # other topics continue
    consents = (await api.get(f"/v1/contacts/{contact_id}/consents")).json()
    assert consents["topics"]["deals"]["sms"] == "revoked" and not consents["sms"]["opted_out_of_all"]
    assert (await api.get("/v1/inbox")).json()["data"] == []  # handled, not a question for a person
    await text_from_phone(api, "STOP DEALS", phone)  # again: nothing changes, no second text
    await asyncio.sleep(0.3)
    assert len(await phone_texts(api, phone)) == 2
