"""The preference page in a real browser (Debian's Chromium, driven by Playwright) against a
real `empathic serve`: a person opens the signed link, changes their choices, saves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.e2e.browser import chromium_path
from tests.e2e.server import Server

PHONE = "+14155550177"


@pytest.fixture
def page() -> Iterator[Page]:
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport={"width": 390, "height": 844})  # a phone's screen
        finally:
            browser.close()


def test_a_person_changes_their_preferences_in_a_browser(tmp_path: Path, page: Page) -> None:
    server = Server(tmp_path / "data", tmp_path)
    try:
        server.start()
        with server.client() as api:
            contact = api.post("/v1/contacts", json={"phone": PHONE, "timezone": "America/New_York"}).json()
            api.post(f"/v1/contacts/{contact['id']}/consents", json={"topic": "deals", "action": "granted", "source": "import"})
            link = api.post(f"/v1/contacts/{contact['id']}/preference-link").json()["url"]

            page.goto(link)
            assert page.title().startswith("Your message preferences")
            assert page.get_by_text("number ending 0177").is_visible()
            deals = page.get_by_label("Deals", exact=True)
            assert deals.is_checked()
            deals.uncheck()
            page.get_by_label("Channel for Transactional").select_option("both")
            page.get_by_label("No texts from").check()
            page.get_by_label("Quiet from").fill("22:15")
            page.get_by_label("Quiet to").fill("07:45")
            page.get_by_label("Language").select_option("pt")
            page.get_by_role("button", name="Save preferences").click()
            assert page.get_by_role("status").inner_text() == "Saved. Thank you."
            page.screenshot(path=str(tmp_path / "preferences.png"), full_page=True)

            prefs = api.get(f"/v1/contacts/{contact['id']}/preferences").json()
            assert prefs["quiet_hours"] == {"days": "every_day", "from": "22:15", "to": "07:45"}
            assert prefs["channels"] == {"transactional": "both"} and prefs["language"] == "pt"
            consents = api.get(f"/v1/contacts/{contact['id']}/consents").json()
            assert consents["topics"]["deals"]["sms"] == "revoked"
            assert consents["history"][-1]["source"] == "web_form"

            # The page reloaded from the server shows what was saved.
            page.reload()
            assert not page.get_by_label("Deals", exact=True).is_checked()
            assert page.get_by_label("Quiet from").input_value() == "22:15"
            assert page.get_by_label("Language").input_value() == "pt"

            # A mistake is explained and changes nothing.
            page.get_by_label("Quiet to").fill("22:15")
            page.get_by_role("button", name="Save preferences").click()
            assert "Nothing was changed" in page.get_by_role("alert").inner_text()
            assert api.get(f"/v1/contacts/{contact['id']}/preferences").json()["quiet_hours"]["to"] == "07:45"

            page.get_by_role("button", name="Stop all texts").click()
            assert api.get(f"/v1/contacts/{contact['id']}/consents").json()["sms"]["opted_out_of_all"] is True
    finally:
        server.terminate()
