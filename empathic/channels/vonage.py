"""Vonage (Nexmo) SMS API as a channel: one REST call per text; delivery receipts and inbound
texts arrive through signed webhooks.

Send (https://developer.vonage.com/en/api/sms#send-an-sms): `POST {base_url}/sms/json`,
form-encoded `api_key`, `api_secret`, `from`, `to` (digits, no `+`), `text`, `type=unicode`
when the text is not GSM-7, `status-report-req=1` and `client-ref` = our message id. Vonage
answers 200 with one entry per SMS part; `status` "0" is accepted, anything else is an error
from the table at https://developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms:

    {"message-count": "2", "messages": [
        {"to": "447700900000", "message-id": "0C000000217B7F02", "status": "0", "client-ref": "msg_…", …},
        {"to": "447700900000", "message-id": "0C000000217B7F03", "status": "0", "client-ref": "msg_…", …}]}
    {"message-count": "1", "messages": [{"status": "4", "error-text": "Bad Credentials"}]}

Our carrier id is our own message id, the `client-ref` that Vonage echoes in every delivery
receipt. A long text goes as several parts, each with its own `message-id` and its own receipt,
and a receipt does not say which part it is for; `client-ref` matches every part's receipt to
the message with no state to keep, where the first part's id would leave the other parts'
receipts unmatched. The engine keeps the best news, so the message is `delivered` once any
part's receipt says so (a handset acknowledges a concatenated text only once it has every
part: see https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts).

Webhooks (GET query, POST form or POST JSON, as the account is set up), signed with the `sig`
parameter (https://developer.vonage.com/en/getting-started/concepts/signing-messages):

    status   messageId=0C000000217B7F02&client-ref=msg_…&status=delivered&err-code=0&msisdn=447700900000&…
    inbound  messageId=0A0000000123ABCD1&msisdn=447700900001&to=447700900000&text=Hello&type=text&…
             (a part of a long text adds concat=true, concat-ref, concat-total and concat-part)

Vonage cannot tell us by our id whether it holds a message, so `answers_lookup` is false.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl

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
from empathic.core.sms import Encoding, encoding_for

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://rest.nexmo.com"


class SignatureMethod(enum.StrEnum):
    """The signing methods Vonage's dashboard offers: the MD5 hash (its default) or an HMAC."""

    MD5HASH = "md5hash"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"


# The `status` of each part in the send response (troubleshooting-sms, "SMS API error codes").
ERROR_KINDS: dict[str, ErrorKind] = {
    "1": ErrorKind.THROTTLED,  # Throttled
    "2": ErrorKind.CONFIG,  # Missing Parameters
    "3": ErrorKind.REJECTED,  # Invalid Parameters (usually the `to`)
    "4": ErrorKind.CONFIG,  # Invalid Credentials
    "5": ErrorKind.CONNECTION,  # Internal Error
    "6": ErrorKind.REJECTED,  # Invalid Message (e.g. an unrecognised number prefix)
    "7": ErrorKind.REJECTED,  # Number Barred
    "8": ErrorKind.CONFIG,  # Partner Account Barred
    "9": ErrorKind.CONFIG,  # Partner Quota Violation (no credit)
    "10": ErrorKind.THROTTLED,  # Too Many Existing Binds
    "11": ErrorKind.CONFIG,  # Account Not Enabled For HTTP
    "12": ErrorKind.BAD_CONTENT,  # Message Too Long
    "14": ErrorKind.CONFIG,  # Invalid Signature
    "15": ErrorKind.REJECTED,  # Invalid Sender Address (not allowed towards this destination)
    "22": ErrorKind.REJECTED,  # Invalid Network Code
    "23": ErrorKind.CONFIG,  # Invalid Callback Url
    "29": ErrorKind.REJECTED,  # Non-Whitelisted Destination (demo account)
    "32": ErrorKind.CONFIG,  # Signature And API Secret Disallowed
    "33": ErrorKind.REJECTED,  # Number De-activated
}

# DLR `status` (delivery-receipts, "DLR status messages"). `failed` is a carrier's "not
# delivered", `rejected` its refusal to ever try. `accepted` and `buffered` are on the way,
# `unknown` says nothing: none of them is recorded (the engine's receipt time-out covers them).
RECEIPT_STATUSES: dict[str, ReceiptStatus] = {
    "delivered": ReceiptStatus.DELIVERED,
    "expired": ReceiptStatus.EXPIRED,
    "failed": ReceiptStatus.UNDELIVERED,
    "rejected": ReceiptStatus.FAILED,
}
PASSING_STATUSES = frozenset({"accepted", "buffered", "unknown"})

