"""Accepting messages to send: validate, de-duplicate, attach the contact, queue durably.

`write` is the one way a message enters the outbox: through `Acceptance.submit` (a
trigger, a keyword reply, a flow, a fallback email, a person in the inbox) or `Outbox.submit`
(the API, whose callers share group commits). Everything is validated before anything is
written, so a bad item in a batch stores nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from prometheus_client import Histogram
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core import sms
from empathic.core.clock import Clock
from empathic.core.emails import InvalidEmail, is_email, normalize_email
from empathic.core.errors import InputError
from empathic.core.routing import Destination, NoRoute
from empathic.core.phones import InvalidPhoneNumber, normalize
from empathic.core.topics import TopicKind, Topics, UnknownTopic
from empathic.engine import lifecycle
from empathic.store import contacts as contact_store
from empathic.store import messages as store
from empathic.store.db import Database
from empathic.store.records import NewMessage


OTP_VALIDITY = timedelta(minutes=10)  # unless the request gives its own valid_until
WRITTEN = Histogram("empathic_outbox_commit_messages", "Messages written by one outbox transaction",
                    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000))


@dataclass(frozen=True, slots=True)
class MessageRequest:
    to: str
    body: str
    topic: str = "transactional"
    idempotency_key: str | None = None
    region: str | None = None
    template: str | None = None
    event_id: str | None = None
    valid_until: datetime | None = None  # worthless after this instant: expired, never sent late
    in_reply_to: str | None = None  # the inbound message id this answers
    subject: str | None = None  # email only (`to` is an address)
    html: str | None = None  # email only: the HTML alternative of `body`
    contact_id: str | None = None  # the contact it is for, when the caller knows (else found by `to`)
    flow: str | None = None  # the flow whose run sends it
    trigger: str | None = None  # what set it off: a trigger's name, or a run's trigger


class SubmitError(InputError):
    """A message that cannot be accepted: which item, which field, and why."""

    def __init__(self, field: str, detail: str, index: int | None = None) -> None:
        super().__init__(field if index is None else f"messages[{index}].{field}", detail)


class Router(Protocol):
    """Which channel carries an accepted message, and from which address (engine.channels)."""

    def destination(self, to: str, topic: str) -> Destination:
        """What routing needs to know of a recipient (its country, number type …)."""
        ...

    def route(self, dest: Destination, sticky: str | None, down: Collection[str] | None = None) -> tuple[str, str]:
        """(channel, the address it sends from); raises core.routing.NoRoute. `down`: the
        channels down, from `down()` (asked if None)."""
        ...

    def down(self) -> Collection[str]:
        """The channels down now."""
        ...

    async def stick(self, conn: AsyncConnection, workspace_id: str, contact_id: str, channel: str) -> None:
        """The contact texted us on `channel`: keep their conversation there."""
        ...


@dataclass(frozen=True)
class Acceptance:
    """How a message is accepted: the rules it must meet and the one way it is queued (`submit`)."""

    topics: Topics
    sender: str
    default_region: str | None = "US"
    max_segments: int = 10
    router: Router | None = None  # None: no channel is chosen at accept (tests of the outbox alone)

    def validate(self, requests: list[MessageRequest], *, numbered: bool = False) -> list[Checked]:
        """Check every request (pure); the first bad one raises SubmitError naming it."""
        return [_validate(r, self, i if numbered else None) for i, r in enumerate(requests)]

    async def submit(
        self, conn: AsyncConnection, workspace_id: str, requests: list[MessageRequest], now: datetime,
        *, numbered: bool = False,
    ) -> list[NewMessage]:
        """Queue the requests in the caller's transaction; returns one message per request, in
        order (a MessageRow where it was stored before).

        A request whose idempotency key was seen before returns the first message, unchanged.
        """
        return await write(conn, workspace_id, self.validate(requests, numbered=numbered), self, now)


@dataclass(frozen=True, slots=True)
class Checked:
    """A request that passed validation: its number in E.164, its size and its priority."""

    request: MessageRequest
    to: str
    count: sms.SegmentCount | None  # None for email
    priority: int
    destination: Destination | None = None  # when the rules route (read once, used at write)


def _validate(req: MessageRequest, acceptance: Acceptance, index: int | None) -> Checked:
    email = is_email(req.to)
    try:
        to = normalize_email(req.to) if email else normalize(req.to, req.region or acceptance.default_region)
    except (InvalidPhoneNumber, InvalidEmail) as exc:
        raise SubmitError("to", str(exc), index) from None
    try:
        kind = acceptance.topics.kind(req.topic)
    except UnknownTopic as exc:
        raise SubmitError("topic", str(exc), index) from None
    if kind is TopicKind.OTP and index is not None:
        raise SubmitError("topic", "a one-time code goes only to the person who just asked for it: send it alone, not in a batch", index)
    if not req.body.strip():
        raise SubmitError("body", "must not be empty", index)
    if email:
        _check_email(req, index)
        count = None
    elif req.subject is not None or req.html is not None:
        raise SubmitError("subject" if req.subject is not None else "html", "is for email only: `to` is a phone number", index)
    else:
        count = sms.count(req.body)
    if count is not None and count.segments > acceptance.max_segments:
        raise SubmitError(
            "body",
            f"is {count.segments} segments ({count.encoding.value}, {count.units} units); "
            f"the limit is {acceptance.max_segments}",
            index,
        )
    if req.valid_until is not None and req.valid_until.utcoffset() is None:
        raise SubmitError("valid_until", "must carry a time zone offset, such as 2026-11-23T18:00:00Z", index)
    if req.idempotency_key is not None and not 0 < len(req.idempotency_key) <= 200:
        raise SubmitError("idempotency_key", "must be 1 to 200 characters", index)
    destination = None
    if acceptance.router is not None:
        destination = acceptance.router.destination(to, req.topic)
        try:
            acceptance.router.route(destination, None, ())  # some channel serves it (up or not)
        except NoRoute as exc:
            raise SubmitError("to", str(exc), index) from None
    return Checked(req, to, count, kind.priority, destination)


def _check_email(req: MessageRequest, index: int | None) -> None:
    subject = req.subject or ""
    if not subject.strip():
        raise SubmitError("subject", "an email needs a subject", index)
    if len(subject) > 998 or any(ch in subject for ch in "\r\n") or not subject.isprintable():
        raise SubmitError("subject", "must be one line of at most 998 printable characters", index)


def _default_validity(kind: TopicKind, now: datetime) -> datetime | None:
    """A code is worthless minutes later: one that could not go at once expires, never arrives late."""
    return now + OTP_VALIDITY if kind is TopicKind.OTP else None


async def write(
    conn: AsyncConnection, workspace_id: str, checked: list[Checked], acceptance: Acceptance, now: datetime
) -> list[NewMessage]:
    """Queue validated requests in the caller's transaction; one message per request, in order."""
    keys = [c.request.idempotency_key for c in checked if c.request.idempotency_key]
    existing: dict[str, NewMessage] = {}  # key -> its message: stored before, or earlier in this batch
    if keys:
        existing.update(await store.by_idempotency_keys(conn, workspace_id, keys))
    named = {c.request.contact_id for c in checked if c.request.contact_id and c.request.idempotency_key not in existing}
    known = await contact_store.by_ids(conn, workspace_id, named) if named else {}
    fresh = [c.to for c in checked if c.request.idempotency_key not in existing and not c.request.contact_id]
    fresh_phones = [to for to in fresh if not is_email(to)]
    fresh_emails = [to for to in fresh if is_email(to)]
    people: dict[str, contact_store.Contact | contact_store.Addressee] = {}  # who each fresh `to` is
    if fresh_phones:
        people.update(await contact_store.ensure_addressees_by_phone(conn, workspace_id, fresh_phones, now))
    if fresh_emails:
        people.update(await contact_store.ensure_by_email(conn, workspace_id, fresh_emails, now))

    down = acceptance.router.down() if acceptance.router is not None else ()  # one look at health per batch
    results: list[NewMessage] = []
    new_rows: list[NewMessage] = []
    stuck: dict[str, list[str]] = {}  # channel -> contacts who get their sticky channel now
    sticky: dict[str, str] = {}  # contact id -> the channel this batch gave them (they had none)
    for c in checked:
        req, to, count, priority = c.request, c.to, c.count, c.priority
        if req.idempotency_key and req.idempotency_key in existing:
            results.append(existing[req.idempotency_key])
            continue
        person: contact_store.Contact | contact_store.Addressee
        if req.contact_id:
            if req.contact_id not in known:
                raise SubmitError("contact_id", f"no contact {req.contact_id!r} in this workspace")
            person = known[req.contact_id]
        else:
            person = people[to]
        channel, sender = None, acceptance.sender
        if acceptance.router is not None:
            assert c.destination is not None
            current = person.channel or sticky.get(person.id)
            channel, sender = acceptance.router.route(c.destination, current, down)
            if current is None and count is not None:  # SMS conversations stick
                sticky[person.id] = channel
                stuck.setdefault(channel, []).append(person.id)
        row = NewMessage.outbound(
            workspace_id=workspace_id, contact_id=person.id, to_addr=to, from_addr=sender, body=req.body,
            subject=req.subject, html=req.html, topic=req.topic, priority=priority,
            encoding=count.encoding.value if count else "email", segments=count.segments if count else None,
            idempotency_key=req.idempotency_key, channel=channel, template=req.template, event_id=req.event_id,
            flow=req.flow, trigger=req.trigger, valid_until=req.valid_until or _default_validity(acceptance.topics.kind(req.topic), now),
            in_reply_to=req.in_reply_to, now=now,
        )
        if req.idempotency_key:
            existing[req.idempotency_key] = row  # a repeat inside the same batch too
        new_rows.append(row)
        results.append(row)
    await lifecycle.record_new(conn, new_rows, "accepted", now)
    for channel, ids in stuck.items():
        await contact_store.set_channel(conn, workspace_id, ids, channel)
    return results


