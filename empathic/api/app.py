"""The HTTP application: REST v1 with OpenAPI at /openapi.json, problem+json errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from empathic import __version__
from empathic.api import catalog, contacts, events, flows, hooks, inbox, messages, problems, rules, simulator, understand, webhooks
from empathic.engine.runtime import Runtime
from empathic.web import preferences as preference_page


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
    )
    app.state.runtime = runtime
    app.state.key_cache = {}
    problems.install(app)
    for module in (messages, events, contacts, catalog, flows, inbox, rules, simulator, understand, webhooks, hooks, preference_page):
        app.include_router(module.router)

    @app.get("/healthz", tags=["ops"])
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
