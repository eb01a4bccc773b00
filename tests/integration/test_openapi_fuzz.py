"""Schemathesis against the app's own /openapi.json: every operation, generated requests
(valid and invalid), never a 5xx and every documented answer conforming to its schema.

No operation is skipped (deletions run last, on the seeded resources). Schema conformance
covers every answer: 2xx as each operation says, 4XX and 503 as the `Problem` schema
(application/problem+json) that api.app documents on every operation.

The engine runs on an event loop of its own thread (`InProcessApi`), as it would under
uvicorn; schemathesis generates cases synchronously and each goes to the ASGI app through
that loop. (Its own ASGI client would run the app on a second loop, away from the database
connections, and its `@schema.parametrize()` fails under pytest 9.2.) Both backends.
bench/fuzz_api.py runs the same with many more examples.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from empathic.api.app import create_app
from empathic.engine.runtime import Runtime
from tests.conftest import API_KEY, POSTGRES_URL, make_settings, postgres_schema
from tests.integration.seed import seed_workspace

T = TypeVar("T")
# Settings overrides made before the runtime starts (a project folder, fake providers ...).
Prepare = Callable[[AsyncExitStack, Path], Awaitable[dict[str, Any]]]
BASE_URL = "http://empathic.test"
CHECKS = [not_a_server_error, response_schema_conformance]
EXAMPLES = 8  # per operation and backend: 53 operations x 2 within ~30 s of test time


class InProcessApi:
    """A started Runtime and an httpx client on its ASGI app, on a loop in a thread of their own."""

    def __init__(self, data_dir: Path, backend: str, *, prepare: Prepare | None = None, seed: bool = True) -> None:
        self.data_dir = data_dir
        self.backend = backend
        self.prepare = prepare
        self.seed = seed
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="in-process-api", daemon=True)
        self._stack = AsyncExitStack()
        self.client: httpx.AsyncClient
        self.runtime: Runtime
        self.known: dict[str, str] = {}  # path parameter -> a real id or name (tests.integration.seed)
        self.sent = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def __enter__(self) -> InProcessApi:
        self.thread.start()
        try:
            self.run(self._start())
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        try:
            self.run(self._stack.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    async def _start(self) -> None:
        overrides: dict[str, Any] = {}
        if self.backend == "postgresql":
            overrides = {"database_url": POSTGRES_URL,
                         "database_schema": await self._stack.enter_async_context(postgres_schema(migrated=True))}
        if self.prepare is not None:
            overrides |= await self.prepare(self._stack, self.data_dir)
        self.runtime = Runtime(make_settings(self.data_dir, **overrides))
        await self.runtime.start()
        self._stack.push_async_callback(self.runtime.stop)
        self.client = await self._stack.enter_async_context(httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(self.runtime)), base_url=BASE_URL,
            headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30))
        if self.seed:
            self.known = await seed_workspace(self.client, "+14155550171", "fuzz", inbox_phone="+14155550172")

    def schema(self) -> schemathesis.BaseSchema:
        """The app's /openapi.json, as it serves it."""
        answer = self.run(self.client.get("/openapi.json"))
        assert answer.status_code == 200, answer.text
        return schemathesis.openapi.from_dict(answer.json())

    def send(self, case: schemathesis.Case) -> httpx.Response:
        """The case as schemathesis would send it (with our API key), through our loop."""
        kwargs = case.as_transport_kwargs(base_url=BASE_URL)
        request: dict[str, Any] = {k: kwargs[k] for k in ("method", "url", "headers", "params") if kwargs.get(k)}
        if "json" in kwargs:
            request["json"] = kwargs["json"]
        data = kwargs.get("data")
        if isinstance(data, (bytes, str)):
            request["content"] = data
        elif data is not None:
            request["data"] = data
        if kwargs.get("files"):
            request["files"] = kwargs["files"]
        request["headers"] = {**request.get("headers", {}), "Authorization": f"Bearer {API_KEY}"}
        if kwargs.get("cookies"):
            request["headers"]["Cookie"] = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
        self.sent += 1
        return self.run(self.client.request(**request))


def operations() -> list[tuple[str, str]]:
    """(method, path) of every operation the app documents (its routes alone: no runtime);
    deletions last, so the others still find the seeded resources."""
    document = create_app(None).openapi()  # type: ignore[arg-type]
    found = [(method.upper(), path) for path, item in document["paths"].items() for method in item]
    return sorted(found, key=lambda op: op[0] == "DELETE")


def fuzz(server: InProcessApi, operation: schemathesis.APIOperation, examples: int) -> None:
    """Valid and invalid requests to `operation`; raises on the first failing check."""
    strategies = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    names = re.findall(r"{(\w+)}", operation.path)
    if names:  # the generated ids rarely exist: aim at real ones too
        strategies.append(operation.as_strategy(
            GenerationMode.POSITIVE, path_parameters={n: server.known[n] for n in names}))
    strategies += operation.schema.get_strategies_from_examples(operation)
    strategy = st.one_of(strategies)

    @given(case=strategy)
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def one(case: schemathesis.Case) -> None:
        response = server.send(case)
        case.validate_response(response, checks=CHECKS)

    one()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApi]:
    with InProcessApi(tmp_path_factory.mktemp(f"openapi-{request.param}"), request.param) as api:
        yield api


@pytest.fixture(scope="module")
def openapi(server: InProcessApi) -> schemathesis.BaseSchema:
    return server.schema()


def test_the_served_document_has_every_operation(openapi: schemathesis.BaseSchema) -> None:
    served = {(r.ok().method.upper(), r.ok().path) for r in openapi.get_all_operations()}
    assert served == set(operations())


@pytest.mark.parametrize(("method", "path"), operations(), ids=[f"{m} {p}" for m, p in operations()])
def test_no_operation_answers_5xx_or_off_its_schema(
    server: InProcessApi, openapi: schemathesis.BaseSchema, method: str, path: str
) -> None:
    fuzz(server, openapi[path][method], EXAMPLES)
