"""The contacts pages in a real browser against a real `empathic serve`: an admin signs in,
finds a contact by a number typed as people write it, reads their page (a hostile name shown
as text, the consent history, times in both zones), exports them and erases them with the
typed confirmation; axe-core finds nothing serious at a phone's width and a desktop's."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Dialog, expect

from tests.e2e.browser import DESKTOP, PHONE, Pages, axe_check, browser, shot, sign_in  # noqa: F401 (browser: a fixture)
from tests.e2e.server import Server

ADMIN, PASSWORD = "admin@example.com", "some-password-123"
XSS = "<img src=x onerror=alert(1)>"
NUMBER = "+14155550177"


def test_an_admin_finds_reads_exports_and_erases_a_contact(tmp_path: Path, browser: Pages) -> None:  # noqa: F811
    server = Server(tmp_path / "data", tmp_path, env={"EMPATHIC_BOOTSTRAP_ADMIN": f"{ADMIN}:{PASSWORD}"})
    try:
        server.start()
        with server.client() as api:
            made = api.post("/v1/contacts", json={"phone": NUMBER, "timezone": "Asia/Tokyo",
                                                  "attributes": {"first_name": XSS, "last_name": "Silva"}})
            assert made.status_code == 201, made.text
            contact = made.json()
            granted = api.post(f"/v1/contacts/{contact['id']}/consents", json={
                "topic": "deals", "action": "granted", "source": "import", "evidence": "paper form 12"})
            assert granted.status_code == 201, granted.text
            sent = api.post("/v1/messages", json={"to": NUMBER, "body": f"Your order for {XSS} is on its way"})
            assert sent.status_code == 202, sent.text

        page = browser.page(DESKTOP)
        dialogs: list[str] = []

        def on_dialog(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.goto(f"{server.url}/contacts")  # not signed in: the sign-in page, coming back here after
        sign_in(page, ADMIN, PASSWORD)
        expect(page.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()

        page.get_by_label("Search contacts").fill("(415) 555-0177")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_role("heading", name="Contacts matching “(415) 555-0177”")).to_be_visible()
        shot(page, tmp_path, "contacts-search")
        page.get_by_role("link", name=f"{XSS} Silva").click()

        expect(page.get_by_role("heading", level=1)).to_have_text(f"{XSS} Silva")  # text, not an image
        assert page.locator("main img").count() == 0
        ledger = page.get_by_role("region", name="History (the consent ledger), newest first")
        expect(ledger).to_contain_text("paper form 12")
        expect(ledger).to_contain_text("import")
        messages = page.get_by_role("region", name="Messages, newest first")
        expect(messages).to_contain_text(f"Your order for {XSS} is on its way")
        expect(messages).to_contain_text("JST")  # the contact's zone ...
        expect(messages.locator(".yours").first).to_contain_text("yours:")  # ... and the viewer's
        axe_check(page)
        shot(page, tmp_path, "contact-desktop")

        with page.expect_download() as download:
            page.get_by_role("link", name="Export everything (JSON)").click()
        assert download.value.suggested_filename == f"contact-{contact['id']}.json"
        exported = json.loads(Path(download.value.path()).read_text())
        assert exported["contact"]["attributes"]["first_name"] == XSS
        assert exported["consent_history"][0]["evidence"] == "paper form 12" and len(exported["messages"]) == 1

        page.set_viewport_size({"width": PHONE, "height": 800})
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE  # wide tables scroll or stack, the page does not
        axe_check(page)
        shot(page, tmp_path, "contact-phone")

        confirm = page.get_by_label(f"Type {NUMBER} to confirm")
        confirm.fill("(415) 555-0177")
        page.get_by_role("button", name="Erase contact").click()
        expect(page.get_by_role("alert")).to_contain_text("Nothing was erased")
        shot(page, tmp_path, "erase-refused")
        page.get_by_label(f"Type {NUMBER} to confirm").fill(NUMBER)
        page.get_by_role("button", name="Erase contact").click()
        expect(page.get_by_role("status")).to_have_text("The contact and everything held about them was erased.")
        expect(page.get_by_text("No contacts yet.")).to_be_visible()
        axe_check(page)
        shot(page, tmp_path, "contacts-phone")
        with server.client() as api:
            assert api.get(f"/v1/contacts/{contact['id']}").status_code == 404
        assert dialogs == []
    finally:
        server.terminate()
