"""HTTP providers end to end: a Runtime whose project declares a Twilio and a Vonage channel,
each a fake provider on loopback answering its documented payloads, driven through the real
ASGI app. Texts go out through the provider; signed status callbacks and inbound texts come
back through /hooks/{channel}/{kind}, signed over the public URL; forged ones change nothing."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from empathic.api.app import create_app
from empathic.engine.project import SenderSettings
from empathic.engine.runtime import Runtime
from empathic.store import contacts
from empathic.store import messages as store
from empathic.store.records import MessageRow
from tests.channels import test_twilio as twilio_docs
from tests.channels import test_vonage as vonage_docs
from tests.channels.fakes import serve
from tests.conftest import API_KEY, POSTGRES_URL, eventually, make_settings, postgres_schema

PUBLIC = "https://hooks.acme.example"  # EMPATHIC_PUBLIC_URL: what providers call and sign
OPT_OUT_TEXT = SenderSettings.opt_out_text


@dataclass
class Twilio:
    """The `twilio-us` channel as its provider sees it: the texts it took, the calls it makes."""

    fake: twilio_docs.FakeTwilio
    name: str = "twilio-us"
    number: str = "+14155550100"
    person: str = "+14155550123"  # served by this channel (US)
    other: str = "+14155550124"

    def entry(self) -> str:
        return f"""
[[channels]]
type = "twilio"
name = "{self.name}"
countries = ["US", "CA"]
priority = 0
account_sid = "{twilio_docs.SID}"
auth_token = "{twilio_docs.TOKEN}"
from = "{self.number}"
tps = 50
base_url = "{self.fake.url}"
status_callback = "{PUBLIC}/hooks/{self.name}/status"
"""

    def sent(self) -> list[tuple[str, str, str]]:
        assert all(r["StatusCallback"] == f"{PUBLIC}/hooks/{self.name}/status" for r in self.fake.requests)
        return [(r["From"], r["To"], r["Body"]) for r in self.fake.requests]

    def carrier_id(self, body: str) -> str:
        return "SM" + hashlib.md5(body.encode()).hexdigest()  # the fake's sid

    def status(self, carrier_id: str, *, failed: bool = False, forged: bool = False) -> tuple[bytes, dict[str, str]]:
        params = dict(parse_qsl(twilio_docs.form("status_delivered.form").decode()))
        params |= {"MessageSid": carrier_id, "SmsSid": carrier_id, "From": self.number}
        if failed:
            params |= {"MessageStatus": "undelivered", "SmsStatus": "undelivered", "ErrorCode": "30003"}
        return self._signed("status", params, forged)

    def inbound(self, sender: str, text: str, *, forged: bool = False) -> tuple[bytes, dict[str, str]]:
        params = dict(parse_qsl(twilio_docs.form("inbound_sms.form").decode()))
        sid = "SM" + hashlib.md5(f"{sender}:{text}".encode()).hexdigest()
        params |= {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "From": sender, "To": self.number,
                   "Body": text}
        return self._signed("inbound", params, forged)

    def _signed(self, kind: str, params: dict[str, str], forged: bool) -> tuple[bytes, dict[str, str]]:
        token = "not-" + twilio_docs.TOKEN if forged else twilio_docs.TOKEN
        url = f"{PUBLIC}/hooks/{self.name}/{kind}"
        signature = twilio_docs.documented_signature(token, url, list(params.items()))
        return urlencode(params).encode(), {"Content-Type": "application/x-www-form-urlencoded",
                                             "X-Twilio-Signature": signature}


@dataclass
class Vonage:
    """The `vonage-uk` channel as its provider sees it. It also serves the US behind Twilio,
    so a US person's texts reach it only when that person texted this number (sticky)."""

    fake: vonage_docs.FakeVonage
    name: str = "vonage-uk"
    number: str = "+447400123400"
    person: str = "+447400123456"  # served by this channel (GB)
    other: str = "+447400123457"

    def entry(self) -> str:
        return f"""
[[channels]]
type = "vonage"
name = "{self.name}"
countries = ["GB", "US"]
priority = 1
api_key = "{vonage_docs.API_KEY}"
api_secret = "{vonage_docs.API_SECRET}"
signature_secret = "{vonage_docs.SIGNATURE_SECRET}"
signature_method = "sha256"
from = "{self.number}"
tps = 50
base_url = "{self.fake.url}"
"""

    def sent(self) -> list[tuple[str, str, str]]:
        return [(_e164(r["from"]), _e164(r["to"]), r["text"]) for r in self.fake.requests]

    def carrier_id(self, body: str) -> str:
        return next(r["client-ref"] for r in self.fake.requests if r["text"] == body)  # our own message id

    def status(self, carrier_id: str, *, failed: bool = False, forged: bool = False) -> tuple[bytes, dict[str, str]]:
        params = vonage_docs.fixture("dlr_delivered.json")["body"] | {"client-ref": carrier_id}
        if failed:
            params |= {"status": "failed", "err-code": "6"}
        return self._signed(params, forged)

    def inbound(self, sender: str, text: str, *, forged: bool = False) -> tuple[bytes, dict[str, str]]:
        params = vonage_docs.fixture("inbound_text.json")["body"] | {
            "msisdn": sender[1:], "to": self.number[1:], "text": text, "keyword": text.split()[0].upper(),
            "messageId": "0A" + hashlib.md5(f"{sender}:{text}".encode()).hexdigest()[:15].upper(),
        }
        return self._signed(params, forged)

    def _signed(self, params: dict[str, str], forged: bool) -> tuple[bytes, dict[str, str]]:
        secret = "not-" + vonage_docs.SIGNATURE_SECRET if forged else vonage_docs.SIGNATURE_SECRET
        params = params | {"timestamp": str(int(time.time()))}
        params |= {"sig": vonage_docs.documented_sig(secret, "sha256", params)}
        return json.dumps(params).encode(), {"Content-Type": "application/json"}


