"""The people who sign in to the web app (`users`) and their signed-in browsers (`web_sessions`).

An email belongs to one person across all workspaces (stored lower-cased). A session's cookie
holds 32 random bytes; the table keeps only their SHA-256, so a copy of the database signs no
one in. A session ends after 12 hours unused or 7 days in all, when its person signs out
everywhere, changes their password, or is disabled. Its CSRF token is an HMAC of the cookie's
token: only a page the server rendered for that browser knows it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Literal, get_args

from sqlalchemy import ColumnElement, case, delete, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.emails import InvalidEmail, normalize_email
from empathic.core.errors import InputError
from empathic.core.ids import new_id
from empathic.store.schema import users, web_sessions

Role = Literal["admin", "agent", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)

COOKIE = "empathic_session"  # the session's token, in the browser
IDLE = timedelta(hours=12)
ABSOLUTE = timedelta(days=7)
SEEN_EVERY = timedelta(minutes=1)  # seen_at is written at most this often
LOCK_AFTER = 5  # failures in a row
LOCK_FOR = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class User:
    """A stored person: the `users` table's columns, by name."""

    id: str
    workspace_id: str
    email: str
    name: str | None
    role: Role
    password_hash: str
    must_change_password: bool
    failed_signins: int
    locked_until: datetime | None
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser and its person (as they are now: role and state read afresh)."""

    token_hash: str
    user: User
    created_at: datetime
    seen_at: datetime
    expires_at: datetime


_COLUMNS = tuple(f.name for f in fields(User))


class EmailTaken(InputError):
    def __init__(self, email: str) -> None:
        super().__init__("email", f"{email} already has an account", message=f"{email} already has an account.")


class LastAdmin(InputError):
    """A change that would leave a workspace without an enabled admin."""

    def __init__(self, email: str) -> None:
        super().__init__("role", "a workspace keeps at least one enabled admin",
                         message=f"{email} is the last enabled admin of this workspace; make someone else admin first.")


def normalize(email: str) -> str:
    """The stored form of an email: checked, lower-cased. InputError when it is not one."""
    try:
        return normalize_email(email).lower()
    except InvalidEmail as exc:
        raise InputError("email", str(exc), message=f"That is not an email address such as ana@example.com: {email.strip()!r}.") from None


def role_of(value: str) -> Role:
    if value not in ROLES:
        raise InputError("role", f"must be one of {', '.join(ROLES)}", message=f"A role is one of {', '.join(ROLES)}.")
    return value


def _user(row: object) -> User:
    values = dict(zip(_COLUMNS, (getattr(row, name) for name in _COLUMNS), strict=True))
    values["must_change_password"] = bool(values["must_change_password"])
    return User(**values)


async def create(
    conn: AsyncConnection, workspace_id: str, email: str, role: str, password_hash: str, now: datetime, *,
    name: str | None = None, must_change_password: bool = False,
) -> User:
    """A new person (EmailTaken when the email has an account in any workspace)."""
    address = normalize(email)
    if await by_email(conn, address) is not None:
        raise EmailTaken(address)
    user = User(
        id=new_id("usr"), workspace_id=workspace_id, email=address, name=(name or "").strip() or None,
        role=role_of(role), password_hash=password_hash, must_change_password=must_change_password,
        failed_signins=0, locked_until=None, disabled_at=None, created_at=now, updated_at=now,
    )
    await conn.execute(insert(users).values({name: getattr(user, name) for name in _COLUMNS}))
    return user


async def by_email(conn: AsyncConnection, email: str) -> User | None:
    try:
        address = normalize(email)
    except InputError:
        return None
    row = (await conn.execute(select(users).where(users.c.email == address))).first()
    return _user(row) if row else None


async def get(conn: AsyncConnection, workspace_id: str, user_id: str) -> User | None:
    """A person of this workspace (None for another workspace's, as for a missing one)."""
    row = (await conn.execute(select(users).where(users.c.id == user_id, users.c.workspace_id == workspace_id))).first()
    return _user(row) if row else None


async def of_workspace(conn: AsyncConnection, workspace_id: str) -> list[User]:
    rows = await conn.execute(select(users).where(users.c.workspace_id == workspace_id).order_by(users.c.email))
    return [_user(row) for row in rows]


async def _set(conn: AsyncConnection, user: User, now: datetime, **values: object) -> User:
    await conn.execute(update(users).where(users.c.id == user.id).values(updated_at=now, **values))
    found = await get(conn, user.workspace_id, user.id)
    assert found is not None
    return found


async def _keep_an_admin(conn: AsyncConnection, user: User) -> None:
    """LastAdmin when `user` is the only enabled admin of their workspace. The workspace's
    enabled admins are locked (FOR UPDATE) until the transaction ends, so two admins demoting
    or disabling each other at once are taken one after the other and the second is refused.
    (SQLite runs one writing transaction at a time.)"""
    admins = (await conn.execute(
        select(users.c.id)
        .where(users.c.workspace_id == user.workspace_id, users.c.role == "admin", users.c.disabled_at.is_(None))
        .with_for_update()
    )).scalars().all()
    if user.id in admins and len(admins) == 1:
        raise LastAdmin(user.email)


async def set_role(conn: AsyncConnection, user: User, role: str, now: datetime) -> User:
    """A new role (LastAdmin when it would leave the workspace no enabled admin)."""
    role = role_of(role)
    if role != "admin":
        await _keep_an_admin(conn, user)
    return await _set(conn, user, now, role=role)


async def set_disabled(conn: AsyncConnection, user: User, disabled: bool, now: datetime) -> User:
    """Disable (their sessions end) or enable a person (LastAdmin when disabling would leave
    the workspace no enabled admin)."""
    if disabled:
        await _keep_an_admin(conn, user)
        await end_sessions(conn, user.id)
    return await _set(conn, user, now, disabled_at=now if disabled else None)


async def set_password(
    conn: AsyncConnection, user: User, password_hash: str, now: datetime, *, must_change: bool = False,
) -> User:
    """A new password; every session of the person ends (one who chose it is given a new
    one: `open_session`). The failure count starts again, and an admin's reset (`must_change`)
    unlocks the account."""
    await end_sessions(conn, user.id)
    return await _set(
        conn, user, now, password_hash=password_hash, must_change_password=must_change, failed_signins=0, locked_until=None,
    )


async def rehash(conn: AsyncConnection, user: User, password_hash: str, now: datetime) -> None:
    """The same password hashed with today's parameters."""
    await conn.execute(update(users).where(users.c.id == user.id).values(password_hash=password_hash, updated_at=now))


def _unlocked(now: datetime) -> ColumnElement[bool]:
    return or_(users.c.locked_until.is_(None), users.c.locked_until <= now)


async def attempt(conn: AsyncConnection, user: User, now: datetime) -> int | None:
    """Count a password check before it is made, as if it failed: its number in the row of
    failures (after a lock ran out, a new row), or None when the account is locked. The
    LOCK_AFTER-th locks the account for LOCK_FOR at once, so guesses sent all together get
    at most LOCK_AFTER checks. One conditional UPDATE: concurrent attempts cannot all pass."""
    count = case((users.c.locked_until.is_not(None), 1), else_=users.c.failed_signins + 1)
    changed = await conn.execute(
        update(users)
        .where(users.c.id == user.id, _unlocked(now))
        .values(failed_signins=count, locked_until=case((count >= LOCK_AFTER, literal(now + LOCK_FOR, users.c.locked_until.type)), else_=None))
    )
    if not changed.rowcount:
        return None
    found = await get(conn, user.workspace_id, user.id)
    assert found is not None
    return found.failed_signins


async def succeeded(conn: AsyncConnection, user: User, attempt_number: int, now: datetime) -> bool:
    """A right password at attempt `attempt_number`: the count starts again. False (nothing
    changes) when the account was locked meanwhile by other attempts; the attempt that
    locked it may still succeed (no one could try after it)."""
    changed = await conn.execute(
        update(users)
        .where(users.c.id == user.id, or_(_unlocked(now), users.c.failed_signins == attempt_number))
        .values(failed_signins=0, locked_until=None)
    )
    return bool(changed.rowcount)


# -- sessions -------------------------------------------------------------------------------


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def csrf_token(token: str) -> str:
    """The CSRF token of the session whose cookie holds `token`."""
    digest = hmac.new(token.encode("utf-8", "surrogatepass"), b"empathic csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_valid(token: str, given: str) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(token).encode(), given.encode("utf-8", "surrogatepass"))


async def open_session(conn: AsyncConnection, user: User, now: datetime) -> str:
    """A new session of `user`; its token (for the cookie, never stored)."""
    token = new_token()
    await conn.execute(
        insert(web_sessions).values(
            token_hash=token_hash(token), user_id=user.id, workspace_id=user.workspace_id, created_at=now, seen_at=now,
            expires_at=now + ABSOLUTE,
        )
    )
    return token


async def session(conn: AsyncConnection, token: str, now: datetime, *, mark_seen: bool = True) -> Session | None:
    """The live session whose cookie holds `token`, with its person as they are now; None when
    there is none, it expired (unused for IDLE, or older than ABSOLUTE: then it is deleted) or
    its person is disabled. Marks it seen (at most once a SEEN_EVERY) unless `mark_seen` is
    False (a look that is no use of it, such as an open stream's)."""
    if not token or len(token) > 200:
        return None
    digest = token_hash(token)
    row = (
        await conn.execute(
            select(web_sessions.c.created_at.label("session_created_at"), web_sessions.c.seen_at, web_sessions.c.expires_at, *users.c)
            .join(users, users.c.id == web_sessions.c.user_id)
            .where(web_sessions.c.token_hash == digest)
        )
    ).first()
    if row is None:
        return None
    if row.expires_at <= now or row.seen_at + IDLE <= now:
        await conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == digest))
        return None
    user = _user(row)
    if user.disabled_at is not None:
        return None
    seen = row.seen_at
    if mark_seen and now - seen >= SEEN_EVERY:
        await conn.execute(update(web_sessions).where(web_sessions.c.token_hash == digest).values(seen_at=now))
        seen = now
    return Session(token_hash=digest, user=user, created_at=row.session_created_at, seen_at=seen, expires_at=row.expires_at)


async def end_session(conn: AsyncConnection, token: str) -> None:
    await conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == token_hash(token)))


async def end_sessions(conn: AsyncConnection, user_id: str) -> int:
    """Sign a person out everywhere; how many sessions ended."""
    return (await conn.execute(delete(web_sessions).where(web_sessions.c.user_id == user_id))).rowcount or 0


async def sessions_of(conn: AsyncConnection, user_id: str) -> int:
    rows = await conn.execute(select(web_sessions.c.token_hash).where(web_sessions.c.user_id == user_id))
    return len(rows.all())
