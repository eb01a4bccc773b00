"""Double opt-in for marketing, and opt-outs understood in the person's own words and language."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from empathic.core.consent import ConsentAction, ConsentEntry, ConsentState
from empathic.understand.keywords import match_topic_opt_in
from tests.conftest import daytime_zone, eventually
from tests.integration.test_replies import final_status, phone_texts, text_from_phone


async def contact(api: httpx.AsyncClient, phone: str) -> str:
    made = await api.post("/v1/contacts", json={"phone": phone, "timezone": daytime_zone()})
    assert made.status_code == 201, made.text
    return made.json()["id"]


async def texts_at_least(api: httpx.AsyncClient, phone: str, count: int) -> list[str]:
    async def enough() -> list[str] | None:
        texts = await phone_texts(api, phone)
        return texts if len(texts) >= count else None

    return await eventually(enough)


async def consents(api: httpx.AsyncClient, contact_id: str) -> dict:
    return (await api.get(f"/v1/contacts/{contact_id}/consents")).json()


async def test_an_api_subscription_counts_only_after_a_yes_in_the_persons_words(api: httpx.AsyncClient) -> None:
    phone = "+14155550210"
    contact_id = await contact(api, phone)
    asked = await api.post(f"/v1/contacts/{contact_id}/consents", json={"topic": "deals", "action": "granted", "evidence": "checkout"})
    assert asked.status_code == 201, asked.text
    assert asked.json()["topics"]["deals"]["sms"] == "requested"
    (request,) = await texts_at_least(api, phone, 1)
    assert "reply YES" in request and "deals" in request

    early = (await api.post("/v1/messages", json={"to": phone, "body": "Flash sale", "topic": "deals"})).json()
    assert (await final_status(api, early["id"]))["reason"] == "no_consent"

    await text_from_phone(api, "Sí, claro 👍", phone)
    texts = await texts_at_least(api, phone, 2)
    assert "subscribed to deals" in texts[1]
    view = await consents(api, contact_id)
    assert view["topics"]["deals"]["sms"] == "granted"
    assert [(h["action"], h["source"]) for h in view["history"]] == [("requested", "api"), ("granted", "reply")]
    offer = (await api.post("/v1/messages", json={"to": phone, "body": "Winter sale", "topic": "deals"})).json()
    assert (await final_status(api, offer["id"]))["status"] == "delivered"
    threads = (await api.get("/v1/inbox")).json()["data"]
    assert not [t for t in threads if t["contact"]["id"] == contact_id]  # handled, not left for a person


async def test_start_topic_by_text_asks_first_and_a_no_lets_it_lapse(api: httpx.AsyncClient) -> None:
    phone = "+14155550211"
    contact_id = await contact(api, phone)
    await text_from_phone(api, "START DEALS", phone)
    (request,) = await texts_at_least(api, phone, 1)
    assert "reply YES" in request
    assert (await consents(api, contact_id))["topics"]["deals"]["sms"] == "requested"

    await text_from_phone(api, "nah thanks", phone)
    await asyncio.sleep(0.3)
    assert len(await phone_texts(api, phone)) == 1  # no reply to a no
    assert (await consents(api, contact_id))["topics"]["deals"]["sms"] == "requested"

    await text_from_phone(api, "join deals", phone)  # asks again; this time yes
    await texts_at_least(api, phone, 2)
    await text_from_phone(api, "ok!!", phone)
    texts = await texts_at_least(api, phone, 3)
    assert "subscribed to deals" in texts[2]
    history = (await consents(api, contact_id))["history"]
    assert [(h["action"], h["source"]) for h in history] == [
        ("requested", "keyword"), ("requested", "keyword"), ("granted", "reply"),
    ]


async def test_a_yes_to_something_else_is_never_taken_as_consent(api: httpx.AsyncClient) -> None:
    phone = "+14155550212"
    contact_id = await contact(api, phone)
    await api.post(f"/v1/contacts/{contact_id}/consents", json={"topic": "deals", "action": "requested"})
    await texts_at_least(api, phone, 1)
    other = (await api.post("/v1/messages", json={"to": phone, "body": "Is 3pm tomorrow ok for delivery?"})).json()
    await final_status(api, other["id"])
    await text_from_phone(api, "yes", phone)
    async def thread() -> list:
        return [t for t in (await api.get("/v1/inbox")).json()["data"] if t["contact"]["id"] == contact_id]

    assert await eventually(thread)  # the yes answers the delivery question: a person sees it
    assert (await consents(api, contact_id))["topics"]["deals"]["sms"] == "requested"


async def test_subscription_requests_need_a_marketing_topic(api: httpx.AsyncClient) -> None:
    contact_id = await contact(api, "+14155550213")
    response = await api.post(f"/v1/contacts/{contact_id}/consents", json={"topic": "transactional", "action": "requested"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "action"


@pytest.mark.parametrize(
    ("phone", "text"),
    [
        ("+14155550220", "stop texting me please"),
        ("+14155550221", "no me manden más mensajes"),
        ("+14155550222", "arrêtez de m'envoyer des SMS"),
        ("+14155550223", "bitte keine SMS mehr"),
        ("+14155550224", "não quero mais receber mensagens"),
        ("+14155550225", "non voglio più ricevere messaggi"),
    ],
)
async def test_an_opt_out_in_any_supported_language_is_honoured_at_once(api: httpx.AsyncClient, phone: str, text: str) -> None:
    contact_id = await contact(api, phone)
    await api.post(f"/v1/contacts/{contact_id}/consents", json={"topic": "deals", "action": "granted", "source": "import"})
    await text_from_phone(api, text, phone)
    (confirmation,) = await texts_at_least(api, phone, 1)
    assert "unsubscribed" in confirmation
    view = await consents(api, contact_id)
    assert view["sms"]["opted_out_of_all"] is True
    assert (view["history"][-1]["action"], view["history"][-1]["source"]) == ("revoked", "reply")
    offer = (await api.post("/v1/messages", json={"to": phone, "body": "Deal", "topic": "deals"})).json()
    assert (await final_status(api, offer["id"]))["reason"] == "opted_out"
    await text_from_phone(api, text, phone)  # said twice: still one confirmation
    await asyncio.sleep(0.3)
    assert len(await phone_texts(api, phone)) == 1


async def test_an_ordinary_question_is_not_an_opt_out(api: httpx.AsyncClient) -> None:
    phone = "+14155550226"
    contact_id = await contact(api, phone)
    await text_from_phone(api, "where is my parcel?", phone)
    async def thread() -> list:
        return [t for t in (await api.get("/v1/inbox")).json()["data"] if t["contact"]["id"] == contact_id]

    assert await eventually(thread)
    assert (await consents(api, contact_id))["sms"]["opted_out_of_all"] is False


def test_pending_requests_lapse_and_are_cleared_by_an_answer_or_a_stop() -> None:
    at = datetime(2026, 11, 23, 12, tzinfo=UTC)
    asked = [ConsentEntry("deals", "sms", ConsentAction.REQUESTED, at), ConsentEntry("news", "sms", ConsentAction.REQUESTED, at + timedelta(hours=1))]
    state = ConsentState.fold(asked)
    assert state.pending("sms", at + timedelta(hours=2), timedelta(hours=48)) == ["news", "deals"]
    assert state.pending("sms", at + timedelta(hours=48, minutes=30), timedelta(hours=48)) == ["news"]
    assert not state.granted("deals", "sms") and not state.opted_out("deals", "sms")
    answered = ConsentState.fold([*asked, ConsentEntry("deals", "sms", ConsentAction.GRANTED, at)])
    assert answered.pending("sms", at, timedelta(hours=48)) == ["news"] and answered.granted("deals", "sms")
    stopped = ConsentState.fold([*asked, ConsentEntry("*", "sms", ConsentAction.REVOKED, at)])
    assert stopped.pending("sms", at, timedelta(hours=48)) == []


def test_topic_subscription_keywords() -> None:
    topics = ["deals", "news"]
    assert [match_topic_opt_in(t, topics) for t in ("START DEALS", "join news!", "Subscribe Deals", "start", "start gossip", "stop deals")] == [
        "deals", "news", "deals", None, None, None,
    ]
