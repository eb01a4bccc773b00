"""The email channel: hands messages to an SMTP server (a relay or a provider's submission port).

Configured by a `[[channels]]` entry:

    [[channels]]
    type = "smtp"
    name = "mail"
    host = "smtp.example"
    port = 587                          # default: 587 starttls, 465 tls, 25 none
    username = "texts@acme.example"     # optional; AUTH only when given
    password_env = "SMTP_PASSWORD"      # or `password = "..."` (a literal)
    from = "Acme <texts@acme.example>"
    security = "starttls"               # "starttls" (default) | "tls" | "none"
    timeout = 30                        # seconds for connecting and for each reply
    tps = 50                            # messages per second the dispatcher may hand over
    window = 4                          # connections used in parallel
    ca_file = "/etc/ssl/relay-ca.pem"   # optional: trust a private CA for the server

Connections stay open between batches; a batch is shared by up to `window` connections,
each sending its messages one after the other. A connection the server closed while idle (or
idle for over a minute) is replaced before use. When a connection dies during MAIL, RCPT or
DATA (before the server's 354 and before any of the body was sent), the message is tried once
more on a fresh connection: the server cannot have taken it. Once the body and its
terminating `.` are on the wire, the server may have taken the message even if no reply
comes, and sending it again could deliver it twice: such a message is reported as
`ErrorKind.UNKNOWN` with detail `outcome_unknown` (the engine marks it `unknown` and never
retries it), and is never sent twice within one `send`.

SMTP gives no message id back, so `carrier_id` is the `Message-ID` header this channel
sets, `<{message_id}@{domain of the sender}>`, which is how bounces and replies downstream
can be traced to the message. SMTP has no way to ask later whether a message was taken,
so `answers_lookup` is False: the engine marks an interrupted hand-off `unknown`.

How replies map to `ErrorKind` (the dispatcher retries CONNECTION and THROTTLED, never UNKNOWN):

    before contacting the server: CR/LF in a header value        BAD_CONTENT
                                  a recipient that is not an     REJECTED
                                    address (or needs SMTPUTF8)
                                  a sender that is not one       CONFIG
    connecting, TLS, timeouts, the server going away            CONNECTION
    no reply after the body was sent (`outcome_unknown`)         UNKNOWN
    an unexpected exception mid-message (`outcome_unknown`)      UNKNOWN
    421 anywhere (the server is closing the connection)          CONNECTION
    any 4xx while connecting (greeting, EHLO, STARTTLS, AUTH)    CONNECTION
    other 4xx (450, 451, 452 ...: greylisting, rate limits,      THROTTLED
      full queues: the server answered "later", it is not gone)
    552 to RCPT (RFC 5321 4.5.3.1.10: treat as 452)              THROTTLED
    530, 534, 535, 538 (authentication)                          CONFIG
    a certificate that does not verify                           CONFIG
    STARTTLS or AUTH required by settings but not offered        CONFIG
    5xx while connecting or to MAIL FROM (our sender refused)    CONFIG
    5xx to RCPT (550, 551, 553 ...: no such recipient, policy)   REJECTED
    5xx to DATA                                                  REJECTED
    after the body: 552, or enhanced x.3.4 / x.6.y (too big,     BAD_CONTENT
      content the server cannot take)
    after the body: other 5xx (554 policy, spam ...)             REJECTED
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import ssl
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import policy as email_policy
from email.header import Header
from email.headerregistry import Address, AddressHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Literal, cast

import aiosmtplib

from empathic.channels.base import ChannelError, ChannelSink, ErrorKind, Outbound, SendResult
from empathic.channels.config import Entry, Secret
from empathic.core.clock import Clock, SystemClock

log = logging.getLogger(__name__)

Security = Literal["starttls", "tls", "none"]
_DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}
_KEYS = {
    "host", "port", "username", "password", "password_env", "from", "security", "timeout", "tps", "window", "ca_file",
}  # fmt: skip


class _MimePolicy(email_policy.EmailPolicy):
    """The SMTP policy, 7bit (bodies go out quoted-printable or base64, so no server needs
    8BITMIME), with non-ASCII Subject and display names encoded by `email.header.Header`:
    the new folder (CPython 3.11 at least) drops the space where it splits such a header
    between two encoded words ("✅ 🎉 — à" arrives as "✅ 🎉— à")."""

    def fold_binary(self, name: str, value: str) -> bytes:
        key = name.lower()
        if key == "subject" and not str(value).isascii():
            encoded = Header(str(value), "utf-8", header_name=name).encode(linesep=self.linesep, maxlinelen=78)
            return f"{name}: {encoded}{self.linesep}".encode("ascii")
        if key in ("from", "to") and isinstance(value, AddressHeader) and not str(value).isascii():
            (address,) = value.addresses
            shown = Header(address.display_name, "utf-8", header_name=name).encode(linesep=self.linesep, maxlinelen=78)
            line = f"{name}: {shown}"
            fits = len(line.rsplit(self.linesep, 1)[-1]) + len(address.addr_spec) + 3 <= 78
            space = " " if fits else f"{self.linesep} "
            return f"{line}{space}<{address.addr_spec}>{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


_POLICY = _MimePolicy(linesep="\r\n", cte_type="7bit")
_AUTH_CODES = {530, 534, 535, 538}
# A connection idle longer than this is closed and replaced rather than reused: servers
# drop idle sessions after a few minutes, and a NAT may forget one silently (a half-open
# connection would cost a full time-out to discover).
_IDLE_LIMIT = 60.0
_MESSAGE_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    name: str
    host: str
    from_: str  # `Name <address>` or a bare address: the From header and the channel's sender
    port: int = 587
    username: str | None = None
    password: Secret | None = field(default=None, repr=False)
    security: Security = "starttls"
    timeout: float = 30.0
    tps: float = 10.0
    window: int = 4
    ca_file: str | None = None

    @classmethod
    def from_config(cls, name: str, raw: Mapping[str, Any], env: Mapping[str, str] | None = None) -> SmtpSettings:
        """Read a `[[channels]]` entry. Raises ValueError naming the key (or the environment
        variable) at fault; a secret's value never appears in the message."""
        entry = Entry("smtp", name, raw, _KEYS, env=env)
        host = entry.text("host")
        security = cast(Security, entry.choice("security", "starttls", list(_DEFAULT_PORTS)))
        sender = entry.text("from")
        if _mailbox(sender) is None:
            raise entry.error("from", f"is not an email address: {sender!r}")
        username = entry.optional_text("username")
        password = entry.optional_secret("password")
        if password is not None and username is None:
            raise entry.error("username", "is required when a password is given")
        if username is not None and password is None:
            raise entry.error("password", "is required when a username is given (password or password_env)")
        ca_file = entry.optional_text("ca_file")
        # Checked here: at connect time a missing file would look like a network failure.
        if ca_file is not None and not os.path.isfile(ca_file):
            raise entry.error("ca_file", f"no such file: {ca_file}")
        return cls(
            name=name,
            host=host,
            from_=sender,
            port=entry.integer("port", _DEFAULT_PORTS[security], high=65535),
            username=username,
            password=password,
            security=security,
            timeout=entry.number("timeout", 30.0),
            tps=entry.number("tps", 10.0),
            window=entry.integer("window", 4, high=100),
            ca_file=ca_file,
        )