def _e164(number: str) -> str:
    return f"+{number}" if number.isdigit() else number


@dataclass
class World:
    rt: Runtime
    api: httpx.AsyncClient  # the business, with its API key
    provider: httpx.AsyncClient  # the providers' calls: no key
    sides: dict[str, Twilio | Vonage]

    async def call(self, channel: str, kind: str, call: tuple[bytes, dict[str, str]]) -> httpx.Response:
        body, headers = call
        return await self.provider.post(f"/hooks/{channel}/{kind}", content=body, headers=headers)

    async def send(self, to: str, body: str) -> str:
        accepted = await self.api.post("/v1/messages", json={"to": to, "body": body})
        assert accepted.status_code == 202, accepted.text
        return accepted.json()["id"]

    async def message(self, message_id: str) -> MessageRow:
        async with self.rt.db.transaction() as conn:
            row = await store.get(conn, self.rt.workspace_id, message_id)
        assert row is not None
        return row

    async def settled(self, message_id: str, status: str) -> MessageRow:
        async def reached() -> MessageRow | None:
            row = await self.message(message_id)
            return row if row.status == status else None

        return await eventually(reached, timeout=5)

    async def to_person(self, phone: str) -> list[dict[str, Any]]:
        listed = await self.api.get("/v1/messages", params={"direction": "outbound", "limit": 500})
        return [m for m in listed.json()["data"] if m["to"] == phone]


