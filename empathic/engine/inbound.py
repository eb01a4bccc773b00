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
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.channels.base import Inbound
from empathic.core.consent import ALL_TOPICS, ConsentAction, ConsentState
from empathic.core.ids import new_id
from empathic.core.messages import Direction, Status
from empathic.core.phones import InvalidPhoneNumber, normalize
from empathic.core.topics import COMPLIANCE_TOPIC, TopicKind
from empathic.engine import consents, lifecycle, outbox, webhooks
from empathic.engine.project import SenderSettings
from empathic.engine.runs import Flows
from empathic.store import consent as consent_store
from empathic.store import contacts as contact_store
from empathic.store import messages as store
from empathic.store import threads
from empathic.understand import Intent, understand
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
    rules: outbox.OutboxRules,
    flows: Flows | None = None,
) -> Routed:
    seen = await store.by_carrier_ids(conn, inbound.channel, [inbound.carrier_id])
    if inbound.carrier_id in seen:
        return Routed(seen[inbound.carrier_id]["id"], None, duplicate=True)
    now = inbound.at
    try:
        phone = normalize(inbound.sender)
        reachable = True
    except InvalidPhoneNumber:
        phone = inbound.sender  # short codes and alphanumerics still get a record and consent
        reachable = False  # but no text back: the outbox sends to E.164 numbers only
    contact = (await contact_store.ensure_by_phone(conn, workspace_id, [phone], now))[phone]
    if rules.router is not None:  # our answers go back on the number they texted
        await rules.router.stick(conn, workspace_id, contact["id"], inbound.channel)
    message = {
        "id": new_id("msg"),
        "workspace_id": workspace_id,
        "direction": Direction.INBOUND.value,
        "contact_id": contact["id"],
        "to_addr": inbound.to,
        "from_addr": phone,
        "body": storable_text(inbound.body),
        "topic": None,
        "priority": 0,
        "status": Status.RECEIVED.value,
        "reason": "received",
        "encoding": None,
        "segments": None,
        "idempotency_key": None,
        "channel": inbound.channel,
        "carrier_id": inbound.carrier_id,
        "attempts": 0,
        "next_attempt_at": None,
        "template": None,
        "event_id": None,
        "created_at": now,
        "updated_at": now,
    }
    await lifecycle.record_new(conn, [message], "received", now)
    keyword = match_keyword(inbound.body)
    leavable = _leavable(rules)
    topic_out = match_topic_opt_out(inbound.body, leavable) if keyword is None else None  # "STOP DEALS"
    topic_in = match_topic_opt_in(inbound.body, leavable) if keyword is None and topic_out is None else None
    understood = None
    if keyword is None and topic_out is None and topic_in is None:
        understood = understand(inbound.body, now=now, timezone=contact.get("timezone") or "UTC")
    intent = understood.intent if understood else None
    await webhooks.enqueue(
        conn,
        workspace_id,
        "message.received",
        [{"message_id": message["id"], "contact_id": contact["id"], "from": phone, "to": inbound.to,
          "body": inbound.body, "keyword": Keyword.OPT_OUT.value if topic_out else keyword.value if keyword else None,
          "intent": intent.value if intent else None, "language": understood.language if understood else None,
          "at": now.isoformat()}],
        now,
    )

    reply_text: str | None = None
    reply_id: str | None = None
    thread_id: str | None = None
    run_id: str | None = None
    state = (await consent_store.states(conn, workspace_id, [contact["id"]]))[contact["id"]]
    by_contact = {"source": "keyword", "actor": f"contact:{contact['id']}", "evidence": message["id"],
                  "now": now, "message_id": message["id"]}
    if intent is Intent.OPT_OUT:  # "stop texting me", "no me escribas más": the same as STOP
        keyword = Keyword.OPT_OUT
        by_contact["source"] = "reply"
    if keyword in (Keyword.OPT_OUT, Keyword.OPT_IN):
        opting_out = keyword is Keyword.OPT_OUT
        if state.opted_out_of_all("sms") != opting_out:
            await consents.record(
                conn, workspace_id, contact, topic=ALL_TOPICS,
                action=ConsentAction.REVOKED if opting_out else ConsentAction.GRANTED, **by_contact,
            )
            reply_text = sender.opt_out_text if opting_out else sender.opt_in_text
        if opting_out and flows is not None:
            await flows.stop_contact(conn, workspace_id, contact["id"], now)
    elif keyword is Keyword.HELP:
        reply_text = sender.help_text
    elif (topic := topic_out) is not None:
        if not state.opted_out(topic, "sms"):
            await consents.record(conn, workspace_id, contact, topic=topic, action=ConsentAction.REVOKED, **by_contact)
            reply_text = sender.topic_opt_out_text.format(topic=topic)
        keyword = Keyword.OPT_OUT
    elif (topic := topic_in) is not None:  # "START DEALS"
        keyword = Keyword.OPT_IN
        if state.granted(topic, "sms"):
            pass  # already subscribed: nothing changes, nothing to confirm
        elif rules.topics.kind(topic) is TopicKind.MARKETING and sender.double_opt_in:
            if reachable:
                reply_id = await consents.request_subscription(
                    conn, workspace_id, contact, topic, source="keyword", actor=by_contact["actor"],
                    evidence=message["id"], now=now, sender=sender, rules=rules,
                )
        else:
            await consents.record(conn, workspace_id, contact, topic=topic, action=ConsentAction.GRANTED, **by_contact)
            reply_text = sender.subscribed_text.format(sender=sender.name, topic=topic)
    elif intent in (Intent.CONFIRM, Intent.DECLINE) and (topic := await _awaited_yes(conn, workspace_id, contact, state, now)):
        if intent is Intent.CONFIRM:  # double opt-in, step two: the yes, in the person's own words
            by_contact["source"] = "reply"
            await consents.record(conn, workspace_id, contact, topic=topic, action=ConsentAction.GRANTED, **by_contact)
            reply_text = sender.subscribed_text.format(sender=sender.name, topic=topic)
        # a no lets the request lapse: nothing recorded, nothing sent, nobody to hand it to
    else:
        run = None
        if flows is not None and reachable:  # a flow's keyword ("MENU"), else the flow waiting for this answer
            run = await flows.keyword(conn, workspace_id, contact, inbound.body, message["id"], now)
            if run is None:
                run = await flows.reply(conn, workspace_id, contact, inbound.body, message["id"], now)
        if run is None:
            thread_id = await threads.open_for(conn, workspace_id, contact["id"], message["id"], now)
        else:
            run_id = run["id"]

    if reply_text and reachable:
        request = outbox.MessageRequest(
            to=phone, body=reply_text, topic=COMPLIANCE_TOPIC, idempotency_key=f"reply:{message['id']}"
        )
        reply_id = (await outbox.submit(conn, workspace_id, [request], rules, now))[0]["id"]
    return Routed(message["id"], keyword, reply_id=reply_id, thread_id=thread_id, run_id=run_id)


