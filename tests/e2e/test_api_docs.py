"""/docs works with no network: Swagger UI comes from the package, and the browser is refused
every request that leaves the server (as on a machine without the internet)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Route

from tests.e2e.browser import Pages, axe_check, browser, shot  # noqa: F401 - browser is a fixture
from tests.e2e.server import Server


def test_api_docs_render_offline_from_the_package(tmp_path: Path, browser: Pages) -> None:
    server = Server(tmp_path / "data", tmp_path)
    server.start()
    try:
        page = browser.page()
        elsewhere: list[str] = []
        refused_by_csp: list[str] = []

        def only_the_server(route: Route) -> None:
            if route.request.url.startswith(server.url):
                route.continue_()
            else:
                elsewhere.append(route.request.url)
                route.abort()

        page.route("**/*", only_the_server)
        page.on("console", lambda m: refused_by_csp.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(f"{server.url}/docs")
        page.get_by_role("heading", name="Empathic").wait_for()
        messages = page.locator(".opblock-tag", has_text="messages")
        messages.first.wait_for()
        assert page.locator(".opblock-summary-path", has_text="/v1/messages").count() >= 1
        shot(page, tmp_path, "docs")
        assert elsewhere == [] and refused_by_csp == []
        assert page.request.get(f"{server.url}/redoc").status == 404
    finally:
        server.terminate()
