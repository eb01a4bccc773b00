"""Twilio Programmable Messaging as a channel: one REST call per text; status callbacks and
inbound texts arrive through signed webhooks.

Send (https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource):
`POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`, form-encoded `To`, `From`,
`Body` and `StatusCallback`, HTTP basic auth (account SID, auth token). 201 answers the new
Message resource; its `sid` is our carrier id:

    {"sid": "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "queued", "to": "+14155552345", ...}

A refusal answers Twilio's exception body (https://www.twilio.com/docs/usage/twilios-response):

    {"code": 21211, "message": "The 'To' number 5551234 is not a valid phone number.",
     "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}

Webhooks are form-encoded POSTs signed with `X-Twilio-Signature`
(https://www.twilio.com/docs/usage/webhooks/webhooks-security):

    status   MessageSid=SM…&MessageStatus=undelivered&ErrorCode=30003&To=%2B1…&From=%2B1…
    inbound  MessageSid=SM…&From=%2B1…&To=%2B1…&Body=Hello&NumMedia=0&…

Twilio cannot tell us by our id whether it holds a message, so `answers_lookup` is false.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx

from empathic.channels.base import (
    ChannelError,
    ChannelSink,
    ErrorKind,
    Inbound,
    Outbound,
    Receipt,
    ReceiptStatus,
    SendResult,
    WebhookRequest,
    WebhookResponse,
    well_formed,
)
from empathic.channels.config import Entry, Secret
from empathic.channels.http import HttpProvider
from empathic.core.clock import Clock

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.twilio.com"
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

# MessageStatus values (https://www.twilio.com/docs/messaging/api/message-resource#message-status-values).
# `read` (WhatsApp, RCS) implies delivered; `canceled` is a scheduled message that never left.
RECEIPT_STATUSES: dict[str, ReceiptStatus] = {
    "delivered": ReceiptStatus.DELIVERED,
    "read": ReceiptStatus.DELIVERED,
    "undelivered": ReceiptStatus.UNDELIVERED,
    "failed": ReceiptStatus.FAILED,
    "canceled": ReceiptStatus.FAILED,
}
# On the way, or inbound-only: nothing to record. `partially_delivered` is not final either.
PASSING_STATUSES = frozenset(
    {"queued", "accepted", "scheduled", "sending", "sent", "receiving", "received", "partially_delivered"}
)

# Twilio error codes (https://www.twilio.com/docs/api/errors) that decide more than the HTTP
# status does. Any other 4xx refuses this one message.
ERROR_KINDS: dict[int, ErrorKind] = {
    20003: ErrorKind.CONFIG,  # authentication error
    20005: ErrorKind.CONFIG,  # account not active
    20404: ErrorKind.CONFIG,  # no such account (wrong SID or base URL)
    21212: ErrorKind.CONFIG,  # invalid 'From' number
    21603: ErrorKind.CONFIG,  # 'From' is required
    21606: ErrorKind.CONFIG,  # 'From' is not a message-capable Twilio number
    21659: ErrorKind.CONFIG,  # 'From' is not a Twilio number
    20429: ErrorKind.THROTTLED,  # too many requests
    14107: ErrorKind.THROTTLED,  # SMS send rate limit exceeded
    21611: ErrorKind.THROTTLED,  # 'From' has too many queued messages
    21211: ErrorKind.REJECTED,  # invalid 'To' number
    21408: ErrorKind.REJECTED,  # sending to this region is not enabled
    21610: ErrorKind.REJECTED,  # the recipient has replied STOP to this number
    21612: ErrorKind.REJECTED,  # 'To' cannot be reached from this 'From'
    21614: ErrorKind.REJECTED,  # 'To' is not a mobile number
    21602: ErrorKind.BAD_CONTENT,  # body is required
    21617: ErrorKind.BAD_CONTENT,  # body exceeds 1600 characters
}


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str
    auth_token: Secret
    sender: str  # `from`: the number (or short code, or alphanumeric id) texts go out from
    tps: float = 1.0  # one US long code's rate
    window: int = 10  # requests in flight at once
    base_url: str = DEFAULT_BASE_URL
    status_callback: str | None = None  # the public URL of /hooks/{name}/status
    timeout: float = 15.0  # seconds per request

    KEYS: ClassVar[frozenset[str]] = frozenset(
        {"account_sid", "auth_token", "auth_token_env", "from", "tps", "window", "base_url", "status_callback",
         "timeout"}
    )

    @classmethod
    def from_config(cls, name: str, raw: Mapping[str, Any]) -> TwilioSettings:
        """A `[[channels]]` entry of type `twilio`; ValueError names the bad key (and, for a
        missing environment variable, the variable: never a secret's value)."""
        entry = Entry("twilio", name, raw, cls.KEYS)
        sid = entry.text("account_sid")
        if not (len(sid) == 34 and sid.startswith("AC") and all(c in "0123456789abcdefABCDEF" for c in sid[2:])):
            raise entry.error("account_sid", "must be 'AC' followed by 32 hexadecimal digits")
        return cls(
            account_sid=sid,
            auth_token=entry.secret("auth_token"),
            sender=entry.text("from"),
            tps=entry.number("tps", cls.tps),
            window=entry.integer("window", cls.window),
            base_url=entry.url("base_url", DEFAULT_BASE_URL).rstrip("/"),
            status_callback=entry.optional_url("status_callback"),
            timeout=entry.number("timeout", cls.timeout),
        )


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]] | Mapping[str, str]) -> str:
    """`X-Twilio-Signature`: base64 of HMAC-SHA1 under the auth token over the full URL
    followed by every POST parameter, sorted by name, as name then value (no separators).
    A GET signs the URL alone (its query is in it): pass no params."""
    pairs = params.items() if isinstance(params, Mapping) else params
    # Sorted by name, and by value for a repeated name, as Twilio's libraries do.
    data = url + "".join(name + value for name, value in sorted(pairs))
    digest = hmac.new(auth_token.encode(), data.encode("utf-8", "surrogatepass"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(auth_token: str, url: str, params: Iterable[tuple[str, str]] | Mapping[str, str], given: str) -> bool:
    """Whether `given` is the signature of this request. Like Twilio's own validators, the
    URL is also tried with and without its scheme's default port."""
    pairs = list(params.items() if isinstance(params, Mapping) else params)
    given_bytes = given.encode("utf-8", "surrogatepass")
    return any(
        hmac.compare_digest(signature(auth_token, candidate, pairs).encode(), given_bytes)
        for candidate in _port_variants(url)
    )


class Twilio(HttpProvider):

    def __init__(self, name: str, settings: TwilioSettings, clock: Clock) -> None:
        self.name = name
        self.settings = settings
        self.sender = settings.sender
        self.tps = settings.tps
        self.clock = clock
        super().__init__()
        self._path = f"/2010-04-01/Accounts/{settings.account_sid}/Messages.json"

    def _client_options(self) -> dict[str, Any]:
        return {"auth": httpx.BasicAuth(self.settings.account_sid, self.settings.auth_token.reveal())}

    def __repr__(self) -> str:
        return f"Twilio(name={self.name!r}, sender={self.sender!r}, account_sid={self.settings.account_sid!r})"

    async def _send_one(self, out: Outbound) -> SendResult:
        form = {"To": out.to, "From": out.sender or self.sender, "Body": out.body}
        if self.settings.status_callback:
            form["StatusCallback"] = self.settings.status_callback
        response = await self._post(self._path, form, out.priority)
        if isinstance(response, ChannelError):
            return self._failed(out, response.kind, response.detail, None)
        body = _json_object(response)
        if response.is_success:
            sid = body.get("sid")
            if isinstance(sid, str) and sid:
                return SendResult(out.message_id, sid)
            # Created, but we cannot tell its id: receipts will not match. Not an error: a
            # retry would send it twice.
            log.error("%s: message %s accepted (HTTP %s) without a sid", self.name, out.message_id,
                      response.status_code)
            return SendResult(out.message_id)
        code = body.get("code") if isinstance(body.get("code"), int) else None
        text = body.get("message") if isinstance(body.get("message"), str) else response.reason_phrase
        return self._failed(out, _error_kind(response.status_code, code), f"HTTP {response.status_code}: {text}", code)

    def _failed(self, out: Outbound, kind: ErrorKind, detail: str, code: int | None) -> SendResult:
        # The detail (Twilio's words, which may quote the number) stays out of the log.
        log.warning("%s: message %s not sent: %s (Twilio error %s)", self.name, out.message_id, kind.value, code)
        return SendResult(out.message_id, error=ChannelError(kind, f"twilio {code}: {detail}" if code else detail))

    # -- webhooks ------------------------------------------------------------------------

    async def webhook(self, kind: str, request: WebhookRequest, sink: ChannelSink) -> WebhookResponse:
        """Verify `X-Twilio-Signature` (403 when missing or wrong), then hand a final status to
        `sink.on_receipts` or an inbound text to `sink.on_inbound`. Malformed input answers
        400; an error from the sink propagates, so the route answers 5xx and Twilio retries."""
        if kind not in ("status", "inbound"):
            return WebhookResponse(404)
        given = request.headers.get("x-twilio-signature", "")
        if not given:
            return _FORBIDDEN
        if request.method.upper() == "GET":
            signed: list[tuple[str, str]] = []  # a GET signs the URL, query included
            params = dict(request.query)
        else:
            if _media_type(request.content_type) not in ("application/x-www-form-urlencoded", ""):
                return _BAD_REQUEST
            try:
                signed = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, errors="strict")
            except UnicodeDecodeError:
                return _BAD_REQUEST
            params = dict(signed)
        if not verify(self.settings.auth_token.reveal(), request.url, signed, given):
            return _FORBIDDEN
        if kind == "status":
            return await self._status(params, sink)
        return await self._inbound(params, sink)

    async def _status(self, params: dict[str, str], sink: ChannelSink) -> WebhookResponse:
        sid = params.get("MessageSid") or params.get("SmsSid")
        status = params.get("MessageStatus") or params.get("SmsStatus")
        if not sid or not status:
            return _BAD_REQUEST
        receipt_status = RECEIPT_STATUSES.get(status)
        if receipt_status is None:
            if status not in PASSING_STATUSES:
                log.info("%s: status callback with unknown status %r ignored", self.name, status)
            return _OK
        code = params.get("ErrorCode") or None
        receipt = Receipt(self.name, sid, receipt_status, None if code in (None, "0") else code, self.clock.now())
        await sink.on_receipts([receipt])
        return _OK

    async def _inbound(self, params: dict[str, str], sink: ChannelSink) -> WebhookResponse:
        sid = params.get("MessageSid") or params.get("SmsMessageSid")
        sender, to = params.get("From"), params.get("To")
        if not sid or not sender or not to:
            return _BAD_REQUEST
        # An MMS may come with no text; its media are not ours to handle yet.
        inbound = Inbound(self.name, sid, sender, to, params.get("Body", ""), self.clock.now())
        if not well_formed(inbound):
            return _BAD_REQUEST
        await sink.on_inbound(inbound)
        return WebhookResponse(200, EMPTY_TWIML, "text/xml")


# A request that failed before it was all written cannot have reached Twilio: a retry is
# safe. One written but never answered (no reply in time, connection dropped) may have been
# taken: its outcome is unknown, and its topic's policy says whether it is sent again (a
# code, an alert) or held as `unknown` (an offer), never a blind retry (core.topics).
_OK = WebhookResponse(200)
_FORBIDDEN = WebhookResponse(403)
_BAD_REQUEST = WebhookResponse(400)


def _error_kind(http_status: int, code: int | None) -> ErrorKind:
    if code in ERROR_KINDS:
        return ERROR_KINDS[code]
    if http_status == 429:
        return ErrorKind.THROTTLED
    if http_status in (401, 403, 404):
        return ErrorKind.CONFIG
    if http_status >= 500:
        return ErrorKind.CONNECTION
    return ErrorKind.REJECTED


def _port_variants(url: str) -> list[str]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        return [url]
    if default is None or port not in (None, default):
        return [url]
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    with_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{default}"))
    without = urlunsplit(parts._replace(netloc=f"{prefix}{host}"))
    return [url] + [u for u in (with_port, without) if u != url]


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
