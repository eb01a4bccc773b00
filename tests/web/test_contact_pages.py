"""The contacts pages (/contacts): search, one contact's page, export and erase, per role and
workspace; and what they read from the store (store/contact_pages.py, store/consent.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from empathic.api.app import create_app
from empathic.core.consent import ConsentAction
from empathic.core.topics import TopicKind
from empathic.engine.runtime import DEFAULT_WORKSPACE, Runtime
from empathic.store import consent as consent_store
from empathic.store import keys
from empathic.store import preferences as preference_store
from empathic.store import threads
from empathic.store import contact_pages
from empathic.store import contacts as contact_store
from empathic.store.contact_pages import ContactSearch
from tests.conftest import eventually
from tests.web.conftest import BASE_URL, signed_in_client

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


# -- reading what was typed ------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "read"), [
    ("(415) 555-0177", ContactSearch(phone="+14155550177")),
    ("+1 415.555.0177", ContactSearch(phone="+14155550177")),
    ("  415 555 0177 ", ContactSearch(phone="+14155550177")),
    ("555-0177", ContactSearch(digits="5550177")),
    ("06 12 34", ContactSearch(digits="61234")),  # a trunk 0 is not in the E.164 form
    ("ANA@Example.com", ContactSearch(email="ana@example.com")),
    ("Ana  Silva", ContactSearch(name="ana silva")),
    ("ct_01M99MTRBR3PNYXE9YH3CM7K11", ContactSearch(contact_id="ct_01M99MTRBR3PNYXE9YH3CM7K11")),
    ("   ", ContactSearch()),
    ("--", ContactSearch(name="--")),
])
def test_a_search_is_read_as_what_it_most_likely_is(typed: str, read: ContactSearch) -> None:
    assert ContactSearch.read(typed, "US") == read


def test_a_french_number_in_national_format_is_found_with_its_region() -> None:
    assert ContactSearch.read("06 12 34 56 78", "FR") == ContactSearch(phone="+33612345678")


# -- the store -------------------------------------------------------------------------------------


async def _contact(rt: Runtime, ws: str, phone: str | None, email: str | None = None, **attributes: object):
    async with rt.db.transaction() as conn:
        return await contact_store.create(conn, ws, NOW, phone=phone, email=email, attributes=attributes)


async def _ids(rt: Runtime, ws: str, typed: str, **paging: object) -> list[str]:
    async with rt.db.transaction() as conn:
        found = await contact_pages.search(conn, ws, ContactSearch.read(typed, "US"), limit=50, **paging)  # type: ignore[arg-type]
    return [c.id for c in found]


async def test_search_finds_by_number_name_email_and_id(runtime: Runtime) -> None:
    ws = DEFAULT_WORKSPACE
    ana = await _contact(runtime, ws, "+14155550177", "Ana.Silva@example.com", first_name="Ana", last_name="Silva")
    bo = await _contact(runtime, ws, "+14155550188", None, name="Bo 100%_done")
    cy = await _contact(runtime, ws, None, "cy@example.org", first_name="Cyrus")
    jo = await _contact(runtime, ws, None, None, name="José Ñúñez")
    assert await _ids(runtime, ws, "josé ñ") == [jo.id]  # stored as JSON escapes, read as text
    assert await _ids(runtime, ws, "(415) 555-0177") == [ana.id]
    assert await _ids(runtime, ws, "555-01") == [bo.id, ana.id]  # newest first
    assert await _ids(runtime, ws, "ana silva") == [ana.id]
    assert await _ids(runtime, ws, "SILVA") == [ana.id]
    assert await _ids(runtime, ws, "cy") == [cy.id]  # a part of a name
    assert await _ids(runtime, ws, "100%_") == [bo.id]  # LIKE's wildcards are plain text
    assert await _ids(runtime, ws, "100%x") == []
    assert await _ids(runtime, ws, "@example.com") == [ana.id]
    assert await _ids(runtime, ws, cy.id) == [cy.id]
    assert await _ids(runtime, ws, "") == [jo.id, cy.id, bo.id, ana.id]
    assert await _ids(runtime, ws, "", cursor=bo.id) == [ana.id]


async def test_search_never_reaches_another_workspace(runtime: Runtime) -> None:
    other = await _workspace(runtime)
    theirs = await _contact(runtime, other, "+14155550177", "ana@example.com", first_name="Ana")
    assert await _ids(runtime, DEFAULT_WORKSPACE, "+14155550177") == []
    assert await _ids(runtime, DEFAULT_WORKSPACE, "Ana") == []
    assert await _ids(runtime, DEFAULT_WORKSPACE, theirs.id) == []
    assert await _ids(runtime, other, "Ana") == [theirs.id]


async def _workspace(rt: Runtime) -> str:
    async with rt.db.transaction() as conn:
        await keys.ensure_workspace(conn, "ws_other", "Other", NOW)
    return "ws_other"


async def test_ledger_entries_and_standing_by_topic(runtime: Runtime) -> None:
    ws = DEFAULT_WORKSPACE
    ana = await _contact(runtime, ws, "+14155550177")
    async with runtime.db.transaction() as conn:
        for topic, action, source, at in [
            ("deals", ConsentAction.GRANTED, "web_form", NOW),
            ("*", ConsentAction.REVOKED, "keyword", NOW + timedelta(minutes=1)),
            ("news", ConsentAction.REQUESTED, "api", NOW + timedelta(minutes=2)),
        ]:
            await consent_store.append(conn, ws, ana.id, topic=topic, channel="sms", action=action, source=source,
                                       actor="tester", evidence="form 7" if source == "web_form" else None, at=at)
        entries = await consent_store.entries(conn, ws, ana.id)
        state = (await consent_store.states(conn, ws, [ana.id]))[ana.id]
        history = await consent_store.history(conn, ws, ana.id)
    assert [(e.topic, e.action, e.source, e.evidence) for e in entries] == [
        ("deals", "granted", "web_form", "form 7"), ("*", "revoked", "keyword", None), ("news", "requested", "api", None)]
    assert entries[0].at == NOW and history[0]["at"] == NOW.isoformat() and history[0]["actor"] == "tester"
    kinds = {"deals": TopicKind.MARKETING, "news": TopicKind.MARKETING, "codes": TopicKind.OTP}
    assert consent_store.by_topic(state, kinds) == [
        consent_store.TopicConsent("deals", TopicKind.MARKETING, "revoked", None),
        consent_store.TopicConsent("news", TopicKind.MARKETING, "revoked", None),
    ]


# -- the pages -------------------------------------------------------------------------------------

XSS = "<img src=x onerror=alert(1)>"
PHONE = "+14155550177"


async def _ana(rt: Runtime, ws: str = DEFAULT_WORKSPACE, phone: str = PHONE):
    """A contact with a hostile name, a ledger, preferences and an inbox thread."""
    now = rt.now()
    async with rt.db.transaction() as conn:
        ana = await contact_store.create(conn, ws, now, phone=phone, email="ana@example.com", timezone="America/New_York",
                                         attributes={"first_name": XSS, "last_name": "Silva", "tier": {"level": XSS}})
        await consent_store.append(conn, ws, ana.id, topic="deals", channel="sms", action=ConsentAction.GRANTED,
                                   source="web_form", actor=f"agent:{XSS}", evidence=f"signup form {XSS}", at=now)
        await consent_store.append(conn, ws, ana.id, topic="*", channel="sms", action=ConsentAction.REVOKED,
                                   source="keyword", actor="contact", evidence="msg_stop", at=now)
        await preference_store.put(conn, ws, ana.id, {"quiet_hours": {"from": "21:30", "to": "08:00"}, "language": "es",
                                                      "channels": {"orders": "email"}}, now)
        thread = await threads.open_for(conn, ws, ana.id, None, now)
    return ana, thread


async def test_not_signed_in_is_sent_to_sign_in(runtime: Runtime) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime)), base_url=BASE_URL) as anyone:
        answer = await anyone.get("/contacts?q=ana")
        assert answer.status_code == 303 and answer.headers["location"] == "/?next=%2Fcontacts%3Fq%3Dana"
        assert (await anyone.post("/contacts/ct_x/erase", data={"confirm": "x"})).status_code == 401


async def test_every_role_lists_and_searches(runtime: Runtime) -> None:
    ana, _ = await _ana(runtime)
    bo = await _contact(runtime, DEFAULT_WORKSPACE, "+14155550188", None, first_name="Bo")
    for role in ("viewer", "agent", "admin"):
        async with await signed_in_client(runtime, role) as person:
            listed = await person.get("/contacts")
            assert listed.status_code == 200, listed.text
            assert listed.text.index(bo.id) < listed.text.index(ana.id)  # newest first
            found = await person.get("/contacts", params={"q": "(415) 555-0177"})
            assert ana.id in found.text and bo.id not in found.text
            assert "Contacts matching “(415) 555-0177”" in found.text
            by_name = await person.get("/contacts", params={"q": "silva"})
            assert ana.id in by_name.text and bo.id not in by_name.text
            assert XSS not in by_name.text and "&lt;img src=x onerror=alert(1)&gt; Silva" in by_name.text
            none = await person.get("/contacts", params={"q": f'"{XSS}'})
            assert "No contact matches" in none.text and XSS not in none.text


async def test_the_list_pages_by_fifty(runtime: Runtime) -> None:
    now = runtime.now()
    async with runtime.db.transaction() as conn:
        made = [await contact_store.create(conn, DEFAULT_WORKSPACE, now, phone=f"+1415555{n:04d}") for n in range(51)]
    async with await signed_in_client(runtime, "viewer") as viewer:
        first = await viewer.get("/contacts")
        assert first.text.count('<a href="/contacts/ct_') == 50 and made[0].id not in first.text
        following = f'/contacts?q=&amp;after={made[1].id}'
        assert following in first.text
        second = await viewer.get(following.replace("&amp;", "&"))
        assert second.text.count('<a href="/contacts/ct_') == 1 and made[0].id in second.text
        assert 'rel="next"' not in second.text and "First page" in second.text


async def test_a_contact_page_shows_everything_about_them_as_text(runtime: Runtime, api: httpx.AsyncClient) -> None:
    ana, thread = await _ana(runtime)
    sent = await api.post("/v1/messages", json={"to": PHONE, "body": f"Deals for {XSS}", "topic": "deals"})
    assert sent.status_code == 202, sent.text
    await eventually(lambda: _status_is(api, sent.json()["id"], "blocked"))  # STOP: opted out
    run = await api.post("/v1/flows/pickup-ready/runs", json={
        "contact": {"phone": PHONE}, "data": {"order_id": "A1", "store": "Main St", "hold_until": "Friday"}})
    assert run.status_code == 201, run.text
    async with await signed_in_client(runtime, "viewer") as viewer:
        page = await viewer.get(f"/contacts/{ana.id}")
    assert page.status_code == 200, page.text
    html = page.text
    assert XSS not in html and "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt; Silva</h1>" in html
    assert '{&#34;level&#34;: &#34;&lt;img src=x onerror=alert(1)&gt;&#34;}' in html  # a nested attribute, as JSON
    # The ledger, every column, newest first; where the person stands now.
    assert html.index("msg_stop") < html.index("signup form &lt;img")
    assert "agent:&lt;img src=x onerror=alert(1)&gt;" in html and "web_form" in html and ">keyword<" in html
    assert "all topics" in html and "All texts: <strong" in html
    assert '<th scope="row">deals</th><td>marketing</td>\n      <td>revoked</td>' in html
    # Preferences in words; the message with the gate's reason; the run; the inbox thread.
    assert "no texts from 21:30 to 08:00, every day" in html and "Spanish" in html and "Channel for orders" in html
    assert "Deals for &lt;img src=x onerror=alert(1)&gt;" in html and "<code>opted_out</code>" in html
    assert "The contact opted out of this topic" in html
    assert "pickup-ready" in html and "api" in html
    assert f'href="/inbox/{thread}"' in html
    assert "America/New_York" in html and (" EST<" in html or " EDT<" in html)  # times in the contact's zone
    # A viewer reads; exporting and erasing are not offered.
    assert f"/contacts/{ana.id}/export" not in html and "/erase" not in html
    assert "Exporting hands out personal data, so it needs an agent or an admin" in html


async def _status_is(api: httpx.AsyncClient, message_id: str, status: str) -> bool:
    return (await api.get(f"/v1/messages/{message_id}")).json()["status"] == status


async def test_export_is_the_api_document_for_agents_and_admins(runtime: Runtime, api: httpx.AsyncClient) -> None:
    ana, _ = await _ana(runtime)
    async with await signed_in_client(runtime, "viewer") as viewer:
        assert (await viewer.get(f"/contacts/{ana.id}/export")).status_code == 403
    for role in ("agent", "admin"):
        async with await signed_in_client(runtime, role) as person:
            page = await person.get(f"/contacts/{ana.id}")
            assert f'href="/contacts/{ana.id}/export" download' in page.text
            answer = await person.get(f"/contacts/{ana.id}/export")
            assert answer.status_code == 200
            assert answer.headers["content-disposition"] == f'attachment; filename="contact-{ana.id}.json"'
            assert answer.headers["content-type"] == "application/json"
            document = answer.json()
            from_api = (await api.get(f"/v1/contacts/{ana.id}/export")).json()
            assert document.keys() == from_api.keys()
            assert {k: v for k, v in document.items() if k != "exported_at"} == {
                k: v for k, v in from_api.items() if k != "exported_at"}
            assert document["contact"]["attributes"]["first_name"] == XSS


async def test_erasing_takes_an_admin_and_the_number_typed_exactly(runtime: Runtime, api: httpx.AsyncClient) -> None:
    ana, _ = await _ana(runtime)
    for role in ("viewer", "agent"):
        async with await signed_in_client(runtime, role) as person:
            assert "/erase" not in (await person.get(f"/contacts/{ana.id}")).text
            refused = await person.post(f"/contacts/{ana.id}/erase", data={"csrf": person.csrf, "confirm": PHONE})
            assert refused.status_code == 403
    async with await signed_in_client(runtime, "admin") as admin:
        page = await admin.get(f"/contacts/{ana.id}")
        assert f'action="/contacts/{ana.id}/erase"' in page.text and f"Type {PHONE} to confirm" in page.text
        no_token = await admin.post(f"/contacts/{ana.id}/erase", data={"confirm": PHONE})
        assert no_token.status_code == 403
        for typed in ("", "(415) 555-0177", PHONE + "0", XSS):
            wrong = await admin.post(f"/contacts/{ana.id}/erase", data={"csrf": admin.csrf, "confirm": typed})
            assert wrong.status_code == 422, typed
            assert "Nothing was erased" in wrong.text and 'role="alert"' in wrong.text and XSS not in wrong.text
        assert (await api.get(f"/v1/contacts/{ana.id}")).status_code == 200
        done = await admin.post(f"/contacts/{ana.id}/erase", data={"csrf": admin.csrf, "confirm": f"  {PHONE} "})
        assert done.status_code == 303 and done.headers["location"] == "/contacts?erased=1"
        listed = await admin.get(done.headers["location"])
        assert "The contact and everything held about them was erased." in listed.text and ana.id not in listed.text
        assert (await admin.get(f"/contacts/{ana.id}")).status_code == 404
        assert (await api.get(f"/v1/contacts/{ana.id}")).status_code == 404
    # The erased number had opted out: a contact made for it again is opted out at once.
    again = await api.post("/v1/contacts", json={"phone": PHONE})
    consents = (await api.get(f"/v1/contacts/{again.json()['id']}/consents")).json()
    assert consents["sms"]["opted_out_of_all"] is True


async def test_a_contact_without_a_number_is_erased_by_email(runtime: Runtime) -> None:
    cy = await _contact(runtime, DEFAULT_WORKSPACE, None, "cy@example.org")
    async with await signed_in_client(runtime, "admin") as admin:
        assert "Type cy@example.org to confirm" in (await admin.get(f"/contacts/{cy.id}")).text
        wrong = await admin.post(f"/contacts/{cy.id}/erase", data={"csrf": admin.csrf, "confirm": "CY@example.org"})
        assert wrong.status_code == 422 and "type the contact&#39;s email address exactly" in wrong.text
        done = await admin.post(f"/contacts/{cy.id}/erase", data={"csrf": admin.csrf, "confirm": "cy@example.org"})
        assert done.status_code == 303


async def test_another_workspace_sees_nothing(runtime: Runtime) -> None:
    ana, _ = await _ana(runtime)
    async with await signed_in_client(runtime, "admin", workspace_id="ws_b") as other:
        listed = await other.get("/contacts", params={"q": PHONE})
        assert ana.id not in listed.text and "No contact matches" in listed.text
        assert ana.id not in (await other.get("/contacts")).text
        for answer in (
            await other.get(f"/contacts/{ana.id}"),
            await other.get(f"/contacts/{ana.id}/export"),
            await other.post(f"/contacts/{ana.id}/erase", data={"csrf": other.csrf, "confirm": PHONE}),
        ):
            assert answer.status_code == 404 and "No such contact" in answer.text and "Silva" not in answer.text
    async with runtime.db.transaction() as conn:
        assert await contact_store.get(conn, DEFAULT_WORKSPACE, ana.id) is not None
