"""Email beside and instead of texts, through the whole engine on both backends with a real
SMTP server (aiosmtpd on loopback): a person's `both` and `email` preferences, contacts
without a number, and the one email a text becomes when it fails for good (`[fallback]`
topics and `fallback: email` flow steps), never for a retried text, a topic without
fallback, or a person whose consent or preference says no, and never twice."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from empathic.api.app import create_app
from empathic.core.clock import ManualClock
from empathic.engine import fallback, fallback_timer
from empathic.engine.dispatcher import DispatchSettings
from empathic.engine.retention import Retention
from empathic.engine.runtime import Runtime
from empathic.smsc.server import Smsc, SmscSettings
from empathic.store import schema, timers
from tests.channels.test_smtp import Server
from tests.conftest import API_KEY, POSTGRES_URL, daytime_zone, eventually, make_settings, postgres_schema
from tests.integration.test_smpp_engine import smpp_entry

SMTP = """
[[channels]]
type = "smtp"
name = "mail"
host = "127.0.0.1"
port = SMTP_PORT
security = "none"
from = "Acme <texts@acme.example>"
"""

PROJECT = """[sender]
name = "Acme"
number = "+18005550100"

[topics]
orders = "transactional"
alerts = "transactional"
deals = "marketing"

[fallback]
orders = "email"
deals = "email"

CHANNELS

[[triggers]]
name = "shipped"
event = "order.shipped"
template = "shipped"
topic = "orders"

[[triggers]]
name = "reminder"
event = "order.reminder"
template = "reminder"
topic = "orders"

[[triggers]]
name = "alert"
event = "account.alert"
template = "alert"
topic = "alerts"

[[triggers]]
name = "offer"
event = "deal.live"
template = "offer"
topic = "deals"
"""

SIMULATOR = """
[[channels]]
type = "simulator"
name = "sim"
"""

TEMPLATES = {
    "shipped.txt": "Order {{ event.data.id }} shipped.",
    "shipped.email.toml": (
        'subject = "Order {{ event.data.id }} shipped"\n'
        "html = \"<p>Order <b>{{ event.data.id }}</b> shipped, {{ contact.attributes.name | default('friend') }}.</p>\"\n"
    ),
    "reminder.txt": "Order {{ event.data.id }} is waiting for you.",  # no email variant
    "alert.txt": "Security alert: {{ event.data.what }}.",
    "alert.email.toml": 'subject = "Security alert"\n',
    "offer.txt": "{{ event.data.deal }} today only! Reply STOP DEALS to opt out.",
    "offer.email.toml": 'subject = "{{ event.data.deal }}"\n',
}

NOTICE = """flow: notice
trigger: {event: notice.ready}
topic: alerts
steps:
  - send:
      text: "Your document {{ event.data.doc }} is ready."
      fallback: email
      subject: "Document {{ event.data.doc }} is ready"
      html: "<p>Your document <b>{{ event.data.doc }}</b> is ready.</p>"
"""

CHECK_IN = """flow: check-in
trigger: {event: doc.check}
topic: orders
steps:
  - ask:
      text: "Did document {{ event.data.doc }} arrive? Reply YES or NO"
    expect: [{any: true}]
