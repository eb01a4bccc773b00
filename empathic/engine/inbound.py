"""The inbound router: what a person texted us, stored, understood, acted on.

STOP-like keywords, and an understood opt-out in any supported language ("stop texting me",
"no me escribas más"), revoke consent for every non-essential topic before anything else
can be sent; START-like ones restore it; HELP answers with the sender's help text; "STOP
DEALS" / "START DEALS" leave or join one topic (joining a marketing topic asks for a yes
first: double opt-in). A yes (in the person's own words) to our subscription request grants
that topic. Each change is confirmed with exactly one text, and only when consent really
changed. Anything else opens the contact's inbox thread for a person. A carrier that
delivers the same message twice gets the first message's id back and nothing happens twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.channels.base import Inbound
from empathic.core.consent import ALL_TOPICS, ConsentAction, ConsentState
from empathic.core.phones import InvalidPhoneNumber, normalize
from empathic.core.topics import COMPLIANCE_TOPIC, TopicKind, Topics
from empathic.engine import consents, lifecycle, outbox, webhooks
from empathic.engine.project import SenderSettings
from empathic.engine.runs import Flows
from empathic.store import consent as consent_store
from empathic.store import contacts as contact_store
from empathic.store import messages as store
from empathic.store.contacts import Contact
from empathic.store import readings, threads
from empathic.store.records import NewMessage
from empathic.understand import Intent, Understanding, understand
from empathic.understand.keywords import Keyword, match_keyword, match_topic_opt_in, match_topic_opt_out


@dataclass(frozen=True)
class Routed:
    message_id: str
    keyword: Keyword | None
    duplicate: bool = False
    reply_id: str | None = None
    thread_id: str | None = None
    run_id: str | None = None  # the flow run that took the reply


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


async def route(
    conn: AsyncConnection,
    workspace_id: str,
    inbound: Inbound,
    sender: SenderSettings,
    acceptance: outbox.Acceptance,
    flows: Flows | None = None,
) -> Routed:
    """Store the text, say so (`message.received`), act on it (`_act`), confirm a change."""
    seen = await store.by_carrier_ids(conn, inbound.channel, [inbound.carrier_id])
    if inbound.carrier_id in seen:
        return Routed(seen[inbound.carrier_id].id, None, duplicate=True)
    now = inbound.at
    phone, reachable = _number_of(inbound.sender)
    contact = (await contact_store.ensure_by_phone(conn, workspace_id, [phone], now))[phone]
    if acceptance.router is not None:  # our answers go back on the number they texted
        await acceptance.router.stick(conn, workspace_id, contact.id, inbound.channel)
    message = NewMessage.inbound(
        workspace_id=workspace_id, contact_id=contact.id, to_addr=inbound.to, from_addr=phone,
        body=storable_text(inbound.body), channel=inbound.channel, carrier_id=inbound.carrier_id, now=now,
    )
    await lifecycle.record_new(conn, [message], "received", now)
    heard = Heard.of(inbound.body, _leavable(acceptance.topics), now, contact.timezone or "UTC")
    await readings.record(conn, heard.reading(message.id, workspace_id, now, contact.timezone or "UTC"))
    await _announce(conn, message, inbound.body, heard)
    state = (await consent_store.states(conn, workspace_id, [contact.id]))[contact.id]
    texted = _Texted(conn, workspace_id, contact, message.id, inbound.body, reachable, now, state, sender, acceptance, flows)
    acted = await _act(texted, heard)
    reply_id = acted.reply_id
    if acted.reply_text and reachable:  # the one text that confirms a change
        request = outbox.MessageRequest(
            to=phone, body=acted.reply_text, topic=COMPLIANCE_TOPIC, idempotency_key=f"reply:{message.id}"
        )
        reply_id = (await acceptance.submit(conn, workspace_id, [request], now))[0].id
    return Routed(message.id, acted.keyword, reply_id=reply_id, thread_id=acted.thread_id, run_id=acted.run_id)


def _number_of(sender: str) -> tuple[str, bool]:
    """The sender's number in E.164, and whether we can text it back: a short code or an
    alphanumeric still gets a record and consent, but no text (the outbox sends to E.164 only)."""
    try:
        return normalize(sender), True
    except InvalidPhoneNumber:
        return sender, False


@dataclass(frozen=True, slots=True)
class Heard:
    """What a text says, read once: a compliance keyword ("STOP"), else a topic keyword
    ("STOP DEALS", "START DEALS"), else (only then) what it means in the person's words."""

    keyword: Keyword | None
    topic_out: str | None = None
    topic_in: str | None = None
    understood: Understanding | None = None

    @classmethod
    def of(cls, text: str, leavable: list[str], now: datetime, timezone: str) -> Heard:
        if (keyword := match_keyword(text)) is not None:
            return cls(keyword)
        if (topic := match_topic_opt_out(text, leavable)) is not None:
            return cls(None, topic_out=topic)
        if (topic := match_topic_opt_in(text, leavable)) is not None:
            return cls(None, topic_in=topic)
        return cls(None, understood=understand(text, now=now, timezone=timezone))

    @property
    def intent(self) -> Intent | None:
        return self.understood.intent if self.understood else None

    def reading(self, message_id: str, workspace_id: str, now: datetime, timezone: str) -> readings.Reading:
        """As stored for the inbox: the keyword (`stop`, `start`, `help`, `stop:<topic>`,
        `start:<topic>`), else the meaning; a day named without an hour is that whole day in
        the person's zone."""
        keyword = _KEYWORD_NAMES[self.keyword] if self.keyword is not None else (
            f"stop:{self.topic_out}" if self.topic_out else f"start:{self.topic_in}" if self.topic_in else None
        )
        u = self.understood
        start = end = None
        if u is not None and isinstance(u.when, datetime):
            start = u.when
        elif u is not None and isinstance(u.when, date):
            start = datetime.combine(u.when, time(), ZoneInfo(timezone))
            end = datetime.combine(u.when + timedelta(days=1), time(), ZoneInfo(timezone))
        return readings.Reading(
            message_id=message_id, workspace_id=workspace_id, keyword=keyword,
            intent=u.intent.value if u else None, language=u.language if u else None,
            confidence=round(u.confidence, 3) if u else None, proposed_start=start, proposed_end=end,
            option=u.option[:200] if u and u.option else None, created_at=now,
        )