# Parts of a long inbound text wait in memory (see Concatenation) for as long as Vonage keeps
# retrying a webhook, and no more of them than this.
PARTS_KEPT_FOR = timedelta(hours=24)
MAX_PENDING_TEXTS = 10_000


@dataclass(frozen=True)
class VonageSettings:
    api_key: str
    api_secret: Secret
    signature_secret: Secret  # webhooks are refused unless signed with it
    sender: str  # `from`: a number or an alphanumeric sender id
    signature_method: SignatureMethod = SignatureMethod.MD5HASH
    # Seconds a signed webhook's `timestamp` may be from our clock (0: not checked). The
    # timestamp is signed, so this is what makes a captured request useless later.
    signature_max_age: float = 300.0
    tps: float = 1.0
    window: int = 10  # requests in flight at once
    base_url: str = DEFAULT_BASE_URL
    status_callback: str | None = None  # sent as `callback`; else the account's DLR webhook
    timeout: float = 15.0  # seconds per request

    KEYS: ClassVar[frozenset[str]] = frozenset(
        {"api_key", "api_secret", "api_secret_env", "signature_secret", "signature_secret_env", "signature_method",
         "signature_max_age", "from", "tps", "window", "base_url", "status_callback", "timeout"}
    )

    @classmethod
    def from_config(cls, name: str, raw: Mapping[str, Any]) -> VonageSettings:
        """A `[[channels]]` entry of type `vonage`; ValueError names the bad key (and, for a
        missing environment variable, the variable: never a secret's value)."""
        entry = Entry("vonage", name, raw, cls.KEYS)
        method = entry.choice("signature_method", SignatureMethod.MD5HASH.value, [m.value for m in SignatureMethod])
        max_age = raw.get("signature_max_age", cls.signature_max_age)
        if isinstance(max_age, bool) or not isinstance(max_age, int | float) or max_age < 0:
            raise entry.error("signature_max_age", "must be a number of seconds, 0 or more")
        return cls(
            api_key=entry.text("api_key"),
            api_secret=entry.secret("api_secret"),
            signature_secret=entry.secret("signature_secret"),
            sender=entry.text("from"),
            signature_method=SignatureMethod(method),
            signature_max_age=float(max_age),
            tps=entry.number("tps", cls.tps),
            window=entry.integer("window", cls.window),
            base_url=entry.url("base_url", DEFAULT_BASE_URL).rstrip("/"),
            status_callback=entry.optional_url("status_callback"),
            timeout=entry.number("timeout", cls.timeout),
        )


def signature(secret: str, method: SignatureMethod, params: Mapping[str, str]) -> str:
    """Vonage's `sig` of `params` (any `sig` among them left out), in lower-case hex: the
    parameters sorted by name as `&name=value`, with `&` and `=` in values turned into `_`;
    then MD5 of that string followed by the secret, or its HMAC under the secret."""
    signed = "".join(
        f"&{name}={params[name].replace('&', '_').replace('=', '_')}" for name in sorted(params) if name != "sig"
    )
    # surrogatepass: a forged parameter holding a lone surrogate gets a (wrong) signature, not an error.
    if method is SignatureMethod.MD5HASH:
        return hashlib.md5((signed + secret).encode("utf-8", "surrogatepass")).hexdigest()
    return hmac.new(secret.encode(), signed.encode("utf-8", "surrogatepass"), method.value).hexdigest()


def verify(secret: str, method: SignatureMethod, params: Mapping[str, str]) -> bool:
    """Whether `params` carry their own `sig` (Vonage sends MD5 in lower case, HMACs in upper)."""
    given = params.get("sig", "")
    expected = signature(secret, method, params)
    return bool(given) and hmac.compare_digest(given.lower().encode("utf-8", "surrogatepass"), expected.encode())


@dataclass
class LongText:
    """The parts of one long inbound text seen so far."""

    total: int
    first_seen: datetime
    parts: dict[int, tuple[str, str]] = field(default_factory=dict)  # part number -> (messageId, text)

    @property
    def whole(self) -> bool:
        return len(self.parts) == self.total

    @property
    def carrier_id(self) -> str:
        return self.parts[1][0]  # the first part's: the same whichever part came last

    @property
    def text(self) -> str:
        return "".join(self.parts[n][1] for n in range(1, self.total + 1))


