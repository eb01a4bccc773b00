"""The inbox in a real browser against a real `empathic serve`: a shipped flow
(support-diagnostics) hands a conversation to a person; the agent, signed in with the
bootstrap admin, sees the thread arrive without reloading, reads what was understood, types a
reply (the counter shows the server's segments and the gate's answer), sends it, and closes
the thread, which gives the conversation back to the flow; the simulator's phone got both
texts, and its page, open beside the inbox, showed each as it came. axe-core finds nothing serious on the list and the thread at a phone's width and a
desktop's."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.e2e.browser import DESKTOP, PHONE, Pages, axe_check, browser, shot, sign_in  # noqa: F401 (browser: a fixture)
from tests.e2e.server import Server, eventually

ADMIN, PASSWORD = "agent@example.com", "some-password-123"
NUMBER = "+14155550190"
REPLY = "Hi, Sam from support here 🙂 Is the router's light blinking?"


def received(api: httpx.Client) -> list[str]:
    messages = api.get(f"/v1/simulator/phones/{NUMBER}/messages").json()["messages"]
    return [m["body"] for m in messages if m["direction"] == "received"]


def at_least(api: httpx.Client, n: int) -> list[str] | None:
    texts = received(api)
    return texts if len(texts) >= n else None


def test_an_agent_answers_a_hand_off_live_and_closes_it(tmp_path: Path, browser: Pages) -> None:  # noqa: F811
    server = Server(tmp_path / "data", tmp_path, env={"EMPATHIC_BOOTSTRAP_ADMIN": f"{ADMIN}:{PASSWORD}"})
    try:
        server.start()
        page = browser.page(DESKTOP)
        page.goto(f"{server.url}/inbox")  # not signed in: the sign-in page, coming back here after
        sign_in(page, ADMIN, PASSWORD)
        expect(page.get_by_role("heading", name="Inbox", exact=True)).to_be_visible()
        expect(page.locator("#threads")).to_contain_text("Nothing here")
        page.evaluate("window.stillTheSamePage = true")

        with server.client() as api:
            api.post("/v1/contacts", json={"phone": NUMBER, "timezone": "America/Los_Angeles",
                                           "attributes": {"first_name": "<b>Ana</b>"}}).raise_for_status()
            phone = f"/v1/simulator/phones/{NUMBER}/messages"
            api.post(phone, json={"body": "SUPPORT"}).raise_for_status()
            eventually(lambda: at_least(api, 1), what="the flow's menu")
            api.post(phone, json={"body": "something else: my bill looks wrong"}).raise_for_status()
            eventually(lambda: at_least(api, 2), what="the hand-off text")

            thread = page.locator("#threads li.thread").first
            expect(thread).to_contain_text("<b>Ana</b>", timeout=10_000)  # arrived live, as text
            expect(thread).to_contain_text("A flow handed the conversation to a person.")
            assert page.evaluate("window.stillTheSamePage") is True  # no reload
            expect(thread.locator(".badge")).to_be_visible()
            axe_check(page)
            shot(page, tmp_path, "inbox-desktop")
            page.set_viewport_size({"width": PHONE, "height": 800})
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE
            axe_check(page)
            shot(page, tmp_path, "inbox-phone")
            page.set_viewport_size({"width": DESKTOP, "height": 900})

            thread.get_by_role("link").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("<b>Ana</b>")
            expect(page.locator(".handoff-note")).to_contain_text("Internet support.")
            reading = page.locator(".entry.inbound .reading").last
            expect(reading).to_contain_text("Understood:")
            expect(reading.locator(".intent")).not_to_be_empty()
            expect(page.locator(".entry .viewer-time").first).to_contain_text("yours:")

            box = page.get_by_label("Your reply")
            box.fill(REPLY)
            expect(page.locator("#counter")).to_contain_text(f"{len(REPLY)} characters · UCS-2 (Unicode) · 1 segment")
            expect(page.locator("#gate")).to_contain_text("it would go out now")
            box.fill(REPLY + " " + "x" * 20)  # past 70 UCS-2 units: two segments, as the server counts
            expect(page.locator("#counter")).to_contain_text("2 segments")
            box.fill(REPLY)
            expect(page.locator("#counter")).to_contain_text("1 segment")
            axe_check(page)
            shot(page, tmp_path, "thread-desktop")
            page.set_viewport_size({"width": PHONE, "height": 800})
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE
            axe_check(page)
            shot(page, tmp_path, "thread-phone")
            page.set_viewport_size({"width": DESKTOP, "height": 900})

            handset = page.context.new_page()  # the person's phone, open beside the inbox
            handset.goto(f"{server.url}/phone/{NUMBER}")
            expect(handset.locator("#texts li.received").last).to_contain_text("someone from our support team")
            handset.evaluate("window.stillTheSamePage = true")

            page.get_by_role("button", name="Send reply").click()
            expect(page.get_by_role("status").filter(has_text="Your reply is on its way.")).to_be_visible()
            texts = eventually(lambda: at_least(api, 3), what="the reply on the phone")
            assert texts[2] == REPLY
            expect(handset.locator("#texts li.received").last).to_contain_text(REPLY)  # arrived live on the phone page
            assert handset.evaluate("window.stillTheSamePage") is True
            expect(page.locator(".entry.outbound").last).to_contain_text("delivered", timeout=10_000)  # live

            page.get_by_role("button", name="Close thread").click()
            expect(page.get_by_role("status").filter(has_text="The thread is closed.")).to_be_visible()
            texts = eventually(lambda: at_least(api, 4), what="the flow's closing text")
            assert texts[3].startswith("Your support chat is now closed")
            expect(handset.locator("#texts li.received").last).to_contain_text("Your support chat is now closed")
            shot(handset, tmp_path, "phone-after-close")
            assert texts.count(REPLY) == 1
            shot(page, tmp_path, "thread-closed")
    finally:
        for context in browser.browser.contexts:  # the live stream ends with its page, so the server stops at once
            context.close()
        server.terminate()