_KEYWORD_NAMES = {Keyword.OPT_OUT: "stop", Keyword.OPT_IN: "start", Keyword.HELP: "help"}


async def _announce(conn: AsyncConnection, message: NewMessage, text: str, heard: Heard) -> None:
    """The `message.received` webhook: the text as the carrier gave it, and what was heard."""
    keyword = Keyword.OPT_OUT if heard.topic_out else heard.keyword
    await webhooks.enqueue(
        conn,
        message.workspace_id,
        "message.received",
        [{"message_id": message.id, "contact_id": message.contact_id, "from": message.from_addr,
          "to": message.to_addr, "body": text, "keyword": keyword.value if keyword else None,
          "intent": heard.intent.value if heard.intent else None,
          "language": heard.understood.language if heard.understood else None, "at": message.created_at.isoformat()}],
        message.created_at,
    )


@dataclass(frozen=True, slots=True)
class _Texted:
    """A stored inbound text being acted on: who sent it, and what is known of them."""

    conn: AsyncConnection
    workspace_id: str
    contact: Contact
    message_id: str
    text: str  # as the carrier gave it
    reachable: bool  # a number we can text back
    now: datetime
    state: ConsentState
    sender: SenderSettings
    acceptance: outbox.Acceptance
    flows: Flows | None

    @property
    def actor(self) -> str:
        return f"contact:{self.contact.id}"

    async def record_consent(self, topic: str, action: ConsentAction, source: str = "keyword") -> None:
        """The person changed their consent by this text (its evidence)."""
        await consents.record(
            self.conn, self.workspace_id, self.contact, topic=topic, action=action, source=source, actor=self.actor,
            evidence=self.message_id, now=self.now, message_id=self.message_id,
        )


@dataclass(frozen=True, slots=True)
class _Acted:
    """What a text led to: the keyword it counted as, and what answers it."""

    keyword: Keyword | None = None
    reply_text: str | None = None  # confirmed with this text, if the person can be texted
    reply_id: str | None = None  # a text queued already (a subscription request)
    thread_id: str | None = None
    run_id: str | None = None


async def _act(t: _Texted, heard: Heard) -> _Acted:
    """The first step that takes the text, in order of precedence."""
    if heard.keyword in (Keyword.OPT_OUT, Keyword.OPT_IN):
        return await _all_topics(t, opting_out=heard.keyword is Keyword.OPT_OUT, source="keyword")
    if heard.intent is Intent.OPT_OUT:  # "stop texting me", "no me escribas más": the same as STOP
        return await _all_topics(t, opting_out=True, source="reply")
    if heard.keyword is Keyword.HELP:
        return _Acted(Keyword.HELP, reply_text=t.sender.help_text)
    if heard.topic_out is not None:
        return await _leave_topic(t, heard.topic_out)
    if heard.topic_in is not None:
        return await _join_topic(t, heard.topic_in)
    if heard.intent in (Intent.CONFIRM, Intent.DECLINE):
        if (topic := await _awaited_yes(t)) is not None:
            return await _answer_request(t, topic, yes=heard.intent is Intent.CONFIRM)
    run_id = await _flow_run(t)
    if run_id is not None:
        return _Acted(run_id=run_id)
    return _Acted(thread_id=await threads.open_for(t.conn, t.workspace_id, t.contact.id, t.message_id, t.now))


