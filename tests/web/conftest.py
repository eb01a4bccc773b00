"""The web app's test helpers: a browser-like client signed in as a person of a given role."""

from __future__ import annotations

from typing import Any

import httpx

from empathic.api.app import create_app
from empathic.core import passwords
from empathic.engine.runtime import DEFAULT_WORKSPACE, Runtime
from empathic.store import keys
from empathic.store import users
from empathic.web.auth import SESSION_COOKIE

BASE_URL = "https://empathic.test"
PASSWORD = "correct horse battery"
_HASH: list[str] = []  # one argon2 hash per process: hashing takes tens of ms


class SignedInClient(httpx.AsyncClient):
    """An httpx client on the app holding a person's session cookie, like their browser."""

    csrf: str
    user_id: str
    workspace_id: str
    email: str
    role: str

    def __init__(self, **kwargs: Any) -> None:  # Any: httpx.AsyncClient's own options
        super().__init__(**kwargs)


def password_hash() -> str:
    """The hash of PASSWORD (made once)."""
    if not _HASH:
        _HASH.append(passwords.hash_password(PASSWORD))
    return _HASH[0]


async def signed_in_client(
    runtime: Runtime, role: str = "agent", email: str | None = None, workspace_id: str | None = None,
    *, app: Any = None, must_change_password: bool = False,  # Any: a FastAPI app to share, else a new one
) -> SignedInClient:
    """A new person of `role` (password PASSWORD) in `workspace_id` (made if missing; default
    the runtime's), signed in: the client sends their session cookie; `.csrf` is the token
    their forms carry. Unsafe requests need it: `data={"csrf": c.csrf, ...}` or
    `headers={"X-CSRF-Token": c.csrf}`."""
    workspace = workspace_id or runtime.workspace_id
    now = runtime.now()
    async with runtime.db.transaction() as conn:
        if workspace != DEFAULT_WORKSPACE:
            await keys.ensure_workspace(conn, workspace, workspace, now)
        address = email or f"{role}-{users.new_token()[:8].lower().replace('_', 'x').replace('-', 'y')}@example.com"
        user = await users.create(
            conn, workspace, address, role, password_hash(), now, must_change_password=must_change_password
        )
        token = await users.open_session(conn, user, now)
    client = SignedInClient(
        transport=httpx.ASGITransport(app=app or create_app(runtime)), base_url=BASE_URL, follow_redirects=False
    )
    client.cookies.set(SESSION_COOKIE, token, domain="empathic.test", path="/")
    client.csrf = users.csrf_token(token)
    client.user_id = user.id
    client.workspace_id = workspace
    client.email = user.email
    client.role = role
    return client
