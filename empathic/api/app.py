"""The HTTP application: REST v1 with OpenAPI at /openapi.json, problem+json errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from empathic import __version__
from empathic.api.inputs import InputGuard
from empathic.api import catalog, contacts, events, flows, hooks, inbox, messages, problems, rules, simulator, stats, understand, webhooks
from empathic.core.topics import TopicKind
from empathic.engine.runtime import Runtime
from empathic.store.db import unavailable
from empathic.web import site
from empathic.web.security import SecurityHeaders


def create_app(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="Empathic",
        version=__version__,
        summary="Automated, intelligent, two-way business texting.",
        lifespan=lifespan,
        docs_url=None,  # served below from the package's own copy of Swagger UI: no CDN, works offline
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.key_cache = {}
    problems.install(app)
    app.add_middleware(InputGuard)  # size, NUL and surrogate checks before any route reads a body
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, refusals included
    for module in (messages, events, contacts, catalog, flows, inbox, rules, simulator, stats, understand, webhooks, hooks):
        app.include_router(module.router)
    site.mount(app)  # the web app's pages and static files

    @app.get("/healthz", tags=["ops"])
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["ops"])
    async def ready(request: Request) -> Any:
        """Ready to accept work: the database answers (load balancers route by this)."""
        try:
            async with runtime.db.transaction() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure to reach it means not ready
            if not unavailable(exc):
                raise
            return problems.database_unavailable(request)
        return {"status": "ready"}

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(_DOCS_PAGE)

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Empathic API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/static/vendor/swagger-ui/favicon-32x32.png">
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js" defer></script>
<script src="/static/docs.js" defer></script>
</head><body><main id="swagger-ui"></main></body></html>
"""


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, saying what the API really does: every operation may answer a
    problem+json 4XX (FastAPI's own 422 shape is never sent) or, when the database is out of
    reach, a 503 with Retry-After; a 422 of its own lists the rules the schema cannot state
    (`problems.beyond_schema`); topics are the project's."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Problem"] = problems.PROBLEM_SCHEMA
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            answers = operation.setdefault("responses", {})
            if "x-rules" not in answers.get("422", {}):
                answers.pop("422", None)
            for code, answer in answers.items():
                if code.startswith("4"):
                    answer["content"] = problem
            answers["4XX"] = {"description": "A problem with the request (the detail says what to fix)", "content": problem}
            answers.setdefault("503", {"description": "The database cannot be reached just now"})
            answers["503"].update(content=problem, headers={"Retry-After": {"schema": {"type": "integer"},
                                                                             "description": "seconds"}})
    runtime = app.state.runtime
    _name_topics(schema, runtime.project.topics.kinds if runtime is not None else None)
    app.openapi_schema = schema
    return schema


def _name_topics(node: Any, kinds: dict[str, TopicKind] | None) -> None:
    """Fields marked `x-topics` take the project's topics: `all` of them, `choice` (the
    non-essential ones a person chooses about) or `consent` (those, or `*`)."""
    if isinstance(node, list):
        for item in node:
            _name_topics(item, kinds)
        return
    if not isinstance(node, dict):
        return
    which = node.pop("x-topics", None)
    if which is not None and kinds is not None:
        names = sorted(name for name, kind in kinds.items() if which == "all" or not kind.essential)
        names += ["*"] if which == "consent" else []
        if node.get("type") == "object":
            node["propertyNames"] = {"enum": names}
        else:
            node["enum"] = names
    for value in node.values():
        _name_topics(value, kinds)
