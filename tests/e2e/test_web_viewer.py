"""A viewer in a real browser against a real `empathic serve`: they read the inbox, a thread
and a contact, find no form that would change anything, and are refused what they try anyway
(the users page, a reply posted with their own valid CSRF token, an API change with their
session); nothing changes. axe-core finds nothing serious on the refusal page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.browser import DESKTOP, Pages, axe_check, browser, shot, sign_in  # noqa: F401 (browser: a fixture)
from tests.e2e.server import Server, eventually

VIEWER, PASSWORD = "viewer@example.com", "only-looking-1234"
NUMBER = "+14155550191"


def test_a_viewer_reads_and_is_refused_every_change(tmp_path: Path, browser: Pages) -> None:  # noqa: F811
    server = Server(tmp_path / "data", tmp_path)
    try:
        server.start()
        made = subprocess.run(
            [sys.executable, "-m", "empathic.cli", "users", "create", VIEWER, "--role", "viewer", "--password-stdin",
             "--data-dir", str(server.data_dir)],
            input=PASSWORD + "\n", capture_output=True, text=True, timeout=60,
        )
        assert made.returncode == 0, made.stderr
        with server.client() as api:
            api.post(f"/v1/simulator/phones/{NUMBER}/messages", json={"body": "Is my order late?"}).raise_for_status()
            (thread,) = eventually(lambda: api.get("/v1/inbox").json()["data"] or None, what="the thread")

            page = browser.page(DESKTOP)
            page.goto(f"{server.url}/")
            sign_in(page, VIEWER, PASSWORD)
            expect(page.get_by_role("heading", name="Inbox", exact=True)).to_be_visible()
            expect(page.get_by_role("link", name="Users")).to_have_count(0)  # not in a viewer's menu

            page.goto(f"{server.url}/inbox/{thread['id']}")
            expect(page.locator(".entry.inbound").last).to_contain_text("Is my order late?")
            assert page.locator("form[method=post]").filter(has_not=page.locator("button", has_text="Sign out")).count() == 0
            expect(page.get_by_label("Your reply")).to_have_count(0)

            # What the page does not offer, tried by hand with the viewer's own valid token.
            csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
            statuses = page.evaluate(
                """async ([thread, csrf]) => {
                  const form = new URLSearchParams({csrf, body: "sneaky", key: "k1"});
                  const page = await fetch(`/inbox/${thread}/reply`, {method: "POST", body: form});
                  const api = await fetch(`/v1/inbox/${thread}/messages`, {method: "POST",
                    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                    body: JSON.stringify({body: "sneaky"})});
                  return [page.status, api.status];
                }""",
                [thread["id"], csrf],
            )
            assert statuses == [403, 403]

            page.goto(f"{server.url}/users")
            expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
            axe_check(page)
            shot(page, tmp_path, "viewer-refused")
            bodies = [m["body"] for m in api.get(f"/v1/simulator/phones/{NUMBER}/messages").json()["messages"]]
            assert "sneaky" not in bodies
    finally:
        for context in browser.browser.contexts:
            context.close()
        server.terminate()
