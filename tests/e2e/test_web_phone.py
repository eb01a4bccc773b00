"""The phone page driving a shipped flow in a real browser against a real `empathic serve`: an
admin signs in, starts the fraud alert on a virtual number, sees the question arrive, answers
from the phone's box and sees the flow's next text arrive without a reload; the flow's page
then counts this run at its steps. axe-core finds nothing serious at 360 and 1280 px."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.browser import DESKTOP, PHONE, Pages, axe_check, browser, shot, sign_in  # noqa: F401 (browser: a fixture)
from tests.e2e.server import Server

ADMIN, PASSWORD = "admin@example.com", "some-password-123"
NUMBER = "+14155550471"


def test_the_phone_page_drives_a_shipped_flow(tmp_path: Path, browser: Pages) -> None:  # noqa: F811
    server = Server(tmp_path / "data", tmp_path, env={"EMPATHIC_BOOTSTRAP_ADMIN": f"{ADMIN}:{PASSWORD}"})
    try:
        server.start()
        page = browser.page(DESKTOP)
        page.goto(f"{server.url}/phone/{NUMBER}")  # not signed in: the sign-in page, coming back here after
        sign_in(page, ADMIN, PASSWORD)
        expect(page.get_by_role("heading", name=f"Phone {NUMBER}")).to_be_visible()
        expect(page.get_by_text("No texts yet.")).to_be_visible()

        page.get_by_label("Flow", exact=True).select_option("fraud-alert")
        expect(page.get_by_label("Event data (JSON)")).to_have_value(
            '{\n  "amount": "$249.99",\n  "merchant": "ELECTROWORLD",\n  "card_last4": "4242"\n}')  # its transcript's
        page.get_by_role("button", name="Start the flow").click()
        expect(page.get_by_role("status").filter(has_text="Started")).to_have_text("Started: flow fraud-alert.")
        expect(page.get_by_label("Flow", exact=True)).to_have_value("fraud-alert")  # still the one just tried
        page.evaluate("window.notReloaded = true")
        texts = page.locator("#texts li")
        expect(texts.first).to_contain_text("Was this you? Reply YES or NO.")
        expect(texts.first).to_contain_text("ELECTROWORLD")

        page.get_by_label("Text back as this person").fill("yes, that was me")
        page.get_by_role("button", name="Send from the phone").click()
        expect(texts.nth(1)).to_contain_text("yes, that was me")
        expect(texts.nth(2)).to_contain_text("Thanks for confirming! The $249.99 charge at ELECTROWORLD is marked as yours")
        assert page.evaluate("window.notReloaded") is True  # it came live, not by reloading
        expect(page.get_by_label("Text back as this person")).to_have_value("")
        axe_check(page)
        shot(page, tmp_path, "phone-desktop")

        page.set_viewport_size({"width": PHONE, "height": 800})
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE
        axe_check(page)
        shot(page, tmp_path, "phone-phone")

        page.goto(f"{server.url}/phone")
        expect(page.get_by_role("link", name=NUMBER)).to_be_visible()

        page.set_viewport_size({"width": DESKTOP, "height": 900})
        page.goto(f"{server.url}/flows")
        page.get_by_role("link", name="fraud-alert").click()
        expect(page.get_by_role("heading", name="Flow fraud-alert")).to_be_visible()
        ask = page.locator("#step-ask")
        expect(ask.locator("td").nth(2)).to_have_text("1")  # passed: the answer was taken
        expect(ask.locator("td").nth(3)).to_have_text("1")  # waited: for that answer
        expect(page.locator("#step-genuine td").nth(2)).to_have_text("1")
        expect(page.locator("svg.flow-graph")).to_contain_text("1 passed · 1 waited")
        expect(page.get_by_text("No problems")).to_be_visible()
        axe_check(page)
        shot(page, tmp_path, "flow-desktop")
        page.locator(".graph-wrap").screenshot(path=str(tmp_path / "flow-graph.png"))

        page.set_viewport_size({"width": PHONE, "height": 800})
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE
        axe_check(page)
        shot(page, tmp_path, "flow-phone")
    finally:
        server.terminate()