async def _awaited_yes(
    conn: AsyncConnection, workspace_id: str, contact: dict[str, Any], state: ConsentState, now: datetime
) -> str | None:
    """The topic whose subscription request this reply answers: one is pending and the last
    text that reached the person was that request (a yes to anything else is never consent)."""
    pending = state.pending("sms", now, consents.REQUEST_VALID)
    if not pending:
        return None
    last = await store.last_handed_off(conn, workspace_id, contact["id"])
    return pending[0] if last is not None and last["template"] == consents.REQUEST_TEMPLATE else None


def storable_text(text: str) -> str:
    """A carrier's text as a database holds it: no NUL (SMSCs pad UCS-2 with it), and a lone
    UTF-16 surrogate (no UTF-8 text holds one) as U+FFFD, so the customer's words are kept."""
    return _LONE_SURROGATE.sub("\ufffd", text.replace("\x00", ""))


def _leavable(rules: outbox.OutboxRules) -> list[str]:
    return [name for name, kind in rules.topics.kinds.items() if not kind.essential]


def thread_view(thread: dict[str, Any], contact: dict[str, Any] | None, last: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": thread["id"],
        "status": thread["status"],
        "contact": contact_store.to_view(contact) if contact else None,
        "last_message": store.to_view(last) if last else None,
        "note": thread.get("note"),
        "run_id": thread.get("run_id"),
        "opened_at": thread["opened_at"].isoformat(),
        "updated_at": thread["updated_at"].isoformat(),
    }
