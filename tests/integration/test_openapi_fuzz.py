"""Schemathesis against the app's own /openapi.json, with all its checks: every operation,
generated requests (valid and invalid), never a 5xx, every answer as documented (status,
media type, headers, schema), what the schema calls invalid refused, what it calls valid
accepted, the API key enforced, OPTIONS and 405 naming every method of the path.

No operation is skipped (deletions run last, on the seeded resources). Schema conformance
covers every answer: 2xx as each operation says, 4XX and 503 as the `Problem` schema
(application/problem+json) that api.app documents on every operation. Fuzzing runs on both
backends; the coverage phase (boundary values, missing fields, unexpected methods, OPTIONS),
a property of the document rather than of the store, runs on SQLite.

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
from urllib.parse import urlsplit

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, CheckContext, load_all_checks
from schemathesis.config import GenerationConfig, SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.transport import Response
from schemathesis.openapi.checks import AllowHeaderMismatch
from schemathesis.specs.openapi import checks
from schemathesis.specs.openapi._auth_retry import get_security_parameters
from schemathesis.specs.openapi.coverage._operation import _declared_methods
from starlette.types import Receive, Scope, Send

from empathic.api.app import create_app
from empathic.engine.runtime import Runtime
from tests.conftest import API_KEY, POSTGRES_URL, make_settings, postgres_schema
from tests.integration.seed import seed_workspace

T = TypeVar("T")
# Settings overrides made before the runtime starts (a project folder, fake providers ...).
Prepare = Callable[[AsyncExitStack, Path], Awaitable[dict[str, Any]]]
BASE_URL = "http://empathic.test"
EXAMPLES = 4  # per operation and backend; with the coverage phase on one, ~55 s for the file
COVERAGE = 12  # the coverage phase's first cases per operation (its unexpected methods and OPTIONS always)
# No NUL in generated text: PostgreSQL cannot store one, so the API refuses it with 400
# wherever text goes (api.inputs), a rule of every string that the document does not repeat
# on each. Lone surrogates are not generated either (the codec is UTF-8).
# A body over its size limit is refused with 413 (api.inputs, a flow file's own limit)
# before it is parsed: as much a refusal of invalid data as a 422.
CONFIG = SchemathesisConfig.from_dict({
    "generation": {"allow-x00": False},
    "checks": {"negative_data_rejection": {"expected-statuses": [
        "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]}},
})
# Formats the document names for values only code can check (api.fields), and values of them.
FORMATS = {
    "phone": st.sampled_from(["+14155550100", "+14155550123", "+442071838750", "+33142685300", "+4930901820"]),
    "time-zone": st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]),
    "region": st.sampled_from(["US", "GB", "fr", "de", "CA"]),
}
for name, values in FORMATS.items():
    schemathesis.openapi.format(name, values)


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
        self.bare: httpx.AsyncClient  # no API key unless a request carries one
        self.runtime: Runtime
        self.known: dict[str, str] = {}  # path parameter -> a real id or name (tests.integration.seed)
        self.sent = 0

    @staticmethod
    def keyed(case: schemathesis.Case) -> bool:
        """Whether the case goes with our API key rather than the one schemathesis made up:
        not when it left the key out, or made a bad one on purpose."""
        if not any(name.lower() == "authorization" for name in case.headers or {}):
            return not get_security_parameters(case.operation)
        return case.meta is None or not case.meta.is_negative_at(ParameterLocation.HEADER)

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
        app = create_app(self.runtime)
        self.client = await self._stack.enter_async_context(httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
            headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30))
        self.bare = await self._stack.enter_async_context(httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL, timeout=30))
        if self.seed:
            self.known = await seed_workspace(self.client, "+14155550171", "fuzz", inbox_phone="+14155550172")

    def schema(self) -> schemathesis.BaseSchema:
        """The app's /openapi.json, as it serves it; the requests checks make of their own
        (without the key, with a wrong one) come to this server through `bridge`."""
        answer = self.run(self.client.get("/openapi.json"))
        assert answer.status_code == 200, answer.text
        schema = schemathesis.openapi.from_dict(answer.json(), config=CONFIG)
        schema.app = self.bridge
        return schema

    async def bridge(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An ASGI app on schemathesis's loop that hands each request to ours."""
        if scope["type"] == "lifespan":  # the runtime is ours, started already
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        url = scope["path"] + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        future = asyncio.run_coroutine_threadsafe(
            self.bare.request(scope["method"], url, headers=headers, content=body), self.loop)
        answer = await asyncio.wrap_future(future)
        await send({"type": "http.response.start", "status": answer.status_code, "headers": answer.headers.raw})
        await send({"type": "http.response.body", "body": answer.content})

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
        if self.keyed(case):
            request["headers"] = {**request.get("headers", {}), "Authorization": f"Bearer {API_KEY}"}
        if kwargs.get("cookies"):
            request["headers"]["Cookie"] = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
        self.sent += 1
        return self.run(self.bare.request(**request))