"""


@dataclass
class World:
    rt: Runtime
    api: httpx.AsyncClient
    smtp: Server

    def emails_to(self, address: str) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(r.content, policy=email.policy.default) for r in self.smtp.handler.to(address)]

    async def messages(self, contact_id: str) -> list[dict[str, Any]]:
        rows = (await self.api.get("/v1/messages", params={"contact_id": contact_id})).json()["data"]
        return sorted(rows, key=lambda m: m["id"])

    async def settled(self, contact_id: str, count: int) -> list[dict[str, Any]]:
        """The contact's `count` messages once none of them is still on its way (a text
        waits for its receipt; an email is done once the server took it)."""

        def moving(m: dict[str, Any]) -> bool:
            return m["status"] in ("queued", "deferred", "sending") or (m["status"] == "sent" and m["channel"] != "mail")

        async def done() -> list[dict[str, Any]] | None:
            rows = await self.messages(contact_id)
            return rows if len(rows) == count and not any(moving(m) for m in rows) else None

        return await eventually(done, timeout=20)

    async def quiet(self) -> None:
        """Let the loops finish anything due (a fallback timer fires within a second)."""
        await asyncio.sleep(1.2)
        await self.rt.scheduler.fire_due()
        await self.rt.dispatch_once()

    async def contact(self, phone: str | None, address: str | None, **extra: Any) -> str:
        made = await self.api.post("/v1/contacts", json={
            k: v for k, v in {"phone": phone, "email": address, "timezone": daytime_zone(), **extra}.items() if v
        })
        assert made.status_code == 201, made.text
        return made.json()["id"]

    async def event(self, kind: str, contact: dict[str, Any], **data: Any) -> dict[str, Any]:
        posted = await self.api.post("/v1/events", json={"type": kind, "contact": contact, "data": data})
        assert posted.status_code == 202, posted.text
        return posted.json()


def write_project(folder: Path, channels: str, smtp_port: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    toml = PROJECT.replace("CHANNELS", channels + SMTP).replace("SMTP_PORT", str(smtp_port))
    (folder / "empathic.toml").write_text(toml, encoding="utf-8")
    (folder / "templates").mkdir()
    for name, text in TEMPLATES.items():
        (folder / "templates" / name).write_text(text, encoding="utf-8")
    (folder / "flows").mkdir()
    (folder / "flows" / "notice.yaml").write_text(NOTICE, encoding="utf-8")
    (folder / "flows" / "check-in.yaml").write_text(CHECK_IN, encoding="utf-8")
    return folder


@asynccontextmanager
async def world(tmp_path: Path, backend: str, channels: str = SIMULATOR, **settings: Any) -> AsyncIterator[World]:
    smtp = Server()
    project = write_project(tmp_path / "project", channels, smtp.port)
    try:
        async with _database(backend) as database:
            rt = Runtime(make_settings(tmp_path, project_dir=project, **database, **settings))
            await rt.start()
            try:
                transport = httpx.ASGITransport(app=create_app(rt))
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://empathic.test", headers={"Authorization": f"Bearer {API_KEY}"}
                ) as api:
                    yield World(rt, api, smtp)
            finally:
                await rt.stop()
    finally:
        smtp.stop()


@asynccontextmanager
async def _database(backend: str) -> AsyncIterator[dict[str, Any]]:
    if backend == "sqlite":
        yield {}
        return
    async with postgres_schema(migrated=True) as schema_name:
        yield {"database_url": POSTGRES_URL, "database_schema": schema_name}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def w(tmp_path: Path, backend: str) -> AsyncIterator[World]:
    async with world(tmp_path, backend) as made:
        yield made


@pytest.fixture
def undelivered(w: World) -> Iterator[World]:
    """Every text the carrier takes comes back `undelivered` by its receipt."""
    assert w.rt.simulator is not None
    w.rt.simulator.configure(fail_share=1.0)
    yield w


async def fallback_rows(rt: Runtime) -> int:
    async with rt.db.transaction() as conn:
        return (await conn.execute(select(func.count()).select_from(schema.fallbacks))).scalar_one()


# -- tandem and preferences ------------------------------------------------------------------


async def test_both_sends_the_text_and_the_email(w: World) -> None:
    contact = await w.contact("+14155550101", "Ana@Example.com", attributes={"name": "Ana"})
    prefs = await w.api.put(f"/v1/contacts/{contact}/preferences", json={"channels": {"orders": "both"}})
    assert prefs.status_code == 200, prefs.text
    posted = await w.event("order.shipped", {"phone": "+14155550101"}, id="A-1")
    assert len(posted["messages"]) == 2
    text, mail = await w.settled(contact, 2)
    assert (text["channel"], text["status"], text["body"]) == ("sim", "delivered", "Order A-1 shipped.")
    assert (mail["channel"], mail["status"], mail["to"], mail["subject"]) == ("mail", "sent", "Ana@example.com", "Order A-1 shipped")
    (got,) = w.emails_to("Ana@example.com")
    assert got["Subject"] == "Order A-1 shipped"
    assert got.get_body(("plain",)).get_content().strip() == "Order A-1 shipped."
    assert "<b>A-1</b> shipped, Ana." in got.get_body(("html",)).get_content()
    assert await fallback_rows(w.rt) == 0  # the email went already: nothing to fall back to


async def test_an_email_preference_sends_the_email_instead(w: World) -> None:
    contact = await w.contact("+14155550102", "bo@example.com")
    await w.api.put(f"/v1/contacts/{contact}/preferences", json={"channels": {"orders": "email"}})
    await w.event("order.shipped", {"phone": "+14155550102"}, id="B-2")
    (mail,) = await w.settled(contact, 1)
    assert (mail["channel"], mail["status"], mail["subject"]) == ("mail", "sent", "Order B-2 shipped")
    assert len(w.emails_to("bo@example.com")) == 1
    # A template without an email variant: the text goes as before, and the gate holds it.
    await w.event("order.reminder", {"phone": "+14155550102"}, id="B-2")
    _, text = await w.settled(contact, 2)
    assert (text["channel"], text["status"], text["reason"]) == ("sim", "blocked", "channel_preference")


async def test_a_contact_without_a_number_gets_the_email_where_the_topic_falls_back(w: World) -> None:
    posted = await w.event("order.shipped", {"email": "cy@example.com"}, id="C-3")
    assert posted["skipped"] == []
    (mail,) = await w.settled(posted["contact_id"], 1)
    assert (mail["to"], mail["status"], mail["subject"]) == ("cy@example.com", "sent", "Order C-3 shipped")
    # alerts do not fall back: nothing can reach them
    alert = await w.event("account.alert", {"email": "cy@example.com"}, what="new login")
    assert alert["messages"] == [] and alert["skipped"] == [{"trigger": "alert", "reason": "contact_has_no_phone"}]
    # a flow whose texts may all go by email runs for them; one that asks does not
    notice = await w.event("notice.ready", {"email": "cy@example.com"}, doc="W-2")
    assert [r["status"] for r in notice["runs"]] == ["done"]
    check = await w.event("doc.check", {"email": "cy@example.com"}, doc="W-2")
    assert [r["status"] for r in check["runs"]] == ["skipped"]
    _, doc = await w.settled(posted["contact_id"], 2)
    assert (doc["subject"], doc["body"]) == ("Document W-2 is ready", "Your document W-2 is ready.")
    assert len(w.emails_to("cy@example.com")) == 2


# -- fallback of a text that fails for good --------------------------------------------------


async def test_an_undelivered_text_falls_back_to_exactly_one_email(undelivered: World) -> None:
    w = undelivered
    posted = await w.event("order.shipped", {"phone": "+14155550104", "email": "di@example.com"}, id="D-4")
    text, mail = await w.settled(posted["contact_id"], 2)
    assert (text["status"], text["reason"]) == ("undelivered", "carrier_error_001")
    assert (mail["channel"], mail["status"], mail["subject"], mail["body"]) == ("mail", "sent", "Order D-4 shipped", "Order D-4 shipped.")
    assert (mail["template"], mail["event_id"], mail["idempotency_key"]) == ("shipped", posted["id"], f"{text['id']}:fallback")
    # each names the other
    text_view = (await w.api.get(f"/v1/messages/{text['id']}")).json()
    mail_view = (await w.api.get(f"/v1/messages/{mail['id']}")).json()
    assert (text_view["fallback"], text_view["fallback_of"]) == (mail["id"], None)
    assert (mail_view["fallback"], mail_view["fallback_of"]) == (None, text["id"])
    (got,) = w.emails_to("di@example.com")
    assert "<b>D-4</b>" in got.get_body(("html",)).get_content()

    # The timer fires again (a crash after the email was written, a replay): still one email.
    async with w.rt.db.transaction() as conn:
        await timers.schedule(conn, [timers.Timer(fallback_timer.TIMER, text["id"], w.rt.now(), {}, w.rt.workspace_id)])
    await w.quiet()
    handler = fallback.EmailFallback(w.rt.project.fallback, w.rt.acceptance)
    async with w.rt.db.transaction() as conn:
        again = [timers.Timer(fallback_timer.TIMER, text["id"], w.rt.now(), {}, w.rt.workspace_id)] * 2
        assert await handler.fire(conn, again, w.rt.now()) == 0
    # Even with the link lost, the email's idempotency key gives back the same email.
    async with w.rt.db.transaction() as conn:
        await conn.execute(schema.fallbacks.update().values(email_id=None, subject="s", body="b"))
        await handler.fire(conn, again, w.rt.now())
    await w.quiet()
    assert len(await w.messages(posted["contact_id"])) == 2
    assert len(w.emails_to("di@example.com")) == 1
    assert (await w.api.get(f"/v1/messages/{text['id']}")).json()["fallback"] == mail["id"]


async def test_a_topic_without_fallback_does_not_fall_back(undelivered: World) -> None:
    w = undelivered
    posted = await w.event("account.alert", {"phone": "+14155550105", "email": "ed@example.com"}, what="new login")
    (text,) = await w.settled(posted["contact_id"], 1)
    assert text["status"] == "undelivered"
    await w.quiet()
    assert len(await w.messages(posted["contact_id"])) == 1
    assert await fallback_rows(w.rt) == 0 and w.smtp.handler.received == []


async def test_a_text_to_a_contact_without_an_email_has_nothing_to_fall_back_to(undelivered: World) -> None:
    w = undelivered
    posted = await w.event("order.shipped", {"phone": "+14155550106"}, id="F-6")
    (text,) = await w.settled(posted["contact_id"], 1)
    assert text["status"] == "undelivered"
    await w.quiet()
    assert len(await w.messages(posted["contact_id"])) == 1 and await fallback_rows(w.rt) == 0


async def test_consent_and_preferences_hold_the_fallback_email(undelivered: World) -> None:
    w = undelivered
    # withdrew email for orders: the fallback email is written, and the gate blocks it
    gus = await w.contact("+14155550107", "gus@example.com")
    revoked = await w.api.post(f"/v1/contacts/{gus}/consents", json={"topic": "orders", "channel": "email", "action": "revoked"})
    assert revoked.status_code == 201, revoked.text
    await w.event("order.shipped", {"phone": "+14155550107"}, id="G-7")
    text, mail = await w.settled(gus, 2)
    assert (text["status"], mail["status"], mail["reason"]) == ("undelivered", "blocked", "opted_out")
    # marketing: consent to texts is not consent to emails
    hal = await w.contact("+14155550108", "hal@example.com")
    await w.api.post(f"/v1/contacts/{hal}/consents",
                     json={"topic": "deals", "action": "granted", "source": "web_form", "evidence": "signup form"})
    await w.event("deal.live", {"phone": "+14155550108"}, deal="Mugs -20%")
    text, mail = await w.settled(hal, 2)
    assert (text["status"], mail["status"], mail["reason"]) == ("undelivered", "blocked", "no_consent")
    # asked for texts only on this topic
    ivy = await w.contact("+14155550109", "ivy@example.com")
    await w.api.put(f"/v1/contacts/{ivy}/preferences", json={"channels": {"orders": "sms"}})
    await w.event("order.shipped", {"phone": "+14155550109"}, id="I-9")
    text, mail = await w.settled(ivy, 2)
    assert (text["status"], mail["status"], mail["reason"]) == ("undelivered", "blocked", "channel_preference")
    assert w.smtp.handler.received == []


async def test_a_flow_step_with_fallback_email_falls_back(undelivered: World) -> None:
    w = undelivered
    posted = await w.event("notice.ready", {"phone": "+14155550110", "email": "jo@example.com"}, doc="J-10")
    text, mail = await w.settled(posted["contact_id"], 2)
    assert (text["status"], text["body"]) == ("undelivered", "Your document J-10 is ready.")
    assert (mail["status"], mail["subject"], mail["html"]) == ("sent", "Document J-10 is ready", "<p>Your document <b>J-10</b> is ready.</p>")
    assert (await w.api.get(f"/v1/messages/{mail['id']}")).json()["fallback_of"] == text["id"]
    assert len(w.emails_to("jo@example.com")) == 1
    # without an address the text is all there is
    alone = await w.event("notice.ready", {"phone": "+14155550111"}, doc="K-11")
    (only,) = await w.settled(alone["contact_id"], 1)
    assert only["status"] == "undelivered"
    await w.quiet()
    assert len(await w.messages(alone["contact_id"])) == 1


# -- over SMPP: refused by the carrier (failed) and throttled (retried) -----------------------


async def test_a_text_the_carrier_refuses_fails_and_falls_back(tmp_path: Path, backend: str) -> None:
    async with Smsc(SmscSettings(port=0, reject_share=1.0)) as smsc:
        async with world(tmp_path, backend, smpp_entry(smsc.port)) as w:
            posted = await w.event("order.shipped", {"phone": "+14155550112", "email": "kim@example.com"}, id="L-12")
            text, mail = await w.settled(posted["contact_id"], 2)
            assert (text["channel"], text["status"], text["reason"]) == ("carrier", "failed", "channel_rejected")
            assert (mail["status"], mail["subject"]) == ("sent", "Order L-12 shipped")
            assert len(w.emails_to("kim@example.com")) == 1


async def test_a_throttled_text_is_retried_and_does_not_fall_back(tmp_path: Path, backend: str) -> None:
    later = DispatchSettings(retry_base=600.0)  # the retry waits: the text stays `deferred`
    async with Smsc(SmscSettings(port=0, throttle_share=1.0)) as smsc:
        async with world(tmp_path, backend, smpp_entry(smsc.port, throttle_retries=1), dispatch=later) as w:
            posted = await w.event("order.shipped", {"phone": "+14155550113", "email": "lu@example.com"}, id="M-13")

            async def deferred() -> dict[str, Any] | None:
                rows = await w.messages(posted["contact_id"])
                return rows[0] if rows and rows[0]["status"] == "deferred" else None

            text = await eventually(deferred, timeout=20)
            assert text["reason"] == "retry_throttled"
            await w.quiet()
            assert len(await w.messages(posted["contact_id"])) == 1
            assert w.smtp.handler.received == []
            assert smsc.summary()["throttled"] >= 2


# -- what is kept: the template view, export, erasure, retention -----------------------------


async def test_fallbacks_are_exported_erased_and_kept_no_longer_than_bodies(undelivered: World) -> None:
    w = undelivered
    shipped = (await w.api.get("/v1/templates/shipped")).json()
    assert shipped["email"]["subject"] == "Order {{ event.data.id }} shipped" and shipped["email"]["text"] is None
    assert "email" not in (await w.api.get("/v1/templates/reminder")).json()

    failed = await w.event("order.shipped", {"phone": "+14155550114", "email": "mo@example.com"}, id="N-14")
    text, mail = await w.settled(failed["contact_id"], 2)
    exported = (await w.api.get(f"/v1/contacts/{failed['contact_id']}/export")).json()
    assert [(f["message_id"], f["email_id"]) for f in exported["email_fallbacks"]] == [(text["id"], mail["id"])]
    assert (await w.api.delete(f"/v1/contacts/{failed['contact_id']}")).status_code == 204
    assert await fallback_rows(w.rt) == 0

    # a fallback never needed (the text got through) goes once it is older than the retention
    assert w.rt.simulator is not None
    w.rt.simulator.configure(fail_share=0.0)
    fine = await w.event("order.shipped", {"phone": "+14155550115", "email": "ned@example.com"}, id="O-15")
    (delivered,) = await w.settled(fine["contact_id"], 1)
    assert delivered["status"] == "delivered" and await fallback_rows(w.rt) == 1
    await Retention(w.rt.db, w.rt.clock, w.rt.project.topics, 30).redact_due()
    assert await fallback_rows(w.rt) == 1
    later = ManualClock(w.rt.now() + timedelta(days=31))
    await Retention(w.rt.db, later, w.rt.project.topics, 30).redact_due()
    assert await fallback_rows(w.rt) == 0