class Concatenation:
    """Holds the parts of long inbound texts until each is whole.

    In memory: parts already answered 2xx are lost if the process stops before the last part
    comes (Vonage will not send them again). A durable store would need a table of its own.
    """

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str, str, int], LongText] = {}

    def add(self, key: tuple[str, str, str, int], part: int, message_id: str, text: str,
            now: datetime) -> LongText | None:
        """Keep one part; once the text is whole, hand it over (and hold it no longer)."""
        self._expire(now)
        long_text = self._pending.get(key)
        if long_text is None:
            if len(self._pending) >= MAX_PENDING_TEXTS:
                oldest = min(self._pending, key=lambda k: self._pending[k].first_seen)
                self._drop(oldest)
            long_text = self._pending[key] = LongText(key[3], now)
        long_text.parts[part] = (message_id, text)  # a retried part replaces itself
        return self._pending.pop(key) if long_text.whole else None

    def hold(self, key: tuple[str, str, str, int], long_text: LongText) -> None:
        """Hold a whole text again (it could not be handed in), merged with any new parts."""
        newer = self._pending.get(key)
        if newer is not None:
            long_text.parts.update(newer.parts)
        self._pending[key] = long_text

    def __len__(self) -> int:
        return len(self._pending)

    def _expire(self, now: datetime) -> None:
        for key in [k for k, t in self._pending.items() if now - t.first_seen > PARTS_KEPT_FOR]:
            self._drop(key)

    def _drop(self, key: tuple[str, str, str, int]) -> None:
        long_text = self._pending.pop(key)
        log.warning("dropped an unfinished long text (%d of %d parts)", len(long_text.parts), long_text.total)


class Vonage(HttpProvider):

    def __init__(self, name: str, settings: VonageSettings, clock: Clock) -> None:
        self.name = name
        self.settings = settings
        self.sender = settings.sender
        self.tps = settings.tps
        self.clock = clock
        self.concatenation = Concatenation()
        super().__init__()

    def __repr__(self) -> str:
        return f"Vonage(name={self.name!r}, sender={self.sender!r}, api_key={self.settings.api_key!r})"

    async def _send_one(self, out: Outbound) -> SendResult:
        # The secret travels in the body, never in the URL (which httpx logs).
        form = {
            "api_key": self.settings.api_key,
            "api_secret": self.settings.api_secret.reveal(),
            "from": _vonage_number(out.sender or self.sender),
            "to": _vonage_number(out.to),
            "text": out.body,
            "status-report-req": "1",
            "client-ref": out.message_id,  # up to 40 characters; our ids have 30
        }
        if encoding_for(out.body) is Encoding.UCS2:
            form["type"] = "unicode"
        if self.settings.status_callback:
            form["callback"] = self.settings.status_callback
        response = await self._post("/sms/json", form, out.priority)
        if isinstance(response, ChannelError):
            return self._failed(out, response.kind, response.detail, None)
        if not response.is_success:
            kind = _http_error_kind(response.status_code)
            return self._failed(out, kind, f"HTTP {response.status_code}", None)
        parts = _parts(response)
        if not parts:
            return self._failed(out, ErrorKind.CONNECTION, f"HTTP {response.status_code} without messages", None)
        refused = [p for p in parts if str(p.get("status")) != "0"]
        if len(refused) < len(parts):
            if refused:  # some parts are out: sending again would double them
                log.warning("%s: message %s went out without %d of its %d parts (status %s)", self.name,
                            out.message_id, len(refused), len(parts), refused[0].get("status"))
            log.debug("%s: message %s is Vonage's %s", self.name, out.message_id,
                      ", ".join(str(p.get("message-id")) for p in parts))
            return SendResult(out.message_id, out.message_id)
        status = str(refused[0].get("status"))
        text = refused[0].get("error-text") if isinstance(refused[0].get("error-text"), str) else ""
        return self._failed(out, ERROR_KINDS.get(status, ErrorKind.REJECTED), f"vonage {status}: {text}", status)

    def _failed(self, out: Outbound, kind: ErrorKind, detail: str, status: str | None) -> SendResult:
        # The detail (Vonage's words) stays out of the log.
        log.warning("%s: message %s not sent: %s (Vonage status %s)", self.name, out.message_id, kind.value, status)
        return SendResult(out.message_id, error=ChannelError(kind, detail))

    # -- webhooks ------------------------------------------------------------------------

    async def webhook(self, kind: str, request: WebhookRequest, sink: ChannelSink) -> WebhookResponse:
        """Verify `sig` (403 when missing, wrong or stale), then hand a final receipt to
        `sink.on_receipts` or a whole inbound text to `sink.on_inbound`. Malformed input
        answers 400; an error from the sink propagates, so the route answers 5xx and Vonage
        retries."""
        if kind not in ("status", "inbound"):
            return WebhookResponse(404)
        params = _params(request)
        if params is None:
            return _BAD_REQUEST
        secret = self.settings.signature_secret.reveal()
        if not verify(secret, self.settings.signature_method, params) or not self._fresh(params):
            return _FORBIDDEN
        if kind == "status":
            return await self._status(params, sink)
        return await self._inbound(params, sink)

    def _fresh(self, params: Mapping[str, str]) -> bool:
        if not self.settings.signature_max_age:
            return True
        try:
            signed_at = int(params.get("timestamp", ""))
        except ValueError:
            return False
        age = self.clock.now().timestamp() - signed_at
        return abs(age) <= self.settings.signature_max_age

    async def _status(self, params: dict[str, str], sink: ChannelSink) -> WebhookResponse:
        vonage_id, status = params.get("messageId"), params.get("status")
        if not vonage_id or not status:
            return _BAD_REQUEST
        receipt_status = RECEIPT_STATUSES.get(status)
        if receipt_status is None:
            if status not in PASSING_STATUSES:
                log.info("%s: receipt with unknown status %r ignored", self.name, status)
            return _OK
        ours = params.get("client-ref")
        if not ours:  # not sent by Empathic (the account's other traffic)
            log.info("%s: receipt for %s without client-ref ignored", self.name, vonage_id)
            return _OK
        code = params.get("err-code") or None
        receipt = Receipt(self.name, ours, receipt_status, None if code in (None, "0") else code, self.clock.now())
        await sink.on_receipts([receipt])
        return _OK

    async def _inbound(self, params: dict[str, str], sink: ChannelSink) -> WebhookResponse:
        vonage_id, sender, to = params.get("messageId"), params.get("msisdn"), params.get("to")
        if not vonage_id or not sender or not to:
            return _BAD_REQUEST
        if params.get("type") == "binary":
            log.info("%s: binary message %s ignored", self.name, vonage_id)
            return _OK
        text = params.get("text")
        if text is None:
            return _BAD_REQUEST
        sender, to = _e164(sender), _e164(to)
        now = self.clock.now()
        part_of = Inbound(self.name, vonage_id, sender, to, text, now)
        if not well_formed(part_of):  # a long text's id is its first part's
            return _BAD_REQUEST
        if params.get("concat") != "true":
            await sink.on_inbound(part_of)
            return _OK
        try:
            total, part = int(params["concat-total"]), int(params["concat-part"])
            ref = params["concat-ref"]
        except (KeyError, ValueError):
            return _BAD_REQUEST
        if not 1 <= part <= total <= 255:  # the reference and counts are one octet each in the UDH
            return _BAD_REQUEST
        key = (sender, to, ref, total)
        long_text = self.concatenation.add(key, part, vonage_id, text, now)
        if long_text is None:
            return _OK
        try:
            await sink.on_inbound(Inbound(self.name, long_text.carrier_id, sender, to, long_text.text, now))
        except BaseException:
            self.concatenation.hold(key, long_text)  # Vonage's retry of this part completes it again
            raise
        return _OK