@pytest.fixture(params=["sqlite", "postgresql"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        twilio = Twilio(twilio_docs.FakeTwilio())
        vonage = Vonage(vonage_docs.FakeVonage())
        for side in (twilio, vonage):
            side.fake.url = await stack.enter_async_context(serve(side.fake.app))
        project = tmp_path / "project"
        project.mkdir()
        (project / "empathic.toml").write_text(
            '[sender]\nname = "Acme"\nnumber = "+18005550100"\n' + twilio.entry() + vonage.entry()
            + '\n[[channels]]\ntype = "simulator"\nname = "sim"\npriority = 9\n',
            encoding="utf-8",
        )
        database: dict[str, Any] = {}
        if request.param == "postgresql":
            database = {"database_url": POSTGRES_URL,
                        "database_schema": await stack.enter_async_context(postgres_schema(migrated=True))}
        rt = Runtime(make_settings(tmp_path, project_dir=project, public_url=PUBLIC, **database))
        await rt.start()
        stack.push_async_callback(rt.stop)
        transport = httpx.ASGITransport(app=create_app(rt))  # the fixture runs the runtime, not the lifespan
        api = await stack.enter_async_context(httpx.AsyncClient(
            transport=transport, base_url="https://empathic.test", headers={"Authorization": f"Bearer {API_KEY}"}))
        provider = await stack.enter_async_context(httpx.AsyncClient(transport=transport,
                                                                     base_url="https://empathic.test"))
        yield World(rt, api, provider, {twilio.name: twilio, vonage.name: vonage})


@pytest.mark.parametrize("channel", ["twilio-us", "vonage-uk"])
async def test_a_text_goes_out_through_the_provider_and_its_status_callbacks_settle_it(
    world: World, channel: str
) -> None:
    side = world.sides[channel]
    ok = await world.send(side.person, "Your order shipped")
    late = await world.send(side.other, "Your order is late")
    sent = {ok: await world.settled(ok, "sent"), late: await world.settled(late, "sent")}
    assert sorted(side.sent()) == sorted([(side.number, side.person, "Your order shipped"),
                                          (side.number, side.other, "Your order is late")])
    assert {row.channel for row in sent.values()} == {channel}
    assert sent[ok].carrier_id == side.carrier_id("Your order shipped")
    assert sent[late].carrier_id == side.carrier_id("Your order is late")
    other = next(s for name, s in world.sides.items() if name != channel)
    assert other.fake.requests == []  # routing by country: nothing went the other way

    forged = await world.call(channel, "status", side.status(sent[ok].carrier_id, forged=True))
    assert forged.status_code == 403
    assert (await world.message(ok)).status == "sent"

    delivered = await world.call(channel, "status", side.status(sent[ok].carrier_id))
    assert delivered.status_code in (200, 204), delivered.text
    assert (await world.settled(ok, "delivered")).reason == "carrier_receipt"
    view = (await world.api.get(f"/v1/messages/{ok}")).json()
    assert [e["status"] for e in view["events"]][-2:] == ["sent", "delivered"]

    failed = await world.call(channel, "status", side.status(sent[late].carrier_id, failed=True))
    assert failed.status_code in (200, 204), failed.text
    code = "30003" if channel == "twilio-us" else "6"
    assert (await world.settled(late, "undelivered")).reason == f"carrier_error_{code}"


@pytest.mark.parametrize(("channel", "person"), [
    ("twilio-us", "+14155550131"),
    # A US number: routing alone would answer on Twilio; having texted Vonage's number, the
    # person hears back from that number.
    ("vonage-uk", "+14155550132"),
])
async def test_a_signed_inbound_is_received_and_stop_is_confirmed_on_the_same_channel(
    world: World, channel: str, person: str
) -> None:
    side = world.sides[channel]
    forged = await world.call(channel, "inbound", side.inbound(person, "Hello?", forged=True))
    assert forged.status_code == 403
    assert (await world.api.get("/v1/messages", params={"status": "received"})).json()["data"] == []

    hello = await world.call(channel, "inbound", side.inbound(person, "Hello, is my order on its way?"))
    assert hello.status_code in (200, 204), hello.text
    [received] = (await world.api.get("/v1/messages", params={"status": "received"})).json()["data"]
    assert (received["from"], received["to"], received["body"], received["channel"]) == (
        person, side.number, "Hello, is my order on its way?", channel)

    stop = await world.call(channel, "inbound", side.inbound(person, "STOP"))
    assert stop.status_code in (200, 204), stop.text
    consents = (await world.api.get(f"/v1/contacts/{received['contact_id']}/consents")).json()
    assert consents["history"][-1] | {"at": None, "evidence": None} == {
        "topic": "*", "channel": "sms", "action": "revoked", "source": "keyword",
        "actor": f"contact:{received['contact_id']}", "evidence": None, "at": None,
    }
    [confirmation] = await world.to_person(person)
    assert (confirmation["topic"], confirmation["body"], confirmation["channel"]) == (
        "compliance", OPT_OUT_TEXT, channel)
    async with world.rt.db.transaction() as conn:
        contact = await contacts.get(conn, world.rt.workspace_id, received["contact_id"])
    assert contact is not None and contact.channel == channel  # sticky: the channel they texted
    await world.settled(confirmation["id"], "sent")
    assert side.sent() == [(side.number, person, OPT_OUT_TEXT)]

    # The provider's retry of that STOP, or another one, confirms nothing; texts to them are blocked.
    for call in (side.inbound(person, "STOP"), side.inbound(person, "Stop")):
        assert (await world.call(channel, "inbound", call)).status_code in (200, 204)
    assert len((await world.api.get("/v1/messages", params={"status": "received"})).json()["data"]) == 3
    after = await world.send(person, "Your order shipped")
    assert (await world.settled(after, "blocked")).reason == "opted_out"
    assert len(await world.to_person(person)) == 2
    assert len(side.sent()) == 1


async def test_only_channels_that_take_webhooks_have_hooks(world: World) -> None:
    twilio = world.sides["twilio-us"]
    for path in ("/hooks/nope/status", "/hooks/nope/inbound", "/hooks/sim/inbound", "/hooks/sim/status",
                 "/hooks/twilio-us/whatever"):
        body, headers = twilio.inbound("+14155550141", "Hello")
        answer = await world.provider.post(path, content=body, headers=headers)
        assert answer.status_code == 404, path
    assert (await world.api.get("/v1/messages", params={"status": "received"})).json()["data"] == []
