"""Errors as RFC 9457 problem details (`application/problem+json`), each saying what to fix."""

from __future__ import annotations

import logging

import asyncpg

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from empathic.core.errors import FieldError, InputError
from empathic.core.json import Json
from empathic.flows.state import StateVersionError
from empathic.store.db import RETRY_AFTER, unavailable

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    500: "Internal error",
    503: "Service unavailable",
}


class Problem(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extra: Json | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.extra = extra or {}


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extra: Json | None = None,
) -> JSONResponse:
    body: Json = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = errors
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


# The OpenAPI description of every error answer (api.app documents it on each operation).
PROBLEM_SCHEMA: Json = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details: what went wrong and what to fix.",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "detail"],
                "properties": {"field": {"type": "string"}, "detail": {"type": "string"}},
            },
        },
    },
}


def beyond_schema(rules: dict[str, str]) -> dict[int | str, Json]:
    """An operation's `responses` for input rules JSON Schema cannot state (a number
    libphonenumber accepts, a template that compiles): the document lists them (`x-rules`,
    field -> rule, `[]` for any index) and the 422 names the field in `errors`."""
    listed = "; ".join(f"`{field}`: {rule}" for field, rule in rules.items())
    return {422: {"description": f"Well formed, but against a rule the schema cannot state: {listed}", "x-rules": rules}}


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path (FastAPI makes a route per method, and
    Starlette's 405 names only the first route's), asked of the routes themselves."""
    routes = request.app.router.routes
    return sorted({"OPTIONS"} | {
        method for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    })


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def database_unavailable(request: Request) -> JSONResponse:
    return problem_response(
        request, 503,
        "The database cannot be reached just now, so nothing was accepted that could be lost. "
        "Try again shortly; with the same idempotency key nothing is sent twice.",
        headers={"Retry-After": str(RETRY_AFTER)},
    )


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.detail, errors=exc.errors, headers=exc.headers, extra=exc.extra)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        raw = exc.errors()
        if any(e.get("type") == "json_invalid" for e in raw):
            detail = next(e for e in raw if e.get("type") == "json_invalid").get("ctx", {}).get("error", "")
            return problem_response(request, 400, f"The request body is not valid JSON: {detail}".rstrip(": "))
        errors: list[FieldError] = [
            {"field": _field(tuple(e.get("loc", ()))), "detail": e.get("msg", "invalid")} for e in raw
        ]
        summary = "; ".join(f"{e['field']}: {e['detail']}" for e in errors[:5])
        return problem_response(request, 422, f"Some fields are invalid: {summary}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"There is no resource at {request.url.path}."
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            allow = {"Allow": ", ".join(allowed_methods(request))}
            if request.method == "OPTIONS":  # what the path takes, asked of any path that has routes
                return Response(status_code=204, headers=allow)
            detail = f"{request.method} is not allowed on {request.url.path}."
            headers = {**(headers or {}), **allow}
        return problem_response(request, exc.status_code, detail, headers=headers)

    # Input a domain refused (core.errors): its field and why, the one way to a 422.
    @app.exception_handler(InputError)
    async def on_input(request: Request, exc: InputError) -> JSONResponse:
        return problem_response(request, 422, str(exc), errors=exc.errors())

    # A flow run a newer release stored (after a rollback): left for that release to read.
    @app.exception_handler(StateVersionError)
    async def on_newer_run(request: Request, exc: StateVersionError) -> JSONResponse:
        return problem_response(request, 409, str(exc))

    # The errors of a database out of reach (also raised bare: a refused connection is an
    # OSError). Registered by class, so the answer is sent and the error not re-raised.
    @app.exception_handler(DBAPIError)
    @app.exception_handler(asyncpg.PostgresError)  # bare from a new connection (server starting up, full)
    @app.exception_handler(asyncpg.InterfaceError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(OSError)
    async def on_database(request: Request, exc: Exception) -> JSONResponse:
        if unavailable(exc):  # refuse what cannot be stored, rather than accept and lose it
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
            return database_unavailable(request)
        return await on_error(request, exc)

    @app.exception_handler(Exception)
    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, 500, "Something went wrong on our side; the error was logged.")
