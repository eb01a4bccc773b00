"""Email through the engine: accepted over the API, routed to the `smtp` channel, gated
(consent and preferences per channel), and received by a real SMTP server on loopback."""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from empathic.api.app import create_app
from empathic.engine.runtime import Runtime
from tests.channels.test_smtp import Server
from tests.conftest import API_KEY, POSTGRES_URL, eventually, make_settings, postgres_schema

PROJECT = """[sender]
name = "Acme"
number = "+18005550100"

[topics]
deals = "marketing"

[[channels]]
type = "simulator"
name = "sim"

[[channels]]
type = "smtp"
name = "mail"
host = "127.0.0.1"
port = {port}
security = "none"
from = "Acme <texts@acme.example>"
"""


SHIPPED = """flow: shipped
trigger: {event: order.shipped}
steps:
  - send:
      text: "Order {{ event.data.id }} is on its way."
      channel: both
      subject: "Order {{ event.data.id }} shipped"
      html: "<p>Order <b>{{ event.data.id }}</b> is on its way.</p>"
"""


@pytest.fixture
def smtp() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def api(request: pytest.FixtureRequest, tmp_path: Path, smtp: Server) -> AsyncIterator[httpx.AsyncClient]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "empathic.toml").write_text(PROJECT.format(port=smtp.port), encoding="utf-8")
    (project / "flows").mkdir()
    (project / "flows" / "shipped.yaml").write_text(SHIPPED, encoding="utf-8")

    @asynccontextmanager
    async def running(**overrides: object) -> AsyncIterator[Runtime]:
        rt = Runtime(make_settings(tmp_path, project_dir=project, **overrides))
        await rt.start()
        try:
            yield rt
        finally:
            await rt.stop()

    if request.param == "sqlite":
        context = running()
    else:
        schema_cm = postgres_schema(migrated=True)
        schema = await schema_cm.__aenter__()
        context = running(database_url=POSTGRES_URL, database_schema=schema)
    try:
        async with context as rt:
            transport = httpx.ASGITransport(app=create_app(rt))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://empathic.test", headers={"Authorization": f"Bearer {API_KEY}"}
            ) as client:
                yield client
    finally:
        if request.param != "sqlite":
            await schema_cm.__aexit__(None, None, None)


async def status_of(api: httpx.AsyncClient, message_id: str) -> dict:
    return (await api.get(f"/v1/messages/{message_id}")).json()


async def test_an_email_goes_out_with_subject_text_and_html(api: httpx.AsyncClient, smtp: Server) -> None:
    sent = await api.post("/v1/messages", json={
        "to": "Ana.Lima@Example.COM", "subject": "Your order shipped 🚚", "body": "Order 1042 is on its way.",
        "html": "<p>Order <b>1042</b> is on its way.</p>", "topic": "transactional",
    })
    assert sent.status_code == 202, sent.text
    view = sent.json()
    assert (view["to"], view["channel"], view["encoding"], view["segments"]) == ("Ana.Lima@example.com", "mail", "email", None)
    done = await eventually(lambda: _sent(api, view["id"]), timeout=15)
    assert done["from"] == "Acme <texts@acme.example>" and done["subject"] == "Your order shipped 🚚"
    (got,) = smtp.handler.to("Ana.Lima@example.com")
    parsed = email.message_from_bytes(got.content, policy=email.policy.default)
    assert parsed["Subject"] == "Your order shipped 🚚"
    assert parsed["Message-ID"] == f"<{view['id']}@acme.example>"
    assert parsed.get_body(("plain",)).get_content().strip() == "Order 1042 is on its way."
    assert "<b>1042</b>" in parsed.get_body(("html",)).get_content()
    contact = (await api.get(f"/v1/contacts/{view['contact_id']}")).json()
    assert contact["email"] == "Ana.Lima@example.com" and contact["phone"] is None


async def _sent(api: httpx.AsyncClient, message_id: str) -> dict | None:
    view = await status_of(api, message_id)
    return view if view["status"] == "sent" else None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"to": "ana@example.com", "body": "hi"}, "subject"),
        ({"to": "ana@example.com", "body": "hi", "subject": "two\nlines"}, "subject"),
        ({"to": "ana@@example.com", "body": "hi", "subject": "s"}, "to"),
        ({"to": "ana@localhost", "body": "hi", "subject": "s"}, "to"),
        ({"to": "+14155550100", "body": "hi", "subject": "s"}, "subject"),
        ({"to": "+14155550100", "body": "hi", "html": "<p>hi</p>"}, "html"),
    ],
)
async def test_bad_email_requests_are_refused_naming_the_field(api: httpx.AsyncClient, payload: dict, field: str) -> None:
    answer = await api.post("/v1/messages", json=payload)
    assert answer.status_code == 422, answer.text
    assert field in answer.text