def operations() -> list[tuple[str, str]]:
    """(method, path) of every operation the app documents (its routes alone: no runtime);
    deletions last, so the others still find the seeded resources."""
    document = create_app(None).openapi()  # type: ignore[arg-type]
    found = [(method.upper(), path) for path, item in document["paths"].items() for method in item]
    return sorted(found, key=lambda op: op[0] == "DELETE")


def positive_data_acceptance(ctx: CheckContext, response: Response, case: schemathesis.Case) -> bool | None:
    """Schemathesis's, but for a 422 naming only fields whose rules the operation documents
    as beyond its schema (its 422's `x-rules`, api.problems.beyond_schema): a phone number
    libphonenumber accepts, a template that compiles, a flow file. No JSON Schema holds
    those, so schema-valid data may break them; any other 422 still fails."""
    if response.status_code == 422:
        rules = case.operation.definition.raw.get("responses", {}).get("422", {}).get("x-rules", {})
        named = {re.sub(r"\[\d+\]", "[]", e["field"]) for e in response.json().get("errors", [])}
        if named and ("*" in rules or named <= set(rules)):
            return None
    return checks.positive_data_acceptance(ctx, response, case)


AUTHENTICATED: set[str] = set()


def ignored_auth(ctx: CheckContext, response: Response, case: schemathesis.Case) -> bool | None:
    """Schemathesis's (the request again without the key, then with a wrong one: 401 both
    times), once per operation and backend: the engine keeps such a set, a bare check does not."""
    key = f"{case.operation.schema.raw_schema.get('x-backend')} {case.operation.label}"
    if key in AUTHENTICATED:
        return None
    checks.ignored_auth(ctx, response, case)
    if 200 <= response.status_code < 300:
        AUTHENTICATED.add(key)
    return None


def allow_header_conformance(ctx: CheckContext, response: Response, case: schemathesis.Case) -> bool | None:
    """Schemathesis's, with the methods of templated paths that take the same URL too
    (`GET /v1/messages/batch` is `GET /v1/messages/{message_id}`), as its own
    unsupported_method counts them."""
    try:
        return checks.allow_header_conformance(ctx, response, case)
    except AllowHeaderMismatch:
        advertised = {m.strip().lower() for m in ", ".join(response.headers["allow"]).split(",")}
        declared = _declared_methods(case.operation, urlsplit(response.request.url).path)
        if advertised - {"head", "options"} != declared:
            raise
    return None


def all_checks() -> list[Any]:
    """Every check the installed schemathesis has, three of them adapted above. Three find
    nothing to look at here, and pass: use_after_free and ensure_resource_availability
    follow resources through a stateful run's recorded cases (each case here stands alone;
    deletions run last and the 404s after them are in the API tests);
    object_level_authorization needs a second identity (tests/integration/
    test_workspace_isolation.py reads every resource with another workspace's key)."""
    load_all_checks()
    adapted = {"positive_data_acceptance": positive_data_acceptance, "ignored_auth": ignored_auth,
               "allow_header_conformance": allow_header_conformance}
    return [adapted.get(check.__name__, check) for check in CHECKS.get_all()]


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
        check(server, case)

    one()


def check(server: InProcessApi, case: schemathesis.Case) -> None:
    response = server.send(case)
    key = {"Authorization": f"Bearer {API_KEY}"} if server.keyed(case) else None
    case.validate_response(response, checks=all_checks(), headers=key)


def cover(server: InProcessApi, operation: schemathesis.APIOperation) -> None:
    """The coverage phase's cases for `operation`: boundary values of every constraint, each
    required field missing, wrong types, then methods the path does not take and OPTIONS."""
    cases = list(operation.schema.iter_coverage_cases(
        operation, generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        generation_config=GenerationConfig(allow_x00=False)))
    probes = [c for c in cases if c.method.upper() != operation.method.upper()]
    for case in [c for c in cases if c not in probes][:COVERAGE] + probes:
        check(server, case)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApi]:
    with InProcessApi(tmp_path_factory.mktemp(f"openapi-{request.param}"), request.param) as api:
        yield api


@pytest.fixture(scope="module")
def openapi(server: InProcessApi) -> schemathesis.BaseSchema:
    schema = server.schema()
    schema.raw_schema["x-backend"] = server.backend
    return schema


def test_the_served_document_has_every_operation(openapi: schemathesis.BaseSchema) -> None:
    served = {(r.ok().method.upper(), r.ok().path) for r in openapi.get_all_operations()}
    assert served == set(operations())


@pytest.mark.parametrize(("method", "path"), operations(), ids=[f"{m} {p}" for m, p in operations()])
def test_no_operation_answers_5xx_or_off_its_schema(
    server: InProcessApi, openapi: schemathesis.BaseSchema, method: str, path: str
) -> None:
    fuzz(server, openapi[path][method], EXAMPLES)
    if server.backend == "sqlite":
        cover(server, openapi[path][method])
