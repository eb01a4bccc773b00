"""Signed links: a page a person can open without logging in (their preference page).

A token names the workspace, the contact and an expiry, and carries an HMAC-SHA256 of those
under a key derived from the workspace's secret. It reveals no phone number or email, and
cannot be altered or reused after it expires. Layout (URL-safe):
`<workspace>.<contact>.<expiry, Unix seconds>.<signature, base64url>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class BadLink(ValueError):
    """A token that is malformed, forged or expired; the message says which."""


@dataclass(frozen=True, slots=True)
class Link:
    workspace_id: str
    contact_id: str
    expires_at: datetime


def sign(key: bytes, workspace_id: str, contact_id: str, expires_at: datetime) -> str:
    for part in (workspace_id, contact_id):
        if not part or not set(part) <= _SAFE:
            raise ValueError(f"{part!r} cannot be carried in a link")
    payload = f"{workspace_id}.{contact_id}.{int(expires_at.timestamp())}"
    return f"{payload}.{_mac(key, payload)}"


def workspace_of(token: str) -> str:
    """The workspace a token claims (not yet verified: only to find the key to verify with)."""
    parts = token.split(".")
    if len(parts) != 4 or not all(parts):
        raise BadLink("this link is incomplete")
    return parts[0]


def verify(key: bytes, token: str, now: datetime) -> Link:
    workspace_id = workspace_of(token)
    _, contact_id, expires, given = token.split(".")
    payload = token.rsplit(".", 1)[0]
    # Compared as bytes: a signature with characters outside ASCII is simply wrong, not an error.
    if not hmac.compare_digest(_mac(key, payload).encode(), given.encode("utf-8", "surrogatepass")):
        raise BadLink("this link is not valid")
    if not expires.isdigit():
        raise BadLink("this link is not valid")
    expires_at = datetime.fromtimestamp(int(expires), UTC)
    if now >= expires_at:
        raise BadLink("this link has expired; ask for a new one")
    return Link(workspace_id, contact_id, expires_at)


def _mac(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
