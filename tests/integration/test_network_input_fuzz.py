"""Whatever arrives from the network is answered 2xx or 4xx, never 5xx, never an exception:
provider webhooks (/hooks/{channel}/{kind}) unsigned, forged or properly signed over any
fields, and the event API (POST /v1/events, /v1/messages, /v1/messages/batch) with any bytes,
any JSON, near-valid JSON and any headers. Forged webhooks are 403 and store nothing.

Hypothesis drives a project with a Twilio and a Vonage channel (fake providers on loopback),
one engine per backend for all examples (tests.integration.test_openapi_fuzz.InProcessApi).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.channels import test_twilio as twilio_docs
from tests.channels import test_vonage as vonage_docs
from tests.channels.fakes import serve
from tests.conftest import API_KEY
from tests.integration.test_openapi_fuzz import InProcessApi
from tests.integration.test_provider_hooks import PUBLIC, Twilio, Vonage

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
TWILIO, VONAGE = Twilio(twilio_docs.FakeTwilio()), Vonage(vonage_docs.FakeVonage())
HOOKS = {TWILIO.name, VONAGE.name}
PHONE = "+14155550181"


async def _providers(stack: AsyncExitStack, data_dir: Path) -> dict[str, Any]:
    for side in (TWILIO, VONAGE):
        side.fake.url = await stack.enter_async_context(serve(side.fake.app))
    project = data_dir / "project"
    project.mkdir()
    (project / "empathic.toml").write_text(
        '[sender]\nname = "Acme"\nnumber = "+18005550100"\n' + TWILIO.entry() + VONAGE.entry()
        + '\n[[channels]]\ntype = "simulator"\nname = "sim"\npriority = 9\n', encoding="utf-8")
    return {"project_dir": project, "public_url": PUBLIC}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApi]:
    data_dir = tmp_path_factory.mktemp(f"network-{request.param}")
    with InProcessApi(data_dir, request.param, prepare=_providers, seed=False) as api:
        yield api


def call(server: InProcessApi, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """A request as anyone on the network sends it (no API key unless given)."""
    headers = {k: v for k, v in server.client.headers.items() if k.lower() != "authorization"}
    headers |= kwargs.pop("headers", {})
    async def send() -> httpx.Response:
        return await server.client.request(method, url, headers=headers, **kwargs)
    answer = server.run(send())
    assert answer.status_code < 500, (method, url, answer.status_code, answer.text)
    if answer.status_code >= 400 and url.startswith("/v1/"):
        assert answer.headers["content-type"] == "application/problem+json", answer.text
        assert answer.json()["status"] == answer.status_code
    return answer


def received(server: InProcessApi) -> int:
    answer = server.run(server.client.get("/v1/messages", params={"direction": "inbound", "limit": 500}))
    return len(answer.json()["data"])


# -- provider webhooks -----------------------------------------------------------------------

# Field names the providers send (and so the channels read), besides any others.
TWILIO_FIELDS = ["MessageSid", "SmsSid", "SmsMessageSid", "MessageStatus", "SmsStatus", "ErrorCode", "From", "To",
                 "Body", "AccountSid", "NumMedia"]
VONAGE_FIELDS = ["messageId", "status", "client-ref", "err-code", "msisdn", "to", "text", "type", "keyword",
                 "concat", "concat-ref", "concat-total", "concat-part", "message-timestamp", "price", "scts"]
TWILIO_STATUSES = ["queued", "sent", "delivered", "undelivered", "failed", "received", "accepted"]
VONAGE_STATUSES = ["accepted", "delivered", "buffered", "expired", "failed", "rejected", "unknown"]

texts = st.text(max_size=40) | st.text(min_size=200, max_size=400)  # within a column, and past every one
numbers = st.from_regex(r"\A\+?[0-9]{1,16}\Z") | st.sampled_from([PHONE, "+447400123456", "ACME", "12345"])
header_names = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,20}\Z").filter(  # framing is httpx's business
    lambda name: name.lower() not in ("content-length", "host", "transfer-encoding"))
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
media_types = st.sampled_from(["application/x-www-form-urlencoded", "application/json", "text/plain", "",
                               "multipart/form-data; boundary=x", "application/x-www-form-urlencoded; charset=utf-8"])


def fields(names: list[str], statuses: list[str]) -> st.SearchStrategy[dict[str, str]]:
    """Any subset of the provider's fields with any values (plausible ones often), and others."""
    value = st.one_of(texts, numbers, st.sampled_from(statuses), st.integers(-5, 300).map(str),
                      st.sampled_from(["true", "false", "binary", "text", "0"]))
    known = st.fixed_dictionaries({}, optional={name: value for name in names})
    return st.tuples(known, st.dictionaries(st.text(min_size=1, max_size=12), texts, max_size=3)).map(
        lambda pair: pair[1] | pair[0])


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    channel=st.sampled_from([*HOOKS, "sim", "nope"]) | st.from_regex(r"\A[a-z0-9-]{1,20}\Z"),
    kind=st.sampled_from(["status", "inbound", "whatever"]),
    body=st.binary(max_size=300) | fields(TWILIO_FIELDS, TWILIO_STATUSES).map(lambda f: urlencode(f).encode()),
    media_type=media_types,
    headers=st.dictionaries(header_names, header_values, max_size=4),
    query=st.dictionaries(st.sampled_from(["sig", "msisdn", "to", "messageId", "text", "x"]), texts, max_size=4),
)
def test_an_unsigned_hook_request_is_refused_and_stores_nothing(
    server: InProcessApi, method: str, channel: str, kind: str, body: bytes, media_type: str,
    headers: dict[str, str], query: dict[str, str],
) -> None:
    before = received(server)
    content = body if method != "GET" else None
    answer = call(server, method, f"/hooks/{channel}/{kind}", content=content, params=query,
                  headers=headers | {"content-type": media_type})
    if method not in ("GET", "POST"):
        assert answer.status_code == 405
    elif channel not in HOOKS or kind not in ("status", "inbound"):
        assert answer.status_code == 404
    else:  # no signature, or a random one; a body that cannot be read may be refused first
        assert answer.status_code in (400, 403), answer.text
    assert received(server) == before


