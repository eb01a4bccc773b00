"""Preferences over the API and the signed preference page, and the gate applying them."""

from __future__ import annotations

import re

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from empathic.core import links
from empathic.engine.runtime import Runtime
from empathic.store import privacy
from tests.conftest import daytime_zone, subscribe
from tests.integration.test_consent_api import final


async def test_preferences_round_trip_and_bad_input_names_the_field(api: httpx.AsyncClient) -> None:
    contact_id = await subscribe(api, "+14155550190")
    url = f"/v1/contacts/{contact_id}/preferences"
    empty = (await api.get(url)).json()
    assert empty == {"contact_id": contact_id, "channels": {}, "email_hours": None, "quiet_hours": None,
                     "language": None, "max_marketing_per_week": None}
    wanted = {"channels": {"deals": "email"}, "quiet_hours": {"from": "22:00", "to": "07:30"}, "language": "fr"}
    saved = await api.put(url, json=wanted)
    assert saved.status_code == 200, saved.text
    assert (await api.get(url)).json()["quiet_hours"] == {"days": "every_day", "from": "22:00", "to": "07:30"}
    for payload, field in [
        ({"channels": {"gossip": "sms"}}, "channels.gossip"),
        ({"quiet_hours": {"from": "9am", "to": "10:00"}}, "quiet_hours.from"),
        ({"max_marketing_per_week": -1}, "max_marketing_per_week"),
        ({"volume": "loud"}, "volume"),
    ]:
        response = await api.put(url, json=payload)
        assert response.status_code == 422, payload
        assert response.json()["errors"][0]["field"] == field
    assert (await api.get(url)).json()["language"] == "fr"  # a rejected change changes nothing
    assert (await api.get("/v1/contacts/ct_nobody/preferences")).status_code == 404


async def test_the_gate_applies_preferences_to_the_next_message(api: httpx.AsyncClient) -> None:
    phone = "+14155550191"
    contact_id = await subscribe(api, phone)
    await api.put(f"/v1/contacts/{contact_id}/preferences", json={"channels": {"deals": "email"}})
    offer = (await api.post("/v1/messages", json={"to": phone, "body": "Half price", "topic": "deals"})).json()
    assert (await final(api, offer["id"]))["reason"] == "channel_preference"

    # Quiet all day but the small hours: a transactional alert now waits for the person's own hours.
    now_local = datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo(daytime_zone()))
    start = (now_local - timedelta(hours=1)).strftime("%H:%M")
    end = (now_local + timedelta(hours=2)).strftime("%H:%M")
    await api.put(f"/v1/contacts/{contact_id}/preferences", json={"quiet_hours": {"from": start, "to": end}})
    alert = (await api.post("/v1/messages", json={"to": phone, "body": "Your parcel is near", "topic": "transactional"})).json()
    view = await final(api, alert["id"])
    assert (view["status"], view["reason"]) == ("deferred", "contact_quiet_hours")
    code = (await api.post("/v1/messages", json={"to": phone, "body": "Code 424242", "topic": "otp"})).json()
    assert (await final(api, code["id"]))["status"] == "delivered"


async def page_link(api: httpx.AsyncClient, contact_id: str) -> str:
    made = await api.post(f"/v1/contacts/{contact_id}/preference-link", json={"valid_days": 7})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["url"].endswith(f"/p/{body['token']}") and "+1415" not in body["url"]
    return "/p/" + body["token"]