def _has_control(value: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in value)


def _mailbox(text: str) -> Address | None:
    """One mailbox (`addr` or `Name <addr>`) with an ASCII local part and a host name
    domain (an IDN becomes its punycode), or None. Deliberately stricter than RFC 5322:
    no groups, lists, address literals or SMTPUTF8 local parts."""
    if not text or _has_control(text):
        return None
    try:
        header = HeaderRegistry()("To", text)
        addresses = header.addresses if isinstance(header, AddressHeader) else ()  # "To" always is one
    except Exception:  # the parser raises on some malformed input instead of a defect
        return None
    if header.defects or len(addresses) != 1:
        return None
    address = addresses[0]
    local, domain = address.username, address.domain
    if not local or not domain or len(local) > 64 or not local.isascii() or " " in local:
        return None
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or len(ascii_domain) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    if len(local) + 1 + len(ascii_domain) > 254:
        return None
    return Address(display_name=address.display_name, username=local, domain=ascii_domain)


@dataclass(frozen=True, slots=True)
class _Envelope:
    """One message ready for the wire."""

    index: int
    message_id: str
    sender: str  # envelope addresses (MAIL FROM / RCPT TO)
    recipient: str
    carrier_id: str  # the Message-ID header
    payload: bytes  # the message, dot-stuffed, ending with the DATA terminator