@FUZZ
@given(channel=st.sampled_from(sorted(HOOKS)), kind=st.sampled_from(["status", "inbound"]), data=st.data())
def test_a_forged_signature_is_403_whatever_the_fields(
    server: InProcessApi, channel: str, kind: str, data: st.DataObject
) -> None:
    before = received(server)
    if channel == TWILIO.name:
        body, headers = TWILIO._signed(kind, data.draw(fields(TWILIO_FIELDS, TWILIO_STATUSES)), forged=True)
    else:
        body, headers = VONAGE._signed(data.draw(fields(VONAGE_FIELDS, VONAGE_STATUSES)), forged=True)
    answer = call(server, "POST", f"/hooks/{channel}/{kind}", content=body, headers=headers)
    assert answer.status_code == 403, answer.text
    assert received(server) == before


@FUZZ
@given(channel=st.sampled_from(sorted(HOOKS)), kind=st.sampled_from(["status", "inbound"]), data=st.data())
def test_a_signed_hook_with_any_fields_is_taken_or_refused_as_malformed(
    server: InProcessApi, channel: str, kind: str, data: st.DataObject
) -> None:
    if channel == TWILIO.name:
        body, headers = TWILIO._signed(kind, data.draw(fields(TWILIO_FIELDS, TWILIO_STATUSES)), forged=False)
    else:
        body, headers = VONAGE._signed(data.draw(fields(VONAGE_FIELDS, VONAGE_STATUSES)), forged=False)
    answer = call(server, "POST", f"/hooks/{channel}/{kind}", content=body, headers=headers)
    assert answer.status_code in (200, 204, 400), answer.text


def test_the_signed_fuzzing_reaches_the_engine(server: InProcessApi) -> None:
    """A signed inbound with plausible fields is stored (so the fuzzing above gets past the
    checks), its NUL dropped (PostgreSQL text holds none); ids and numbers no store column
    holds are refused as malformed."""
    before = received(server)
    body, headers = TWILIO._signed("inbound", {"MessageSid": "SMfuzz1", "From": PHONE, "To": TWILIO.number,
                                               "Body": "Hello \x00there"}, forged=False)
    assert call(server, "POST", f"/hooks/{TWILIO.name}/inbound", content=body, headers=headers).status_code == 200
    assert received(server) == before + 1
    latest = server.run(server.client.get("/v1/messages", params={"direction": "inbound", "limit": 1})).json()
    assert latest["data"][0]["body"] == "Hello there"
    for bad in ({"MessageSid": "SM" + "0" * 99}, {"MessageSid": "SM\x00"}, {"From": "+1" + "5" * 19}, {"From": "AC\x00ME"}):
        body, headers = TWILIO._signed("inbound", {"MessageSid": "SMfuzz2", "From": PHONE, "To": TWILIO.number,
                                                   "Body": "Hi"} | bad, forged=False)
        answer = call(server, "POST", f"/hooks/{TWILIO.name}/inbound", content=body, headers=headers)
        assert answer.status_code == 400, bad
    body, headers = TWILIO._signed("status", {"MessageSid": "SM" + "0" * 120, "MessageStatus": "delivered"},
                                   forged=False)
    assert call(server, "POST", f"/hooks/{TWILIO.name}/status", content=body, headers=headers).status_code == 200
    assert received(server) == before + 1