async def _all_topics(t: _Texted, *, opting_out: bool, source: str) -> _Acted:
    """STOP or START: every non-essential topic at once; a STOP also ends the person's runs."""
    reply_text = None
    if t.state.opted_out_of_all("sms") != opting_out:
        await t.record_consent(ALL_TOPICS, ConsentAction.REVOKED if opting_out else ConsentAction.GRANTED, source)
        reply_text = t.sender.opt_out_text if opting_out else t.sender.opt_in_text
    if opting_out and t.flows is not None:
        await t.flows.stop_contact(t.conn, t.workspace_id, t.contact.id, t.now)
    return _Acted(Keyword.OPT_OUT if opting_out else Keyword.OPT_IN, reply_text=reply_text)


async def _leave_topic(t: _Texted, topic: str) -> _Acted:
    """A topic's opt-out ("STOP DEALS")."""
    if t.state.opted_out(topic, "sms"):
        return _Acted(Keyword.OPT_OUT)
    await t.record_consent(topic, ConsentAction.REVOKED)
    return _Acted(Keyword.OPT_OUT, reply_text=t.sender.topic_opt_out_text.format(topic=topic))


async def _join_topic(t: _Texted, topic: str) -> _Acted:
    """A topic's opt-in ("START DEALS"); a marketing topic asks for a yes first (double opt-in)."""
    if t.state.granted(topic, "sms"):
        return _Acted(Keyword.OPT_IN)  # already subscribed: nothing changes, nothing to confirm
    if t.acceptance.topics.kind(topic) is TopicKind.MARKETING and t.sender.double_opt_in:
        if not t.reachable:
            return _Acted(Keyword.OPT_IN)
        reply_id = await consents.request_subscription(
            t.conn, t.workspace_id, t.contact, topic, source="keyword", actor=t.actor, evidence=t.message_id,
            now=t.now, sender=t.sender, acceptance=t.acceptance,
        )
        return _Acted(Keyword.OPT_IN, reply_id=reply_id)
    await t.record_consent(topic, ConsentAction.GRANTED)
    return _Acted(Keyword.OPT_IN, reply_text=t.sender.subscribed_text.format(sender=t.sender.name, topic=topic))


async def _answer_request(t: _Texted, topic: str, *, yes: bool) -> _Acted:
    """Double opt-in, step two: the yes, in the person's own words, grants the topic; a no
    lets the request lapse (nothing recorded, nothing sent, nobody to hand it to)."""
    if not yes:
        return _Acted()
    await t.record_consent(topic, ConsentAction.GRANTED, "reply")
    return _Acted(reply_text=t.sender.subscribed_text.format(sender=t.sender.name, topic=topic))


async def _flow_run(t: _Texted) -> str | None:
    """The flow run that takes the text, if any: a flow's keyword ("MENU"), else the run
    waiting for this answer."""
    if t.flows is None or not t.reachable:
        return None
    run = await t.flows.keyword(t.conn, t.workspace_id, t.contact, t.text, t.message_id, t.now)
    if run is None:
        run = await t.flows.reply(t.conn, t.workspace_id, t.contact, t.text, t.message_id, t.now)
    return run.id if run is not None else None


async def _awaited_yes(t: _Texted) -> str | None:
    """The topic whose subscription request this reply answers: one is pending and the last
    text that reached the person was that request (a yes to anything else is never consent)."""
    pending = t.state.pending("sms", t.now, consents.REQUEST_VALID)
    if not pending:
        return None
    last = await store.last_handed_off(t.conn, t.workspace_id, t.contact.id)
    return pending[0] if last is not None and last.template == consents.REQUEST_TEMPLATE else None


def storable_text(text: str) -> str:
    """A carrier's text as a database holds it: no NUL (SMSCs pad UCS-2 with it), and a lone
    UTF-16 surrogate (no UTF-8 text holds one) as U+FFFD, so the customer's words are kept."""
    return _LONE_SURROGATE.sub("\ufffd", text.replace("\x00", ""))


def _leavable(topics: Topics) -> list[str]:
    return [name for name, kind in topics.kinds.items() if not kind.essential]
