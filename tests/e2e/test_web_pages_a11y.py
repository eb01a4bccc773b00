"""Every page of the web app, found from its routers (a page added later is swept too), opened
by a signed-in admin in a real browser at a phone's width and a desktop's: axe-core finds no
serious or critical violation, and nothing is wider than a 360 px screen."""

from __future__ import annotations

from pathlib import Path

from fastapi.routing import APIRoute
from fastapi.responses import HTMLResponse

from empathic.web import site
from tests.e2e.browser import DESKTOP, PHONE, Pages, axe_check, browser, shot, sign_in  # noqa: F401 (browser: a fixture)
from tests.e2e.server import Server, eventually

ADMIN, PASSWORD = "admin@example.com", "some-password-123"
NUMBER = "+14155550193"


def page_paths() -> list[str]:
    """Every GET route of the web app that answers a page (the preference page has its own test)."""
    return sorted({
        route.path for module in site.PAGES if module is not site.preferences for route in module.router.routes
        if isinstance(route, APIRoute) and "GET" in route.methods and route.response_class is HTMLResponse
    })


def test_every_page_passes_axe_at_a_phones_width_and_a_desktops(tmp_path: Path, browser: Pages) -> None:  # noqa: F811
    server = Server(tmp_path / "data", tmp_path, env={"EMPATHIC_BOOTSTRAP_ADMIN": f"{ADMIN}:{PASSWORD}"})
    try:
        server.start()
        with server.client() as api:
            api.post("/v1/contacts", json={"phone": NUMBER, "attributes": {"first_name": "<img src=x onerror=alert(1)>"}})
            api.post(f"/v1/simulator/phones/{NUMBER}/messages", json={"body": "Can someone call me?"}).raise_for_status()
            (thread,) = eventually(lambda: api.get("/v1/inbox").json()["data"] or None, what="the thread")
            ids = {"thread_id": thread["id"], "contact_id": thread["contact"]["id"], "number": NUMBER,
                   "name": "fraud-alert"}
        page = browser.page(DESKTOP)
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{server.url}/inbox")
        sign_in(page, ADMIN, PASSWORD)
        page.get_by_role("heading", name="Inbox", exact=True).wait_for()
        paths = page_paths()
        assert {"/inbox/{thread_id}", "/contacts/{contact_id}", "/dashboard", "/flows/{name}", "/phone/{number}"} <= set(paths)
        for template in paths:
            path = template.format(**ids)
            for width in (PHONE, DESKTOP):
                page.set_viewport_size({"width": width, "height": 800})
                answer = page.goto(f"{server.url}{path}")
                assert answer is not None and answer.status == 200, (path, answer and answer.status)
                page.wait_for_load_state("load")
                axe_check(page)
                if width == PHONE:
                    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE, path
            shot(page, tmp_path, path.strip("/").replace("/", "_").replace("+", "") or "root")
        assert dialogs == []  # the hostile name never ran
    finally:
        for context in browser.browser.contexts:
            context.close()
        server.terminate()