# -- the event API ---------------------------------------------------------------------------

VALID: dict[str, dict[str, Any]] = {
    "/v1/events": {"type": "order.dispatched", "contact": {"phone": PHONE, "timezone": "Etc/UTC"},
                   "data": {"order_id": "A-1", "carrier": "UPS", "tracking_url": "https://t.example/1"},
                   "idempotency_key": "k1"},
    "/v1/messages": {"to": PHONE, "body": "Your order shipped", "topic": "transactional", "idempotency_key": "k2",
                     "valid_until": "2999-01-01T00:00:00Z"},
    "/v1/messages/batch": {"messages": [{"to": PHONE, "body": "Your order shipped"},
                                        {"to": "ops@example.com", "body": "Shipped", "subject": "A-1"}]},
}
json_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
any_json = st.recursive(json_leaves, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


def near(value: Any) -> st.SearchStrategy[Any]:
    """`value` with any part kept, dropped, or replaced by any JSON (strings with NULs, huge
    numbers, wrong types), and unknown keys added now and then."""
    if isinstance(value, dict):
        kept = {k: near(v) for k, v in value.items()}
        shape = st.fixed_dictionaries(kept) | st.fixed_dictionaries({}, optional=kept)
        extra = st.dictionaries(st.text(max_size=8), any_json, max_size=1)
        return st.one_of(shape, st.tuples(shape, extra).map(lambda p: p[1] | p[0]), any_json)
    if isinstance(value, list):
        return st.lists(st.one_of(*(near(v) for v in value)), max_size=3) | any_json
    return st.one_of(st.just(value), json_leaves, st.text(max_size=30).map(lambda s: s + "\x00"),
                     st.text(min_size=300, max_size=600))


@FUZZ
@given(
    path=st.sampled_from(sorted(VALID)),
    data=st.data(),
    media_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain",
                                "application/x-www-form-urlencoded", ""]),
    headers=st.dictionaries(header_names, header_values, max_size=3),
)
def test_the_event_api_answers_any_body_with_a_2xx_or_a_problem(
    server: InProcessApi, path: str, data: st.DataObject, media_type: str, headers: dict[str, str]
) -> None:
    body = data.draw(st.one_of(
        st.binary(max_size=200),
        any_json.map(lambda v: json.dumps(v).encode()),
        near(VALID[path]).map(lambda v: json.dumps(v).encode()),
    ), label="body")
    key = {"authorization": f"Bearer {API_KEY}"}
    answer = call(server, "POST", path, content=body, headers=headers | key | {"content-type": media_type})
    assert answer.status_code in (202, 400, 409, 413, 415, 422), answer.text


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict | list):
        for key, inner in (value.items() if isinstance(value, dict) else enumerate(value)):
            yield from leaves(inner, (*path, key))
    elif isinstance(value, str):
        yield path


def test_a_nul_anywhere_is_400_and_stores_nothing(server: InProcessApi) -> None:
    """PostgreSQL text holds no NUL: in any field, the URL or the query it is refused up front."""
    key = {"authorization": f"Bearer {API_KEY}"}
    listed = server.run(server.client.get("/v1/messages", params={"limit": 500})).json()["data"]
    for path, valid in VALID.items():
        for where in leaves(valid):
            body = json.loads(json.dumps(valid))
            *parents, last = where
            target = body
            for step in parents:
                target = target[step]
            target[last] += "\x00"
            answer = call(server, "POST", path, json=body, headers=key)
            assert answer.status_code == 400, (path, where, answer.text)
    for url in ("/v1/contacts/ct_%00", "/v1/messages?cursor=a%00", "/v1/templates/a%00b"):
        assert call(server, "GET", url, headers=key).status_code == 400, url
    assert server.run(server.client.get("/v1/messages", params={"limit": 500})).json()["data"] == listed


@FUZZ
@given(authorization=header_values | st.sampled_from([f"Bearer {API_KEY}x", f"bearer  {API_KEY[:-1]}", "Bearer ",
                                                      f"Basic {API_KEY}"]),
       path=st.sampled_from(sorted(VALID)))
def test_a_wrong_api_key_is_401(server: InProcessApi, path: str, authorization: str) -> None:
    answer = call(server, "POST", path, json=VALID[path], headers={"authorization": authorization})
    assert answer.status_code == 401, answer.text