# A request that failed before it was all written cannot have reached Vonage: a retry is
# safe. One written but never answered (no reply in time, connection dropped) may have been
# taken: its outcome is unknown, and its topic's policy says whether it is sent again (a
# code, an alert) or held as `unknown` (an offer), never a blind retry (core.topics).
_OK = WebhookResponse(204)
_FORBIDDEN = WebhookResponse(403)
_BAD_REQUEST = WebhookResponse(400)


def _params(request: WebhookRequest) -> dict[str, str] | None:
    """The webhook's parameters from a GET query, a POST form or a POST JSON object; None when
    the body cannot be read. (Vonage: a POST with query data too is not supported.)"""
    if request.method.upper() == "GET" or not request.body:
        return dict(request.query)
    media_type = request.content_type.split(";", 1)[0].strip().lower()
    try:
        if media_type == "application/json":
            data = json.loads(request.body)
            if not isinstance(data, dict):
                return None
            params: dict[str, str] = {}
            for name, value in data.items():
                if value is None:
                    continue  # as if absent
                if isinstance(value, bool) or not isinstance(value, str | int):
                    return None
                params[name] = str(value)
            return params
        if media_type in ("application/x-www-form-urlencoded", ""):
            return dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, errors="strict"))
    except (UnicodeDecodeError, ValueError):
        return None
    return None


def _http_error_kind(http_status: int) -> ErrorKind:
    if http_status == 429:
        return ErrorKind.THROTTLED
    if http_status >= 500:
        return ErrorKind.CONNECTION
    return ErrorKind.CONFIG  # 401/403 credentials, 404 a wrong base URL


def _parts(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict)]


def _vonage_number(number: str) -> str:
    """Vonage takes international numbers as digits alone."""
    return number[1:] if number.startswith("+") and number[1:].isdigit() else number


def _e164(number: str) -> str:
    return f"+{number}" if number.isdigit() else number