class Outbox:
    """Accepts messages from many concurrent callers, writing them in shared transactions.

    Group commit: while one transaction is being written, new submissions wait, and the
    next transaction carries all of them. Under load this turns many small transactions
    (each holding SQLite's one writer for several round trips) into a few large ones.
    Each caller still gets its own rows back, and only after they are durable.
    """

    def __init__(self, db: Database, clock: Clock, acceptance: Acceptance, on_commit: Callable[[], None]) -> None:
        self.db = db
        self.clock = clock
        self.acceptance = acceptance
        self.on_commit = on_commit
        self._pending: list[_Submission] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, workspace_id: str, requests: list[MessageRequest], *, numbered: bool = False) -> list[NewMessage]:
        checked = self.acceptance.validate(requests, numbered=numbered)  # bad input fails alone, at once
        done: asyncio.Future[list[NewMessage]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Submission(workspace_id, checked, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending(), name="outbox-writer")
        return await asyncio.shield(done)

    async def drain(self) -> None:
        """Wait until every submission so far is written (or has failed): for shutdown."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def _write_pending(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            WRITTEN.observe(sum(len(one.checked) for one in group))
            try:
                await self._write_group(group)
            except IntegrityError:
                # Two callers raced on one idempotency key across processes: write one by
                # one, so the loser finds the winner's message instead of failing.
                for one in group:
                    try:
                        await self._write_group([one])
                    except Exception as exc:  # noqa: BLE001 - handed to that caller
                        _fail(one, exc)
            except Exception as exc:  # noqa: BLE001 - handed to every caller
                for one in group:
                    _fail(one, exc)
            self.on_commit()

    async def _write_group(self, group: list[_Submission]) -> None:
        by_workspace: dict[str, list[_Submission]] = {}
        for one in group:
            by_workspace.setdefault(one.workspace_id, []).append(one)
        written: list[tuple[_Submission, list[NewMessage]]] = []
        async with self.db.transaction() as conn:
            now = self.clock.now()
            for workspace_id, subs in by_workspace.items():
                rows = await write(conn, workspace_id, [c for s in subs for c in s.checked], self.acceptance, now)
                start = 0
                for one in subs:
                    written.append((one, rows[start : start + len(one.checked)]))
                    start += len(one.checked)
        for one, rows in written:  # only now, after the commit
            if not one.done.done():
                one.done.set_result(rows)


@dataclass(slots=True)
class _Submission:
    workspace_id: str
    checked: list[Checked]
    done: asyncio.Future[list[NewMessage]]


def _fail(submission: _Submission, exc: BaseException) -> None:
    if not submission.done.done():
        submission.done.set_exception(exc)
