"""What every answer carries so that a page of Empathic's cannot be framed, sniffed or made to
load or post elsewhere (`SecurityHeaders`, ASGI middleware), and the per-form token that a
page's form posts back (`form_token`, `form_token_valid`).

A response that sets its own `Content-Security-Policy` keeps it (the preference page allows its
inline style); the API docs allow Swagger UI's inline styles.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Collection, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Nothing may be loaded, framed or posted to elsewhere: right for JSON and for the plain pages.
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
# The API docs (/docs): Swagger UI from the package's own static files; it styles inline.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
DOCS_PATHS = frozenset({"/docs"})
_FIXED = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = (DOCS_CSP if scope["path"] in DOCS_PATHS else STRICT_CSP).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in _FIXED if name not in present]
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", csp))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def form_token(key: bytes, page: str) -> str:
    """The token a form on `page` (its signed link) carries: only the server can make it.

    The link is itself the capability (whoever holds it can open the page and so read this
    token), so the token adds no secret of its own: it makes a POST come from a form this
    server rendered, and the same-origin check below is what refuses a post that a browser
    says came from another site."""
    digest = hmac.new(key, b"form:" + page.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def form_token_valid(key: bytes, page: str, given: str) -> bool:
    return hmac.compare_digest(form_token(key, page).encode(), given.encode("utf-8", "surrogatepass"))


def same_origin(headers: Mapping[str, str], hosts: Collection[str]) -> bool:
    """False when the browser says the request came from another site (`Sec-Fetch-Site`, else
    an `Origin` naming another host). A page under `Referrer-Policy: no-referrer` posts with
    `Origin: null`, which tells nothing (the form token must still match)."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = headers.get("origin", "null")
    return origin == "null" or origin.split("://", 1)[-1].rstrip("/") in hosts
