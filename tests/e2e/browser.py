"""Browser tests' shared parts: Debian's Chromium driven by Playwright (nothing downloaded),
a page per test that saves its screenshots in the test's own folder, and axe-core (from the
npm registry, `tests/e2e/axe`, installed by .ci/run) run inside the page.

Use: `from tests.e2e.browser import browser, axe_check, shot` and take the `browser` fixture;
`browser.page(width)` opens a page (390 px: a phone, 1280: a desktop)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
PHONE, DESKTOP = 360, 1280
# What axe must not find on any page of ours.
BLOCKING = ("serious", "critical")


def chromium_path() -> str:
    found = os.environ.get("EMPATHIC_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is required for the browser tests under CI=true (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    return found


class Pages:
    """Opens pages in one browser; each page's screenshots go to the test's folder."""

    def __init__(self, browser: Browser, folder: Path) -> None:
        self.browser = browser
        self.folder = folder

    def page(self, width: int = DESKTOP, height: int = 900) -> Page:
        context = self.browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Pages]:
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        try:
            yield Pages(launched, tmp_path)
        finally:
            launched.close()


def sign_in(page: Page, email: str, password: str) -> None:
    """On the sign-in page (where a page asked for while signed out sends the browser): fill
    it in and sign in; the browser goes on to the page it asked for."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def shot(page: Page, folder: Path, name: str) -> Path:
    """A full-page screenshot saved as `<folder>/<name>.png` (the test's output folder)."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_check(page: Page) -> list[dict[str, object]]:
    """Run axe-core in the page; fail on any serious or critical violation (rule, impact and
    the first elements named). Returns every violation found, for a test that wants more."""
    if not AXE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"axe-core is required under CI=true: {AXE} (npm ci --prefix tests/e2e/axe)")
        pytest.skip("axe-core is not installed (npm ci --prefix tests/e2e/axe)")
    # Evaluated through the DevTools protocol, so the page's own CSP (no inline script) stays on.
    page.evaluate(AXE.read_text())
    violations: list[dict[str, object]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"
    )
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert not blocking, f"axe-core on {page.url}: {blocking}"
    return violations
