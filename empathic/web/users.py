"""Users of a workspace, managed by its admins (F): list, create (a one-time password shown
once), change a role, disable or enable, reset a password, sign someone out everywhere.

An admin changes others, never their own role or state; a change that would leave the
workspace no enabled admin is refused (two admins demoting each other at once: the second).
Their own password is on /account. Another workspace's person answers 404, as a missing one does.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from empathic.core import passwords
from empathic.core.errors import InputError
from empathic.engine.runtime import runtime_of
from empathic.store import users
from empathic.store.users import User
from empathic.web.auth import Person, administering
from empathic.web.pages import render

router = APIRouter(include_in_schema=False)
Admin = Annotated[Person, Depends(administering)]
ROLE_LABELS = {"admin": "Admin: everything, and people", "agent": "Agent: answers and changes",
               "viewer": "Viewer: reads only"}


async def _page(
    request: Request, person: Person, *, status: int = 200, done: str | None = None, error: str | None = None,
    one_time: tuple[str, str] | None = None, form: dict[str, str] | None = None,
) -> HTMLResponse:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        people = await users.of_workspace(conn, person.workspace_id)
    return render(
        request, "users.html", status=status, person=person, people=people, now=rt.now(), roles=users.ROLES, role_labels=ROLE_LABELS,
        done=done, error=error, one_time=one_time, form=form or {"email": "", "name": "", "role": "agent"},
    )


@router.get("/users", response_class=HTMLResponse)
async def show(request: Request, person: Admin) -> HTMLResponse:
    return await _page(request, person)


@router.post("/users", response_class=HTMLResponse)
async def create(request: Request, person: Admin) -> HTMLResponse:
    rt = runtime_of(request)
    form = await request.form()
    given = {name: _text(form.get(name)).strip() for name in ("email", "name", "role")}
    password = passwords.one_time()
    hashed = await asyncio.to_thread(passwords.hash_password, password)
    try:
        async with rt.db.transaction() as conn:
            user = await users.create(conn, person.workspace_id, given["email"], given["role"], hashed, rt.now(),
                                      name=given["name"] or None, must_change_password=True)
    except InputError as exc:
        return await _page(request, person, status=400, error=f"{exc} Nobody was added.", form=given)
    return await _page(request, person, status=201, done=f"Added {user.email} as {user.role}.",
                       one_time=(user.email, password))


async def _other(request: Request, person: Person, user_id: str) -> User | HTMLResponse:
    """The person of this workspace an admin acts on, else the page saying why not."""
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        user = await users.get(conn, person.workspace_id, user_id)
    if user is None:
        return await _page(request, person, status=404, error="There is no such person in this workspace.")
    if user.id == person.user_id:
        return await _page(request, person, status=400,
                           error="You cannot change your own role or access here; another admin can. "
                                 "Your password is on your account page.")
    return user


@router.post("/users/{user_id}/role", response_class=HTMLResponse)
async def change_role(request: Request, user_id: str, person: Admin) -> HTMLResponse:
    user = await _other(request, person, user_id)
    if isinstance(user, HTMLResponse):
        return user
    rt = runtime_of(request)
    role = _text((await request.form()).get("role"))
    try:
        async with rt.db.transaction() as conn:
            user = await users.set_role(conn, user, role, rt.now())
    except InputError as exc:
        return await _page(request, person, status=400, error=f"{exc} Nothing was changed.")
    return await _page(request, person, done=f"{user.email} is now {user.role}; it counts from their next click.")


@router.post("/users/{user_id}/disable", response_class=HTMLResponse)
async def disable(request: Request, user_id: str, person: Admin) -> HTMLResponse:
    return await _set_disabled(request, user_id, person, True)


@router.post("/users/{user_id}/enable", response_class=HTMLResponse)
async def enable(request: Request, user_id: str, person: Admin) -> HTMLResponse:
    return await _set_disabled(request, user_id, person, False)


async def _set_disabled(request: Request, user_id: str, person: Person, disabled: bool) -> HTMLResponse:
    user = await _other(request, person, user_id)
    if isinstance(user, HTMLResponse):
        return user
    rt = runtime_of(request)
    try:
        async with rt.db.transaction() as conn:
            user = await users.set_disabled(conn, user, disabled, rt.now())
    except InputError as exc:  # the last enabled admin
        return await _page(request, person, status=400, error=f"{exc} Nothing was changed.")
    return await _page(request, person, done=f"{user.email} is disabled and signed out." if disabled
                       else f"{user.email} may sign in again.")


@router.post("/users/{user_id}/reset-password", response_class=HTMLResponse)
async def reset_password(request: Request, user_id: str, person: Admin) -> HTMLResponse:
    user = await _other(request, person, user_id)
    if isinstance(user, HTMLResponse):
        return user
    rt = runtime_of(request)
    password = passwords.one_time()
    hashed = await asyncio.to_thread(passwords.hash_password, password)
    async with rt.db.transaction() as conn:
        user = await users.set_password(conn, user, hashed, rt.now(), must_change=True)
    return await _page(request, person, done=f"{user.email} has a new one-time password and is signed out.",
                       one_time=(user.email, password))


@router.post("/users/{user_id}/signout-everywhere", response_class=HTMLResponse)
async def sign_out_everywhere(request: Request, user_id: str, person: Admin) -> HTMLResponse:
    user = await _other(request, person, user_id)
    if isinstance(user, HTMLResponse):
        return user
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        ended = await users.end_sessions(conn, user.id)
    return await _page(request, person, done=f"{user.email} is signed out everywhere ({ended} session{'s' if ended != 1 else ''}).")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
