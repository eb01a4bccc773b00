"""Input no store can keep, refused before any handler reads it (`InputGuard`, ASGI middleware
on every HTTP request, API, provider hooks and pages alike):

- a body larger than its path's limit (`body_limit`: 1 MiB, a batch of messages 8 MiB) is
  answered 413 as soon as the limit is passed, before it is parsed;
- a NUL character (PostgreSQL text holds none) in the path, query or body is answered 400;
- a lone UTF-16 surrogate in a JSON body (`"\\udfff"`: valid JSON, but no UTF-8 text can hold
  it) is answered 422 naming the field where it is.

Providers' callbacks (`/hooks/`) get only the size limit: their channels check signatures
and the engine makes a carrier's text storable rather than refuse a customer's words.

Free-form JSON that is stored (contact attributes, event data, flow inputs) is bounded by
the types `Attributes` and `Data` (core.limits), which the models that take it use.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from empathic.api.problems import problem_response
from empathic.core.errors import FieldError
from empathic.core.limits import ATTRIBUTES_LIMIT, DATA_LIMIT, check_size

MiB = 1024 * 1024
BODY_LIMIT = 1 * MiB
# 1,000 texts of up to 10 segments each, JSON-escaped (UCS-2 as \uXXXX): about 4 MiB.
BATCH_BODY_LIMIT = 8 * MiB

# In JSON text a NUL can only be the escape \u0000: one with an odd number of backslashes before it.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
# The escape of a surrogate (\uD800-\uDFFF) somewhere: only then is the body parsed to look closer.
_JSON_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


PROVIDER_HOOKS = "/hooks/"


def body_limit(path: str) -> int:
    return BATCH_BODY_LIMIT if path == "/v1/messages/batch" else BODY_LIMIT


class InputGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, 413, _too_large(limit))
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(scope, send, 413, _too_large(limit))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = _unstorable(scope, body)
        if problem is not None:
            await _refuse(scope, send, *problem)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: a disconnect, when it comes

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large(limit: int) -> str:
    return f"The request body is larger than {limit // 1024:,} KiB, the most this endpoint takes."


def _unstorable(scope: Scope, body: bytes) -> tuple[int, str, list[FieldError] | None] | None:
    if scope["path"].startswith(PROVIDER_HOOKS):
        # Only the size: a provider's text may hold a NUL (UCS-2 padding) and the engine keeps
        # the text without it (engine.inbound.storable_text); what is not signed is refused
        # by its channel before anything reads it.
        return None
    if "\x00" in scope["path"] or b"%00" in scope["query_string"] or b"\x00" in scope["query_string"]:
        return 400, "The URL holds a NUL character (%00), which cannot be stored.", None
    if b"\x00" in body or (b"\\u0000" in body and _JSON_NUL.search(body)):  # the regex only where it may match
        return 400, "The body holds a NUL character (\\u0000), which cannot be stored.", None
    if _JSON_SURROGATE.search(body):
        field = lone_surrogate(body)
        if field is not None:
            detail = "holds a lone UTF-16 surrogate (\\uD800-\\uDFFF), which is not text"
            return 422, f"Some fields are invalid: {field}: {detail}", [{"field": field, "detail": detail}]
    return None


def lone_surrogate(body: bytes) -> str | None:
    """The path (`attributes.n`, `messages[2].body`) of the first key or string in a JSON
    body that holds a lone surrogate; None when there is none or it is not JSON."""
    try:
        document = json.loads(body)
    except ValueError:  # not JSON (a form, or broken JSON that the route will refuse)
        return None
    return _find(document, "")


def _find(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return None if _is_text(value) else (path or "body")
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if not _is_text(key):
                return path or "body"
            found = _find(item, child)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _find(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bounded(limit: int, what: str) -> AfterValidator:
    return AfterValidator(lambda value: check_size(value, limit, what))


# Free-form JSON as the API takes it (core.limits says why these sizes).
Attributes = Annotated[dict[str, Any], _bounded(ATTRIBUTES_LIMIT, "attributes")]
Data = Annotated[dict[str, Any], _bounded(DATA_LIMIT, "data")]


async def _refuse(scope: Scope, send: Send, status: int, detail: str,
                  errors: list[FieldError] | None = None) -> None:
    response = problem_response(Request(scope), status, detail, errors=errors)
    if status == 413:
        response.headers["Connection"] = "close"  # the rest of the body is not read
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
