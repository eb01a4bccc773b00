"""Signing in through the page, in Chromium, against a real `empathic serve` started with
EMPATHIC_BOOTSTRAP_ADMIN; the sign-in page checked by axe-core on a phone and a desktop."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import DESKTOP, PHONE, Pages, axe_check, browser, shot  # noqa: F401 - browser: a fixture
from tests.e2e.server import Server

EMAIL, PASSWORD = "root@example.com", "a long admin password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module (each test signs in as a person of its own, but the admin)."""
    folder = tmp_path_factory.mktemp("signin-server")
    running = Server(folder / "data", folder, env={"EMPATHIC_BOOTSTRAP_ADMIN": f"{EMAIL}:{PASSWORD}"})
    running.start()
    try:
        yield running
    finally:
        running.terminate()


def sign_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def add_person(page: Page, server: Server, email: str) -> str:
    """The admin adds an agent on the users page; their one-time password."""
    page.goto(f"{server.url}/")
    sign_in(page, EMAIL, PASSWORD)
    page.goto(f"{server.url}/users")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Role", exact=True).select_option("agent")
    page.get_by_role("button", name="Add").click()
    return page.locator("code.password").inner_text()


def test_sign_in_lands_on_the_inbox_and_signs_out(server: Server, browser: Pages, tmp_path: Path) -> None:  # noqa: F811
    page = browser.page(DESKTOP)
    page.goto(f"{server.url}/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    axe_check(page)
    shot(page, tmp_path, "signin-desktop")
    sign_in(page, EMAIL, PASSWORD)
    expect(page).to_have_url(re.compile(r"/inbox$"))
    expect(page.locator("header .me")).to_contain_text(EMAIL)
    shot(page, tmp_path, "signed-in")
    for where, heading in (("/users", "Users"), ("/account", "Your account")):
        page.goto(f"{server.url}{where}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        axe_check(page)
        shot(page, tmp_path, where.strip("/"))
    page.set_viewport_size({"width": PHONE, "height": 800})
    page.goto(f"{server.url}/users")
    axe_check(page)
    shot(page, tmp_path, "users-phone")
    page.goto(f"{server.url}/")  # signed in: / goes to the inbox
    expect(page).to_have_url(re.compile(r"/inbox$"))
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto(f"{server.url}/account")
    expect(page).to_have_url(re.compile(r"/\?next=%2Faccount$"))


def test_admin_adds_someone_who_chooses_a_password(server: Server, browser: Pages, tmp_path: Path) -> None:  # noqa: F811
    page = browser.page(DESKTOP)
    one_time = add_person(page, server, "nia@example.com")
    shot(page, tmp_path, "users-added")
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "nia@example.com", one_time)
    expect(page).to_have_url(re.compile(r"/account/password$"))
    expect(page.get_by_role("heading", name="Choose your password")).to_be_visible()
    axe_check(page)
    page.get_by_label("New password", exact=True).fill("nia's own passphrase")
    page.get_by_label("New password again").fill("nia's own passphrase")
    page.get_by_role("button", name="Save and go on").click()
    expect(page).to_have_url(re.compile(r"/inbox$"))
    expect(page.locator("header .me")).to_contain_text("nia@example.com")
    expect(page.get_by_role("link", name="Users")).to_have_count(0)  # an agent's menu


def test_wrong_password_then_locked(server: Server, browser: Pages, tmp_path: Path) -> None:  # noqa: F811
    email = "locked@example.com"
    one_time = add_person(browser.page(DESKTOP), server, email)
    page = browser.page(PHONE, 800)
    page.goto(f"{server.url}/")
    axe_check(page)
    shot(page, tmp_path, "signin-phone")
    sign_in(page, email, "not the password")
    expect(page.get_by_role("alert")).to_contain_text("do not match an account")
    expect(page.get_by_label("Email")).to_have_value(email)
    axe_check(page)
    shot(page, tmp_path, "signin-wrong")
    for _ in range(4):
        sign_in(page, email, "not the password")
    expect(page.get_by_role("alert")).to_contain_text("locked")
    expect(page.get_by_role("alert")).to_contain_text("Try again after")
    shot(page, tmp_path, "signin-locked")
    sign_in(page, email, one_time)  # locked: even the right password waits
    expect(page.get_by_role("alert")).to_contain_text("locked")