def _envelope(index: int, out: Outbound, default_from: str, now_header: str) -> _Envelope | ChannelError:
    """Build the MIME message, or the error that stops it before the server is contacted."""
    for value in (out.to, out.sender, out.subject or ""):
        # CR or LF would start a header of the caller's choosing; the other line breaks
        # Python knows (VT, FF, NEL, U+2028 ...) and control characters have no place there either.
        if "\r" in value or "\n" in value or len(value.splitlines()) > 1 or _has_control(value.replace("\t", " ")):
            return ChannelError(ErrorKind.BAD_CONTENT, "header_injection")
    if not _MESSAGE_ID.fullmatch(out.message_id):
        return ChannelError(ErrorKind.BAD_CONTENT, "invalid_message_id")
    to = _mailbox(out.to)
    if to is None:
        return ChannelError(ErrorKind.REJECTED, "invalid_address")
    sender = _mailbox(out.sender or default_from)
    if sender is None:
        return ChannelError(ErrorKind.CONFIG, "invalid_sender")
    carrier_id = f"<{out.message_id}@{sender.domain}>"
    msg = EmailMessage(policy=_POLICY)
    try:
        msg["Message-ID"] = carrier_id
        msg["Date"] = now_header
        msg["From"] = sender
        msg["To"] = to
        if out.subject is not None:
            msg["Subject"] = out.subject
        msg.set_content(out.body)
        if out.html is not None:
            msg.add_alternative(out.html, subtype="html")
        payload = msg.as_bytes(policy=_POLICY)
    except (ValueError, TypeError, UnicodeError) as exc:
        return ChannelError(ErrorKind.BAD_CONTENT, f"cannot_build_message: {type(exc).__name__}")
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    payload = re.sub(rb"(?m)^\.", b"..", payload) + b".\r\n"
    return _Envelope(index, out.message_id, sender.addr_spec, to.addr_spec, carrier_id, payload)


Stage = Literal["connect", "mail", "rcpt", "data", "message"]


def reply_kind(stage: Stage, code: int, text: str = "") -> ErrorKind:
    """The error kind of a negative reply at a stage of the SMTP conversation (see the module's table)."""
    if code == 421:
        return ErrorKind.CONNECTION
    if code in _AUTH_CODES:
        return ErrorKind.CONFIG
    if 400 <= code < 500:
        return ErrorKind.CONNECTION if stage == "connect" else ErrorKind.THROTTLED
    if stage == "rcpt":
        return ErrorKind.THROTTLED if code == 552 else ErrorKind.REJECTED
    if stage in ("connect", "mail"):
        return ErrorKind.CONFIG
    if stage == "message":
        enhanced = re.match(r"\s*5\.(\d{1,3})\.(\d{1,3})\b", text)
        if code == 552 or (enhanced and (enhanced[1] == "6" or enhanced.group(1, 2) == ("3", "4"))):
            return ErrorKind.BAD_CONTENT
    return ErrorKind.REJECTED


def _reply_error(stage: Stage, code: int, text: str) -> ChannelError:
    detail = f"{stage} {code} {' '.join(text.split())}".strip()
    return ChannelError(reply_kind(stage, code, text), detail[:300])


_Dead = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError)