async def test_preferences_and_consent_are_per_channel(api: httpx.AsyncClient, smtp: Server) -> None:
    made = await api.post("/v1/contacts", json={"phone": "+14155550111", "email": "bo@example.com"})
    assert made.status_code == 201, made.text
    contact = made.json()["id"]
    prefs = await api.put(f"/v1/contacts/{contact}/preferences", json={"channels": {"transactional": "sms"}})
    assert prefs.status_code == 200, prefs.text
    by_mail = (await api.post("/v1/messages", json={"to": "bo@example.com", "subject": "s", "body": "b"})).json()
    by_text = (await api.post("/v1/messages", json={"to": "+14155550111", "body": "b"})).json()
    assert by_mail["contact_id"] == contact == by_text["contact_id"]
    blocked = await eventually(lambda: _status(api, by_mail["id"], "blocked"), timeout=15)
    assert blocked["reason"] == "channel_preference"
    await eventually(lambda: _status(api, by_text["id"], "delivered"), timeout=15)
    # marketing by email needs email consent; a grant for SMS does not count
    await api.post(f"/v1/contacts/{contact}/consents",
                   json={"topic": "deals", "action": "granted", "source": "web_form", "evidence": "form"})
    promo = (await api.post("/v1/messages", json={"to": "bo@example.com", "subject": "Sale", "body": "20% off", "topic": "deals"})).json()
    refused = await eventually(lambda: _status(api, promo["id"], "blocked"), timeout=15)
    assert refused["reason"] == "no_consent"
    assert smtp.handler.to("bo@example.com") == []


async def _status(api: httpx.AsyncClient, message_id: str, status: str) -> dict | None:
    view = await status_of(api, message_id)
    return view if view["status"] == status else None


async def test_email_without_an_smtp_channel_is_refused(runtime: Runtime) -> None:
    from empathic.engine.outbox import MessageRequest, SubmitError

    with pytest.raises(SubmitError, match="no email channel"):
        await runtime.outbox.submit(runtime.workspace_id, [MessageRequest("ana@example.com", "hi", subject="s")])


async def test_a_flow_sends_by_text_and_email(api: httpx.AsyncClient, smtp: Server) -> None:
    posted = await api.post("/v1/events", json={
        "type": "order.shipped", "data": {"id": "A-77"},
        "contact": {"phone": "+14155550177", "email": "Cy@Example.com"},
    })
    assert posted.status_code == 202, posted.text
    contact = posted.json()["contact_id"]

    async def both_out() -> list[dict] | None:
        rows = (await api.get("/v1/messages", params={"contact_id": contact})).json()["data"]
        done = [m for m in rows if m["status"] in ("delivered", "sent")]
        return rows if len(done) == 2 and len(rows) == 2 else None

    rows = await eventually(both_out, timeout=15)
    by_channel = {m["channel"]: m for m in rows}
    assert by_channel["sim"]["body"] == "Order A-77 is on its way." and by_channel["sim"]["to"] == "+14155550177"
    assert by_channel["mail"]["subject"] == "Order A-77 shipped" and by_channel["mail"]["to"] == "Cy@example.com"
    (got,) = smtp.handler.to("Cy@example.com")
    parsed = email.message_from_bytes(got.content, policy=email.policy.default)
    assert parsed["Subject"] == "Order A-77 shipped"
    assert "<b>A-77</b>" in parsed.get_body(("html",)).get_content()


async def test_both_to_a_contact_without_an_email_sends_the_text_alone(api: httpx.AsyncClient, smtp: Server) -> None:
    posted = await api.post("/v1/events", json={
        "type": "order.shipped", "data": {"id": "B-8"}, "contact": {"phone": "+14155550178"},
    })
    assert posted.status_code == 202, posted.text
    contact = posted.json()["contact_id"]

    async def delivered() -> list[dict] | None:
        rows = (await api.get("/v1/messages", params={"contact_id": contact})).json()["data"]
        return rows if rows and all(m["status"] == "delivered" for m in rows) else None

    rows = await eventually(delivered, timeout=15)
    assert [(m["channel"], m["body"]) for m in rows] == [("sim", "Order B-8 is on its way.")]
    runs = (await api.get("/v1/runs", params={"flow": "shipped"})).json()["data"]
    assert [r["status"] for r in runs] == ["done"]
    assert smtp.handler.received == []