async def test_the_page_saves_preferences_and_consent_with_a_ledger_record(api: httpx.AsyncClient) -> None:
    contact_id = await subscribe(api, "+14155550192")
    path = await page_link(api, contact_id)
    shown = await api.get(path, headers={"Authorization": ""})
    assert shown.status_code == 200 and "number ending 0192" in shown.text and "+14155550192" not in shown.text
    assert 'name="receive:deals" checked' in shown.text

    form_token = re.search(r'name="form_token" value="([^"]+)"', shown.text).group(1)  # type: ignore[union-attr]
    form = {"form_token": form_token, "action": "save", "channel:deals": "both", "quiet_on": "on", "quiet_from": "21:00", "quiet_to": "08:30",
            "language": "de", "max_marketing_per_week": "2", "receive:transactional": "on"}
    saved = await api.post(path, data=form, headers={"Authorization": ""})
    assert saved.status_code == 200 and "Saved" in saved.text
    prefs = (await api.get(f"/v1/contacts/{contact_id}/preferences")).json()
    assert prefs["channels"] == {"deals": "both"} and prefs["language"] == "de" and prefs["max_marketing_per_week"] == 2
    assert prefs["quiet_hours"] == {"days": "every_day", "from": "21:00", "to": "08:30"}
    consents = (await api.get(f"/v1/contacts/{contact_id}/consents")).json()
    # every ticked topic but transactional was unticked (deals, conversational …): each revoked,
    # recorded as the person's own web form choice; unticked ones had nothing to revoke.
    ticked = set(re.findall(r'name="receive:([^"]+)" checked', shown.text))
    revoked = {h["topic"] for h in consents["history"] if h["action"] == "revoked"}
    assert {"deals", "conversational", "transactional"} <= ticked
    assert revoked == ticked - {"transactional"}
    assert {(h["source"], h["evidence"]) for h in consents["history"][1:]} == {("web_form", "preference page")}

    bad = await api.post(path, data={**form, "quiet_to": "21:00"}, headers={"Authorization": ""})
    assert bad.status_code == 400 and "Quiet hours" in bad.text and "Nothing was changed" in bad.text
    assert (await api.get(f"/v1/contacts/{contact_id}/preferences")).json()["language"] == "de"

    stop = await api.post(path, data={"action": "stop_all", "form_token": form_token}, headers={"Authorization": ""})
    assert stop.status_code == 200
    assert (await api.get(f"/v1/contacts/{contact_id}/consents")).json()["sms"]["opted_out_of_all"] is True


async def test_forged_expired_and_stale_links_are_refused(api: httpx.AsyncClient, runtime: Runtime) -> None:
    contact_id = await subscribe(api, "+14155550193")
    path = await page_link(api, contact_id)
    token = path.removeprefix("/p/")
    other = (await api.post("/v1/contacts", json={"phone": "+14155550194"})).json()["id"]
    forged = token.replace(contact_id, other)
    async with runtime.db.transaction() as conn:
        key = await privacy.link_key(conn, runtime.workspace_id)
    expired = links.sign(key, runtime.workspace_id, contact_id, runtime.now() - timedelta(seconds=1))
    for bad, words in [(forged, "not valid"), (expired, "expired"), ("nonsense", "incomplete"),
                       ("ws_nope.ct_x.9999999999.abc", "not valid"), (token[:-2], "not valid")]:
        response = await api.get(f"/p/{bad}", headers={"Authorization": ""})
        assert response.status_code == 404 and words in response.text, (bad, response.text)
        posted = await api.post(f"/p/{bad}", data={"action": "stop_all"}, headers={"Authorization": ""})
        assert posted.status_code == 404
    assert (await api.get(f"/v1/contacts/{contact_id}/consents")).json()["sms"]["opted_out_of_all"] is False
    assert (await api.delete(f"/v1/contacts/{contact_id}")).status_code == 204
    assert "nothing on file" in (await api.get(path, headers={"Authorization": ""})).text


def test_link_tokens_resist_tampering() -> None:
    key = b"k" * 32
    at = datetime(2026, 11, 23, tzinfo=UTC)
    token = links.sign(key, "ws_a", "ct_b", at + timedelta(days=1))
    assert links.verify(key, token, at).contact_id == "ct_b"
    with pytest.raises(links.BadLink):
        links.verify(b"x" * 32, token, at)
    with pytest.raises(links.BadLink):
        links.verify(key, token, at + timedelta(days=2))
    with pytest.raises(ValueError):
        links.sign(key, "ws.a", "ct_b", at)