def _connect_error(exc: BaseException) -> ChannelError:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _reply_error("connect", exc.code, exc.message)
    cause = exc if isinstance(exc, ssl.SSLCertVerificationError) else exc.__cause__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return ChannelError(ErrorKind.CONFIG, f"connect tls_certificate: {cause.verify_message}"[:300])
    if isinstance(exc, (aiosmtplib.SMTPConnectError, *_Dead)):
        return ChannelError(ErrorKind.CONNECTION, f"connect {type(exc).__name__}: {exc}"[:300])
    # aiosmtplib's own refusals: STARTTLS or AUTH not offered by the server.
    return ChannelError(ErrorKind.CONFIG, f"connect {type(exc).__name__}: {exc}"[:300])


class _Lost(Exception):
    """The connection failed before the server could have taken the message: safe to retry."""

    def __init__(self, error: ChannelError) -> None:
        self.error = error


@dataclass
class _Session:
    client: aiosmtplib.SMTP
    idle_since: float = 0.0

    @property
    def usable(self) -> bool:
        return self.client.is_connected and time.monotonic() - self.idle_since < _IDLE_LIMIT


class Smtp:
    """An SMTP server as a channel (see the module's docstring for what happens when)."""

    answers_lookup = False

    def __init__(self, name: str, settings: SmtpSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.name = name
        self.sender = settings.from_
        self.tps = settings.tps
        self.clock: Clock = clock or SystemClock()
        self._sink: ChannelSink | None = None
        self._idle: list[_Session] = []
        self._slots = asyncio.Semaphore(settings.window)  # connections open or in use
        self._closing = False
        self._local_hostname: str | None = None

    def __repr__(self) -> str:
        s = self.settings
        return f"Smtp(name={self.name!r}, host={s.host!r}, port={s.port}, security={s.security!r})"

    async def start(self, sink: ChannelSink) -> None:
        self._sink = sink  # nothing comes back over SMTP; bounces arrive some other way
        self._closing = False

    async def stop(self) -> None:
        self._closing = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._close(session) for session in idle))

    async def lookup(self, message_ids: list[str]) -> dict[str, str]:
        return {}

    async def send(self, batch: list[Outbound]) -> list[SendResult]:
        """Send each message once; results in batch order. A message whose body reached the
        server without a reply comes back as UNKNOWN `outcome_unknown` (it may have been
        taken): the caller must not send it again blindly."""
        results: list[SendResult | None] = [None] * len(batch)
        date = format_datetime(self.clock.now())
        queue: deque[_Envelope] = deque()
        for i, out in enumerate(batch):
            built = _envelope(i, out, self.settings.from_, date)
            if isinstance(built, ChannelError):
                results[i] = SendResult(out.message_id, error=built)
            else:
                queue.append(built)
        lanes = min(self.settings.window, len(queue))
        stopped_by = await asyncio.gather(*(self._lane(queue, results) for _ in range(lanes)))
        # Every lane stopped for want of a connection: the rest share the last reason.
        reason = next((e for e in reversed(stopped_by) if e is not None), None)
        while queue:
            envelope = queue.popleft()
            assert reason is not None
            results[envelope.index] = SendResult(envelope.message_id, error=reason)
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    async def _lane(self, queue: deque[_Envelope], results: list[SendResult | None]) -> ChannelError | None:
        """One connection sending messages from the shared queue until it is empty. Returns
        the error that stopped it early (no connection could be made), else None."""
        async with self._slots:
            session = self._take_idle()
            try:
                while queue:
                    envelope = queue.popleft()
                    for attempt in (1, 2):
                        if session is None or not session.client.is_connected:
                            if session is not None:
                                session.client.close()
                            try:
                                session = await self._open()
                            except Exception as exc:
                                session = None
                                error = _connect_error(exc)
                                log.warning("smtp %s: cannot connect to %s:%d: %s", self.name,
                                            self.settings.host, self.settings.port, error.detail)
                                results[envelope.index] = SendResult(envelope.message_id, error=error)
                                return error
                        try:
                            results[envelope.index] = await self._transaction(session.client, envelope)
                            break
                        except _Lost as lost:
                            session.client.close()
                            if attempt == 2:
                                results[envelope.index] = SendResult(envelope.message_id, error=lost.error)
                        except Exception:
                            # Not knowing where it broke, assume the body may have gone out;
                            # one message's surprise must not fail (or repeat) the batch.
                            log.exception("smtp %s: unexpected failure sending %s", self.name, envelope.message_id)
                            session.client.close()
                            error = ChannelError(ErrorKind.UNKNOWN, "outcome_unknown")
                            results[envelope.index] = SendResult(envelope.message_id, error=error)
                            break
                return None
            finally:
                if session is not None:
                    await self._give_back(session)

    def _take_idle(self) -> _Session | None:
        while self._idle:
            session = self._idle.pop()
            if session.usable:
                return session
            session.client.close()
        return None

    async def _give_back(self, session: _Session) -> None:
        if self._closing or not session.client.is_connected:
            await self._close(session)
            return
        session.idle_since = time.monotonic()
        self._idle.append(session)

    async def _open(self) -> _Session:
        s = self.settings
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        # The password is given to login() only, never kept on the client object.
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            timeout=s.timeout,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",
            local_hostname=self._local_hostname,
            cert_bundle=s.ca_file,
        )
        try:
            await client.connect()
            if s.username is not None and s.password is not None:
                await client.login(s.username, s.password.reveal())
        except BaseException:
            client.close()
            raise
        return _Session(client)

    async def _close(self, session: _Session) -> None:
        client = session.client
        if client.is_connected:
            try:
                await asyncio.wait_for(client.quit(), timeout=min(self.settings.timeout, 2.0))
            except (Exception, asyncio.TimeoutError):
                pass
        client.close()

    async def _transaction(self, client: aiosmtplib.SMTP, envelope: _Envelope) -> SendResult:
        """MAIL, RCPT, DATA and the body on one open connection. Raises _Lost when the
        connection failed before the body was sent (the message was not taken)."""
        stage: Stage = "mail"
        try:
            await client.mail(envelope.sender)
            stage = "rcpt"
            await client.rcpt(envelope.recipient)
            stage = "data"
            reply = await client.execute_command(b"DATA")
            if reply.code != 354:
                raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        except aiosmtplib.SMTPResponseException as exc:
            error = _reply_error(stage, exc.code, exc.message)
            if exc.code == 421 or not client.is_connected:
                raise _Lost(error) from exc
            await self._reset(client)
            return SendResult(envelope.message_id, error=error)
        except _Dead as exc:
            raise _Lost(ChannelError(ErrorKind.CONNECTION, f"{stage} {type(exc).__name__}")) from exc

        # aiosmtplib's data() sends DATA and the body as one step, so a failure inside it
        # could not tell "before DATA" from "after the terminator"; the body goes out here
        # by hand. Once it is written, the server may take the message whatever we hear back.
        protocol = client.protocol
        if protocol is None or not client.is_connected:
            raise _Lost(ChannelError(ErrorKind.CONNECTION, "data SMTPServerDisconnected"))
        try:
            protocol.write(envelope.payload)
            reply = await protocol.read_response(timeout=self.settings.timeout)
        except _Dead:
            client.close()  # a late reply must not be read as the answer to the next command
            log.warning("smtp %s: no reply after the body of %s; outcome unknown", self.name, envelope.message_id)
            return SendResult(envelope.message_id, error=ChannelError(ErrorKind.UNKNOWN, "outcome_unknown"))
        if reply.code == 250:
            return SendResult(envelope.message_id, carrier_id=envelope.carrier_id)
        if reply.code == 421:
            client.close()
        return SendResult(envelope.message_id, error=_reply_error("message", reply.code, reply.message))

    async def _reset(self, client: aiosmtplib.SMTP) -> None:
        """End a refused transaction so the connection can carry the next message."""
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
