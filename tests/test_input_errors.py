"""Every domain's input error is a `core.errors.InputError`, answered 422 problem+json by the one handler."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

import empathic
from empathic.api import problems
from empathic.core.errors import FieldError, InputError
from empathic.core.passwords import WeakPassword
from empathic.core.phones import InvalidPhoneNumber
from empathic.core.preferences import PreferencesError
from empathic.core.regulations import RulesError
from empathic.core.templates import TemplateError
from empathic.core.topics import UnknownTopic
from empathic.engine.events import EventError
from empathic.engine.outbox import SubmitError
from empathic.engine.runs import RunError
from empathic.engine.webhooks import WebhookInputError
from empathic.store.users import EmailTaken, LastAdmin

# Each domain error, and the `detail` and `errors` its 422 answers with (as before they shared a handler).
CASES: list[tuple[InputError, str, list[FieldError]]] = [
    (SubmitError("body", "must not be empty", 2), "messages[2].body: must not be empty",
     [{"field": "messages[2].body", "detail": "must not be empty"}]),
    (EventError("contact", "needs a phone or an email"), "contact: needs a phone or an email",
     [{"field": "contact", "detail": "needs a phone or an email"}]),
    (RunError("data", "once_per: missing"), "data: once_per: missing", [{"field": "data", "detail": "once_per: missing"}]),
    (WebhookInputError("url", "url has no host name"), "url has no host name",
     [{"field": "url", "detail": "url has no host name"}]),
    (PreferencesError("language", "'xx' is not one of en"), "language: 'xx' is not one of en",
     [{"field": "language", "detail": "'xx' is not one of en"}]),
    (TemplateError("welcome", "unknown variable", line=2), "template 'welcome', line 2: unknown variable",
     [{"field": "body", "detail": "template 'welcome', line 2: unknown variable"}]),
    (RulesError("rule 1: a rule needs hours, a cap, or both"), "rule 1: a rule needs hours, a cap, or both",
     [{"field": "rules", "detail": "rule 1: a rule needs hours, a cap, or both"}]),
    (InvalidPhoneNumber("12", "too short"), "'12' is not a usable phone number: too short",
     [{"field": "phone", "detail": "'12' is not a usable phone number: too short"}]),
    (UnknownTopic("deal", ["marketing"]), "unknown topic 'deal'; known topics: marketing",
     [{"field": "topic", "detail": "unknown topic 'deal'; known topics: marketing"}]),
    (WeakPassword("use at least 10 characters"), "use at least 10 characters",
     [{"field": "password", "detail": "use at least 10 characters"}]),
    (EmailTaken("ana@example.com"), "ana@example.com already has an account.",
     [{"field": "email", "detail": "ana@example.com already has an account"}]),
    (LastAdmin("ana@example.com"),
     "ana@example.com is the last enabled admin of this workspace; make someone else admin first.",
     [{"field": "role", "detail": "a workspace keeps at least one enabled admin"}]),
]


def _kinds(cls: type[InputError]) -> set[type[InputError]]:
    return {cls} | {k for sub in cls.__subclasses__() for k in _kinds(sub)}


def test_every_domain_input_error_is_an_input_error_and_tested_here() -> None:
    for module in pkgutil.walk_packages(empathic.__path__, "empathic."):  # a new one anywhere is found
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    assert _kinds(InputError) - {InputError} == {type(error) for error, _, _ in CASES}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    problems.install(app)
    @app.get("/raise/{n}")
    async def raise_it(n: int) -> None:
        raise CASES[n][0]

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://empathic.test") as c:
        yield c


@pytest.mark.parametrize("n", range(len(CASES)), ids=[type(error).__name__ for error, _, _ in CASES])
async def test_answers_422_problem_json_naming_the_field(client: httpx.AsyncClient, n: int) -> None:
    _, detail, errors = CASES[n]
    r = await client.get(f"/raise/{n}")
    assert r.status_code == 422
    assert r.headers["content-type"] == problems.MEDIA_TYPE
    assert r.json() == {"type": "about:blank", "title": "Invalid input", "status": 422, "detail": detail,
                        "instance": f"/raise/{n}", "errors": errors}
