"""The users page, the bootstrap admin and `empathic users` on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from empathic.api.app import create_app
from empathic.cli import app as cli
from empathic.core import passwords
from empathic.engine.runtime import Runtime, bootstrap_admin
from empathic.store import users
from tests.conftest import make_settings
from tests.web.conftest import signed_in_client


async def _user(runtime: Runtime, email: str) -> users.User:
    async with runtime.db.transaction() as conn:
        found = await users.by_email(conn, email)
    assert found is not None
    return found


async def test_admin_adds_someone_with_a_one_time_password(runtime: Runtime) -> None:
    async with await signed_in_client(runtime, "admin", email="boss@example.com") as admin:
        page = await admin.get("/users")
        assert page.status_code == 200 and "boss@example.com" in page.text
        added = await admin.post("/users", data={"csrf": admin.csrf, "email": "New.Agent@Example.com", "role": "agent",
                                                 "name": "<b>Nia</b>"})
        assert added.status_code == 201 and "new.agent@example.com" in added.text
        assert "&lt;b&gt;Nia&lt;/b&gt;" in added.text and "<b>Nia</b>" not in added.text
        password = re.search(r'<code class="password">([^<]+)</code>', added.text)
        assert password
        user = await _user(runtime, "new.agent@example.com")
        assert user.role == "agent" and user.must_change_password
        assert passwords.verify(user.password_hash, password.group(1))
        again = await admin.post("/users", data={"csrf": admin.csrf, "email": "new.agent@example.com", "role": "agent"})
        assert again.status_code == 400 and "already has an account" in again.text
        bad = await admin.post("/users", data={"csrf": admin.csrf, "email": "not an email", "role": "agent"})
        assert bad.status_code == 400 and "not an email address" in bad.text
        role = await admin.post("/users", data={"csrf": admin.csrf, "email": "x@example.com", "role": "owner"})
        assert role.status_code == 400 and "one of admin, agent, viewer" in role.text
        assert "class=\"password\"" not in (await admin.get("/users")).text  # shown once only


async def test_admin_changes_role_disables_resets_and_signs_out(runtime: Runtime) -> None:
    app = create_app(runtime)
    async with await signed_in_client(runtime, "admin", app=app) as admin, \
            await signed_in_client(runtime, "agent", app=app) as agent:
        assert (await agent.get("/account")).status_code == 200
        where = f"/users/{agent.user_id}"
        viewer = await admin.post(f"{where}/role", data={"csrf": admin.csrf, "role": "viewer"})
        assert viewer.status_code == 200 and "is now viewer" in viewer.text
        assert (await agent.post("/v1/contacts", json={"phone": "+14155550140"},
                                 headers={"X-CSRF-Token": agent.csrf})).status_code == 403
        assert (await admin.post(f"{where}/role", data={"csrf": admin.csrf, "role": "god"})).status_code == 400
        out = await admin.post(f"{where}/signout-everywhere", data={"csrf": admin.csrf})
        assert out.status_code == 200 and "(1 session)" in out.text
        assert (await agent.get("/account")).status_code == 303
        disabled = await admin.post(f"{where}/disable", data={"csrf": admin.csrf})
        assert disabled.status_code == 200 and "Disabled" in disabled.text
        assert (await _user(runtime, agent.email)).disabled_at is not None
        assert (await admin.post(f"{where}/enable", data={"csrf": admin.csrf})).status_code == 200
        assert (await _user(runtime, agent.email)).disabled_at is None
        reset = await admin.post(f"{where}/reset-password", data={"csrf": admin.csrf})
        assert reset.status_code == 200 and 'class="password"' in reset.text
        assert (await _user(runtime, agent.email)).must_change_password
        own = await admin.post(f"/users/{admin.user_id}/role", data={"csrf": admin.csrf, "role": "viewer"})
        assert own.status_code == 400 and (await _user(runtime, admin.email)).role == "admin"


async def test_only_admins_and_only_their_workspace(runtime: Runtime) -> None:
    app = create_app(runtime)
    async with await signed_in_client(runtime, "admin", app=app) as admin_a, \
            await signed_in_client(runtime, "agent", app=app) as agent_a, \
            await signed_in_client(runtime, "viewer", app=app) as viewer_a, \
            await signed_in_client(runtime, "admin", workspace_id="ws_b", app=app) as admin_b:
        for client in (agent_a, viewer_a):
            assert (await client.get("/users")).status_code == 403
            assert (await client.post("/users", data={"csrf": client.csrf, "email": "e@example.com", "role": "admin"})).status_code == 403
            assert (await client.post(f"/users/{client.user_id}/role", data={"csrf": client.csrf, "role": "admin"})).status_code == 403
        page_b = await admin_b.get("/users")
        assert page_b.status_code == 200 and admin_b.email in page_b.text
        assert admin_a.email not in page_b.text and agent_a.email not in page_b.text
        for action in ("role", "disable", "enable", "reset-password", "signout-everywhere"):
            refused = await admin_b.post(f"/users/{agent_a.user_id}/{action}", data={"csrf": admin_b.csrf, "role": "viewer"})
            assert refused.status_code == 404, action
        assert (await _user(runtime, agent_a.email)).role == "agent"
        assert (await agent_a.get("/account")).status_code == 200
        assert (await admin_a.post("/users/usr_missing/disable", data={"csrf": admin_a.csrf})).status_code == 404


async def _enabled_admins(runtime: Runtime, workspace_id: str) -> list[str]:
    async with runtime.db.transaction() as conn:
        return [u.email for u in await users.of_workspace(conn, workspace_id) if u.role == "admin" and u.disabled_at is None]


@pytest.mark.parametrize("change", ["role", "disable"])
async def test_two_admins_demoting_each_other_at_once_leave_one(runtime: Runtime, change: str) -> None:
    app = create_app(runtime)
    async with await signed_in_client(runtime, "admin", workspace_id="ws_two", app=app) as ana, \
            await signed_in_client(runtime, "admin", workspace_id="ws_two", app=app) as bob:

        async def demote(user_id: str) -> None:
            async with runtime.db.transaction() as conn:
                user = await users.get(conn, "ws_two", user_id)
                assert user is not None
                if change == "role":
                    await users.set_role(conn, user, "viewer", runtime.now())
                else:
                    await users.set_disabled(conn, user, True, runtime.now())
                await asyncio.sleep(0.2)  # both transactions open at once

        results = await asyncio.gather(demote(ana.user_id), demote(bob.user_id), return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["LastAdmin", "NoneType"], results
        remaining = await _enabled_admins(runtime, "ws_two")
        assert len(remaining) == 1
        last = ana if ana.email in remaining else bob
        async with runtime.db.transaction() as conn:
            user = await users.get(conn, "ws_two", last.user_id)
            assert user is not None
            await users.set_role(conn, user, "admin", runtime.now())  # staying admin is no change
            with pytest.raises(users.LastAdmin, match="last enabled admin"):
                await users.set_disabled(conn, user, True, runtime.now())


async def test_two_admins_demoting_each_other_through_the_page_leave_one(runtime: Runtime) -> None:
    app = create_app(runtime)
    async with await signed_in_client(runtime, "admin", workspace_id="ws_two", app=app) as ana, \
            await signed_in_client(runtime, "admin", workspace_id="ws_two", app=app) as bob:
        answers = await asyncio.gather(
            ana.post(f"/users/{bob.user_id}/disable", data={"csrf": ana.csrf}),
            bob.post(f"/users/{ana.user_id}/disable", data={"csrf": bob.csrf}),
        )
        assert sorted(a.status_code for a in answers)[0] == 200 and len(await _enabled_admins(runtime, "ws_two")) == 1
        refused = max(answers, key=lambda a: a.status_code)
        assert refused.status_code in (400, 403)  # refused: the last admin, or no longer an admin at all
        if refused.status_code == 400:
            assert "last enabled admin" in refused.text


# -- the bootstrap admin ----------------------------------------------------------------------


async def test_bootstrap_admin_made_at_start_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, bootstrap_admin="Root@Example.com:a long password")
    for _ in range(2):  # a second start finds it there and leaves it
        rt = Runtime(settings)
        await rt.start()
        try:
            async with rt.db.transaction() as conn:
                found = await users.by_email(conn, "root@example.com")
                assert found is not None and found.role == "admin" and found.workspace_id == rt.workspace_id
                assert passwords.verify(found.password_hash, "a long password") and not found.must_change_password
                assert len(await users.of_workspace(conn, rt.workspace_id)) == 1
        finally:
            await rt.stop()


@pytest.mark.parametrize("value, says", [
    ("root@example.com", "EMAIL:PASSWORD"),
    ("root:a long password", "not an email address"),
    ("root@example.com:short", "at least 10 characters"),
])
def test_bad_bootstrap_admin_is_a_clear_error(tmp_path: Path, value: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as caught:
        Runtime(make_settings(tmp_path, bootstrap_admin=value))
    assert "EMPATHIC_BOOTSTRAP_ADMIN" in str(caught.value) and "short" not in str(caught.value).split(":", 1)[0]
    assert bootstrap_admin(None) is None


# -- the command line -------------------------------------------------------------------------


def test_cli_create_list_and_reset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMPATHIC_DATABASE_URL", raising=False)
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    made = runner.invoke(cli, ["users", "create", "Ops@Example.com", "--role", "admin", *data])
    assert made.exit_code == 0, made.output
    one_time = made.output.strip().splitlines()[-1]
    assert len(one_time) == 16 and "ops@example.com" in made.output
    chosen = runner.invoke(cli, ["users", "create", "agent@example.com", "--role", "agent", "--password-stdin",
                                 "--workspace", "ws_b", *data], input="my chosen password\n")
    assert chosen.exit_code == 0, chosen.output
    assert "One-time" not in chosen.output
    again = runner.invoke(cli, ["users", "create", "ops@example.com", *data])
    assert again.exit_code == 1 and "already has an account" in again.output
    short = runner.invoke(cli, ["users", "create", "x@example.com", "--password-stdin", *data], input="short\n")
    assert short.exit_code == 2 and "at least 10 characters" in short.output
    bad_role = runner.invoke(cli, ["users", "create", "x@example.com", "--role", "owner", *data])
    assert bad_role.exit_code == 2 and "one of admin, agent, viewer" in bad_role.output
    listed = runner.invoke(cli, ["users", "list", *data])
    assert listed.exit_code == 0
    assert "ops@example.com\tadmin\tws_default\tmust choose a password" in listed.output
    assert "agent@example.com\tagent\tws_b\tactive" in listed.output
    only_b = runner.invoke(cli, ["users", "list", "--workspace", "ws_b", *data])
    assert "ops@example.com" not in only_b.output
    reset = runner.invoke(cli, ["users", "reset-password", "agent@example.com", *data])
    assert reset.exit_code == 0 and len(reset.output.strip().splitlines()[-1]) == 16
    assert "must choose a password" in runner.invoke(cli, ["users", "list", "--workspace", "ws_b", *data]).output
    missing = runner.invoke(cli, ["users", "reset-password", "nobody@example.com", *data])
    assert missing.exit_code == 1 and "No one has" in missing.output
