"""The Twilio channel: sends over real HTTP to a fake Twilio on loopback that answers with
the documented payloads (tests/channels/data/twilio/), and takes signed webhooks."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from empathic.channels import twilio
from empathic.channels.base import (
    ErrorKind,
    Inbound,
    Outbound,
    Receipt,
    ReceiptStatus,
    WebhookRequest,
)
from empathic.channels.twilio import Twilio, TwilioSettings
from empathic.core.clock import ManualClock
from tests.channels.fakes import hanging_up, serve

DATA = Path(__file__).parent / "data" / "twilio"
SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "tw-token-5ecret-0123456789abcdef"
HOOKS = "https://public.example/hooks/twilio-us"
NOW = datetime(2025, 3, 6, 15, 46, tzinfo=UTC)


def fixture(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def form(name: str) -> bytes:
    """A form fixture's body: its lines that are not '#' notes."""
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return "".join(line for line in lines if line and not line.startswith("#")).encode()


def documented_signature(token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Written here from Twilio's page, not taken from the module under test."""
    data = url + "".join(k + v for k, v in sorted(params, key=lambda kv: kv[0]))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


# -- a fake Twilio on loopback ---------------------------------------------------------------


class FakeTwilio:
    """Checks basic auth, records each request, answers with a documented payload per `To`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.answers: dict[str, str] = {}  # To -> fixture file
        self.delays: dict[str, float] = {}  # To -> seconds before answering
        self.in_flight = 0
        self.max_in_flight = 0
        self.url = ""
        self.app = Starlette(routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", self.create, methods=["POST"])])

    async def create(self, request: Request) -> JSONResponse:
        expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if request.path_params["sid"] != SID or request.headers.get("authorization") != expected:
            answer = fixture("error_20003.json")
            return JSONResponse(answer["body"], answer["status"])
        params = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delays.get(params["To"], 0.0))
        finally:
            self.in_flight -= 1
        self.requests.append(params)
        answer = fixture(self.answers.get(params["To"], "send_created.json"))
        body = answer["body"]
        if answer["status"] == 201:
            sid = "SM" + hashlib.md5(params["Body"].encode()).hexdigest()
            body |= {"sid": sid, "to": params["To"], "from": params["From"], "body": params["Body"]}
        return JSONResponse(body, answer["status"])


class Sink:
    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.inbound: list[Inbound] = []

    async def on_receipts(self, receipts: list[Receipt]) -> None:
        self.receipts.extend(receipts)

    async def on_inbound(self, inbound: Inbound) -> str:
        self.inbound.append(inbound)
        return "msg_in"


def config(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "account_sid": SID,
        "auth_token": TOKEN,
        "from": "+14155550100",
        "tps": 100,
        "window": 50,
        "status_callback": f"{HOOKS}/status",
    }
    raw.update(overrides)
    return {k: v for k, v in raw.items() if v is not None}


@contextlib.asynccontextmanager
async def started(**overrides: Any) -> AsyncIterator[Twilio]:
    channel = Twilio("twilio-us", TwilioSettings.from_config("twilio-us", config(**overrides)), ManualClock(NOW))
    await channel.start(Sink())
    try:
        yield channel
    finally:
        await channel.stop()


@pytest.fixture
async def provider() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    async with serve(fake.app) as url:
        fake.url = url
        yield fake


def out(i: int, to: str = "+14155550123", body: str | None = None) -> Outbound:
    return Outbound(f"msg_{i:04d}", to, "+14155550100", body if body is not None else f"text number {i}")


# -- settings --------------------------------------------------------------------------------


def test_settings_from_a_channels_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    entry = {
        "type": "twilio", "name": "twilio-us", "account_sid": SID, "auth_token_env": "TWILIO_AUTH_TOKEN",
        "from": "+14155550100", "tps": 100, "window": 50, "base_url": "https://api.twilio.com/",
        "status_callback": f"{HOOKS}/status",
    }
    settings = TwilioSettings.from_config("twilio-us", entry)
    assert settings.auth_token.reveal() == TOKEN
    assert (settings.sender, settings.tps, settings.window) == ("+14155550100", 100.0, 50)
    assert settings.base_url == "https://api.twilio.com"
    assert settings.status_callback == f"{HOOKS}/status"
    defaults = TwilioSettings.from_config("t", {"account_sid": SID, "auth_token": TOKEN, "from": "+14155550100"})
    assert (defaults.tps, defaults.window, defaults.base_url, defaults.status_callback) == (
        1.0, 10, "https://api.twilio.com", None,
    )


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"account_sid": None}, "account_sid"),
        ({"account_sid": "AC123"}, "account_sid"),
        ({"auth_token": None}, "auth_token"),
        ({"auth_token": ""}, "auth_token"),
        ({"auth_token_env": "X"}, "auth_token_env"),  # both given
        ({"from": None}, "from"),
        ({"from": 14155550100}, "from"),
        ({"tps": 0}, "tps"),
        ({"tps": "fast"}, "tps"),
        ({"window": 2.5}, "window"),
        ({"window": True}, "window"),
        ({"base_url": "ftp://api.twilio.com"}, "base_url"),
        ({"status_callback": "/hooks/status"}, "status_callback"),
        ({"timeout": -1}, "timeout"),
        ({"auth_tokn_env": "TWILIO_AUTH_TOKEN"}, "auth_tokn_env"),  # a typo is not ignored
    ],
)
def test_settings_name_the_bad_key(change: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        TwilioSettings.from_config("twilio-us", config(**change))


def test_a_missing_environment_variable_is_named_and_no_secret_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_TWILIO_TOKEN", raising=False)
    with pytest.raises(ValueError, match="NO_SUCH_TWILIO_TOKEN") as raised:
        TwilioSettings.from_config("twilio-us", config(auth_token=None, auth_token_env="NO_SUCH_TWILIO_TOKEN"))
    assert TOKEN not in str(raised.value)


async def test_secrets_never_show_in_repr_or_logs(provider: FakeTwilio, caplog: pytest.LogCaptureFixture) -> None:
    settings = TwilioSettings.from_config("twilio-us", config(base_url=provider.url, auth_token="not-" + TOKEN))
    channel = Twilio("twilio-us", settings, ManualClock(NOW))
    for shown in (repr(settings), str(settings), repr(channel), str(channel), repr(settings.auth_token)):
        assert TOKEN not in shown
    basic = base64.b64encode(f"{SID}:not-{TOKEN}".encode()).decode()
    caplog.set_level(logging.DEBUG)  # httpx and httpcore too
    await channel.start(Sink())
    try:
        [result] = await channel.send([out(1)])
    finally:
        await channel.stop()
    assert result.error is not None and result.error.kind is ErrorKind.CONFIG
    assert caplog.records, "the failure is logged"
    logged = caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
    assert TOKEN not in logged and basic not in logged
    assert TOKEN not in result.error.detail


# -- sending ---------------------------------------------------------------------------------


async def test_send_posts_the_documented_form_with_basic_auth(provider: FakeTwilio) -> None:
    async with started(base_url=provider.url) as channel:
        results = await channel.send([out(1), out(2, body="Ça va? 👍")])
    assert [r.message_id for r in results] == ["msg_0001", "msg_0002"]
    assert all(r.error is None for r in results)
    assert results[1].carrier_id == "SM" + hashlib.md5("Ça va? 👍".encode()).hexdigest()
    assert provider.requests[0] == {
        "To": "+14155550123", "From": "+14155550100", "Body": "text number 1", "StatusCallback": f"{HOOKS}/status",
    }


async def test_no_more_than_window_requests_in_flight_and_results_keep_batch_order(provider: FakeTwilio) -> None:
    batch = [out(i, to=f"+1415555{i:04d}") for i in range(12)]
    for i, message in enumerate(batch):
        provider.delays[message.to] = 0.01 * (12 - i)  # the first ones answer last
    async with started(base_url=provider.url, window=3) as channel:
        results = await channel.send(batch)
    assert provider.max_in_flight == 3
    assert [r.message_id for r in results] == [m.message_id for m in batch]
    assert [r.carrier_id for r in results] == ["SM" + hashlib.md5(m.body.encode()).hexdigest() for m in batch]


async def test_two_batches_at_once_share_the_window(provider: FakeTwilio) -> None:
    for i in range(8):
        provider.delays[f"+1415555{i:04d}"] = 0.03
    async with started(base_url=provider.url, window=4) as channel:
        first, second = await asyncio.gather(
            channel.send([out(i, to=f"+1415555{i:04d}") for i in range(4)]),
            channel.send([out(i, to=f"+1415555{i:04d}") for i in range(4, 8)]),
        )
    assert provider.max_in_flight == 4
    assert [r.message_id for r in first + second] == [f"msg_{i:04d}" for i in range(8)]


ERRORS = {  # documented answer -> the kind it means
    "error_21211.json": ErrorKind.REJECTED,  # invalid To
    "error_21614.json": ErrorKind.REJECTED,  # not a mobile number
    "error_21610.json": ErrorKind.REJECTED,  # unsubscribed recipient
    "error_21617.json": ErrorKind.BAD_CONTENT,  # body too long
    "error_21602.json": ErrorKind.BAD_CONTENT,  # body missing
    "error_21606.json": ErrorKind.CONFIG,  # From not ours
    "error_20003.json": ErrorKind.CONFIG,  # 401
    "error_20404.json": ErrorKind.CONFIG,  # wrong account
    "error_20429.json": ErrorKind.THROTTLED,  # 429
    "error_20500.json": ErrorKind.CONNECTION,  # 5xx
}


async def test_each_documented_error_maps_to_its_kind(provider: FakeTwilio) -> None:
    batch = [out(0)]
    for i, answer in enumerate(ERRORS, start=1):
        batch.append(out(i, to=f"+1500555{i:04d}"))
        provider.answers[batch[-1].to] = answer
    async with started(base_url=provider.url) as channel:
        good, *bad = await channel.send(batch)
    assert good.error is None and good.carrier_id
    for (answer, kind), result in zip(ERRORS.items(), bad, strict=True):
        assert result.carrier_id is None and result.error is not None, answer
        assert result.error.kind is kind, answer
        assert str(fixture(answer)["body"]["code"]) in result.error.detail


async def test_connection_refused_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    async with started(base_url=f"http://127.0.0.1:{port}") as channel:
        [result] = await channel.send([out(1)])
    assert result.error is not None and result.error.kind is ErrorKind.CONNECTION


async def test_a_request_sent_but_never_answered_is_unknown(provider: FakeTwilio) -> None:
    """Twilio may have taken it: `unknown` (never retried) rather than a second copy."""
    provider.delays["+15005550009"] = 0.3
    async with started(base_url=provider.url, timeout=0.1) as channel:
        fast, slow = await channel.send([out(1), out(2, to="+15005550009")])
    assert fast.error is None
    assert slow.error is not None and slow.error.kind is ErrorKind.UNKNOWN  # read time-out
    async with hanging_up() as url, started(base_url=url) as channel:
        [dropped] = await channel.send([out(3)])
    assert dropped.error is not None and dropped.error.kind is ErrorKind.UNKNOWN


async def test_send_before_start_raises_and_lookup_knows_nothing() -> None:
    channel = Twilio("twilio-us", TwilioSettings.from_config("twilio-us", config()), ManualClock(NOW))
    assert channel.answers_lookup is False
    assert await channel.lookup(["msg_0001"]) == {}
    with pytest.raises(RuntimeError):
        await channel.send([out(1)])


# -- webhooks --------------------------------------------------------------------------------


def signed_post(kind: str, body: bytes, *, token: str = TOKEN, url: str | None = None) -> WebhookRequest:
    url = url or f"{HOOKS}/{kind}"
    params = parse_qsl(body.decode(), keep_blank_values=True)
    return WebhookRequest(
        method="POST",
        url=url,
        headers={"x-twilio-signature": documented_signature(token, url, params),
                 "content-type": "application/x-www-form-urlencoded"},
        query={},
        body=body,
        content_type="application/x-www-form-urlencoded",
    )


def channel_for_hooks() -> Twilio:
    return Twilio("twilio-us", TwilioSettings.from_config("twilio-us", config()), ManualClock(NOW))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("status_sent.form", None),
        ("status_delivered.form", (ReceiptStatus.DELIVERED, None)),
        ("status_undelivered.form", (ReceiptStatus.UNDELIVERED, "30003")),
        ("status_failed.form", (ReceiptStatus.FAILED, "30008")),
    ],
)
async def test_status_callbacks(name: str, expected: tuple[ReceiptStatus, str | None] | None) -> None:
    sink = Sink()
    response = await channel_for_hooks().webhook("status", signed_post("status", form(name)), sink)
    assert response.status == 200
    if expected is None:
        assert sink.receipts == []
    else:
        assert sink.receipts == [
            Receipt("twilio-us", "SM1342fe1b2c904d1ab04f0fc7a58abca9", expected[0], expected[1], NOW)
        ]


@pytest.mark.parametrize(
    ("status", "receipt"),
    [
        ("queued", None), ("accepted", None), ("scheduled", None), ("sending", None), ("sent", None),
        ("receiving", None), ("received", None), ("partially_delivered", None),
        ("delivered", ReceiptStatus.DELIVERED), ("read", ReceiptStatus.DELIVERED),
        ("undelivered", ReceiptStatus.UNDELIVERED), ("failed", ReceiptStatus.FAILED),
        ("canceled", ReceiptStatus.FAILED),
        ("some_future_status", None),
    ],
)
async def test_every_documented_message_status(status: str, receipt: ReceiptStatus | None) -> None:
    body = form("status_delivered.form").replace(b"MessageStatus=delivered", f"MessageStatus={status}".encode())
    sink = Sink()
    response = await channel_for_hooks().webhook("status", signed_post("status", body), sink)
    assert response.status == 200
    assert [r.status for r in sink.receipts] == ([] if receipt is None else [receipt])


async def test_inbound_text_is_handed_in_and_answered_with_empty_twiml() -> None:
    sink = Sink()
    response = await channel_for_hooks().webhook("inbound", signed_post("inbound", form("inbound_sms.form")), sink)
    assert (response.status, response.content_type) == (200, "text/xml")
    assert response.body == b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert sink.inbound == [
        Inbound("twilio-us", "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "+14155550123", "+14155550100",
                "Yes, see you at 3pm & thanks!", NOW)
    ]


async def test_inbound_unicode() -> None:
    sink = Sink()
    response = await channel_for_hooks().webhook("inbound", signed_post("inbound", form("inbound_unicode.form")), sink)
    assert response.status == 200
    assert sink.inbound[0].body == "Oui, à demain 👍 ¿Qué?"
    assert sink.inbound[0].sender == "+33612345678"


def forgeries() -> list[tuple[str, WebhookRequest]]:
    body = form("status_delivered.form")
    good = signed_post("status", body)
    without = {k: v for k, v in good.headers.items() if k != "x-twilio-signature"}
    other_url = signed_post("status", body, url=f"{HOOKS}/inbound")
    return [
        ("missing", WebhookRequest("POST", good.url, without, {}, body, good.content_type)),
        ("empty", WebhookRequest("POST", good.url, {**without, "x-twilio-signature": ""}, {}, body, good.content_type)),
        ("garbage", WebhookRequest("POST", good.url, {**without, "x-twilio-signature": "bm9wZQ=="}, {}, body,
                                   good.content_type)),
        ("other token", signed_post("status", body, token="some-other-token")),
        ("tampered", WebhookRequest("POST", good.url, good.headers, {},
                                    body.replace(b"MessageStatus=delivered", b"MessageStatus=failed"),
                                    good.content_type)),
        ("param added", WebhookRequest("POST", good.url, good.headers, {}, body + b"&ErrorCode=30003",
                                       good.content_type)),
        ("signed for another URL", WebhookRequest("POST", good.url, other_url.headers, {}, body, good.content_type)),
    ]


@pytest.mark.parametrize(("what", "request_"), forgeries(), ids=[f[0] for f in forgeries()])
async def test_forged_requests_are_refused_and_hand_nothing(what: str, request_: WebhookRequest) -> None:
    sink = Sink()
    for kind in ("status", "inbound"):
        response = await channel_for_hooks().webhook(kind, request_, sink)
        assert (response.status, response.body) == (403, b"")
    assert sink.receipts == [] and sink.inbound == []


async def test_a_get_callback_signs_the_url_with_its_query() -> None:
    params = dict(parse_qsl(form("status_delivered.form").decode()))
    url = f"{HOOKS}/status?{urlencode(params)}"
    request = WebhookRequest("GET", url, {"x-twilio-signature": documented_signature(TOKEN, url, [])}, params, b"", "")
    sink = Sink()
    assert (await channel_for_hooks().webhook("status", request, sink)).status == 200
    assert [r.status for r in sink.receipts] == [ReceiptStatus.DELIVERED]
    tampered = WebhookRequest("GET", url.replace("delivered", "failed"), request.headers, params, b"", "")
    assert (await channel_for_hooks().webhook("status", tampered, sink)).status == 403


async def test_a_signature_over_the_url_with_its_default_port_is_accepted() -> None:
    body = form("status_delivered.form")
    signed = signed_post("status", body, url="https://public.example:443/hooks/twilio-us/status")
    request = WebhookRequest("POST", f"{HOOKS}/status", signed.headers, {}, body, signed.content_type)
    sink = Sink()
    assert (await channel_for_hooks().webhook("status", request, sink)).status == 200


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"MessageStatus=delivered&To=%2B15558675310", "application/x-www-form-urlencoded", 400),  # no sid
        (b"MessageSid=SM1&To=%2B15558675310", "application/x-www-form-urlencoded", 400),  # no status
        (b"MessageSid=SM1&MessageStatus=delivered&Body=%FF%FE", "application/x-www-form-urlencoded", 400),
        (b"MessageSid=SM1&MessageStatus=delivered&Body=\xff", "application/x-www-form-urlencoded", 400),
        (b'{"MessageSid": "SM1", "MessageStatus": "delivered"}', "application/json", 400),
    ],
)
async def test_malformed_status_callbacks_answer_400(body: bytes, content_type: str, status: int) -> None:
    params = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
    url = f"{HOOKS}/status"
    headers = {"x-twilio-signature": documented_signature(TOKEN, url, params)}
    sink = Sink()
    response = await channel_for_hooks().webhook("status", WebhookRequest("POST", url, headers, {}, body, content_type),
                                                 sink)
    assert response.status == status
    assert sink.receipts == []


async def test_malformed_inbound_answers_400_and_unknown_kinds_404() -> None:
    sink = Sink()
    body = b"MessageSid=SMx&Body=hello&To=%2B14155550100"  # no From
    assert (await channel_for_hooks().webhook("inbound", signed_post("inbound", body), sink)).status == 400
    assert (await channel_for_hooks().webhook("voice", signed_post("voice", body), sink)).status == 404
    assert sink.inbound == []


# -- the signature algorithm -------------------------------------------------------------------


def test_signature_matches_twilios_published_examples() -> None:
    # https://www.twilio.com/docs/usage/webhooks/webhooks-security (and the older
    # https://www.twilio.com/docs/usage/security#validating-requests, and twilio-php's validation docs).
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
              "From": "+12349013030", "To": "+18005551212"}
    assert twilio.signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    older = params | {"Caller": "+14158675309", "From": "+14158675309"}
    assert twilio.signature("12345", url, older) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert twilio.verify("12345", url, older, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
values = st.text(st.characters(codec="utf-8"), max_size=30)
param_dicts = st.dictionaries(names, values, max_size=8)
urls = st.builds(lambda host, path: f"https://{host}.example/{path}",
                 st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10),
                 st.text("abcXYZ019/_.?=&%-", max_size=30))


@given(url=urls, params=param_dicts, token=st.text(min_size=1, max_size=40))
@settings(max_examples=60, deadline=None)
def test_any_signed_request_verifies(url: str, params: dict[str, str], token: str) -> None:
    given_signature = twilio.signature(token, url, params)
    assert given_signature == documented_signature(token, url, list(params.items()))
    assert twilio.verify(token, url, params, given_signature)


@given(url=urls, params=param_dicts.filter(bool), data=st.data())
@settings(max_examples=60, deadline=None)
def test_any_single_change_fails(url: str, params: dict[str, str], data: st.DataObject) -> None:
    signed = twilio.signature(TOKEN, url, params)
    key = data.draw(st.sampled_from(sorted(params)))
    changed_value = data.draw(values.filter(lambda v: v != params[key]))
    new_name = data.draw(names.filter(lambda n: n not in params))
    changes = [
        (url, params | {key: changed_value}),
        (url, {k: v for k, v in params.items() if k != key}),
        (url, params | {new_name: data.draw(values)}),
        (url + "x", params),
    ]
    for changed_url, changed in changes:
        assert not twilio.verify(TOKEN, changed_url, changed, signed)
    assert not twilio.verify(TOKEN + "x", url, params, signed)
