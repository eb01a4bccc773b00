"""Flow runs: start them, feed them what happens, and carry out what the interpreter decides.

Every change to a run happens in the caller's transaction together with its effects (texts
through the outbox, timers, HTTP-call requests, contact fields, consent, inbox threads), so a
crash leaves either the old state with nothing done or the new state with everything queued.

Conversations. A run *holds* the contact's conversation while it waits for their answer or a
person has the thread (waiting `reply` or `handoff`); replies go to it. At most one run holds
it: a run that reaches an `ask` while another holds the conversation parks (waiting `turn`;
its texts before the question went out, the question waits) and asks when the conversation
is free, parked runs by priority, then age; a run parked 24 h ends (`no_turn`). A flow with an
`ask` or `handoff` step (conversational) started while another run holds the conversation:
  queue (default)  starts, and parks at its first question;
  interrupt        ends the holder (`interrupted`) if its own priority is higher, else queue;
  skip             is recorded as `skipped` and never runs.
A flow started by the person's own keyword (MENU, WATCH …) takes over unless the holder has a
higher priority (a fraud alert is not ended by MENU): they changed the subject. Runs waiting on
the clock or a call hold nothing, so a reminder due in weeks blocks no one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.consent import ConsentAction
from empathic.core.errors import InputError
from empathic.core.ids import new_id
from empathic.core.json import Json
from empathic.core.phones import timezone_for
from empathic.core.templates import Email, TemplateError
from empathic.core.topics import TopicKind
from empathic.engine import consents, fallback, outbox, webhooks
from empathic.engine.catalog import Catalog
from empathic.engine.project import Project
from empathic.flows import graph
from empathic.flows import interpreter as fi
from empathic.flows import loader, model
from empathic.flows.state import Heard, RunState
from empathic.flows.steps.ask import Ask
from empathic.flows.steps.flow import Subflow
from empathic.flows.steps.handoff import Handoff
from empathic.flows.steps.send import Send
from empathic.flows.steps.subscribe import Subscription
from empathic.store import consent as consent_store
from empathic.store import contacts as contact_store
from empathic.store import flow_steps
from empathic.store import flows as store
from empathic.store import messages as message_store
from empathic.store import threads, timers
from empathic.store.contacts import Contact

log = logging.getLogger(__name__)
UNREADABLE_RETRY = timedelta(hours=1)  # a timer of a run a newer release stored waits this long, again and again

TIMER = "flow.timer"
CALL = "flow.call"
HOLDING = frozenset({"reply", "handoff"})  # waits that hold the contact's conversation
REPLY_WINDOW = timedelta(minutes=15)  # texts this soon after the person's reply answer it
UNREACHED = frozenset({"blocked", "failed", "expired", "undelivered"})


class RunError(InputError):
    """A run that cannot start: no such flow (`flow`), or its data does not fit it."""


@lru_cache(maxsize=512)
def _parsed(version_id: str, source: str) -> model.Flow:
    return loader.parse(source)  # stored versions were checked when stored


@dataclass(frozen=True)
class Started:
    """A run as its latest steps left it (its first ones, when started)."""

    run: store.Run
    contact: Contact  # as those steps left it (they may update it)
    replayed: bool = False  # started before under the same idempotency key: nothing moved
    sent: list[str] = field(default_factory=list)  # the ids of the texts those steps queued


class Flows:
    """The flow engine of one project: which flows exist, and every run's next move."""

    def __init__(self, project: Project, catalog: Catalog, acceptance: outbox.Acceptance) -> None:
        self.project = project
        self.catalog = catalog
        self.acceptance = acceptance  # how a run's texts are queued

    # -- definitions ----------------------------------------------------------------------

    async def sync_project(self, conn: AsyncConnection, now: datetime) -> None:
        """Record the project's flow files as versions (a new version only when a file changed)."""
        for name, (source, flow) in self.project.flows.items():
            await store.save_version(conn, store.PROJECT, name, source, flow.events, flow.keywords, now)

    async def known(self, conn: AsyncConnection, workspace_id: str) -> loader.Known:
        templates = await self.catalog.templates(conn, workspace_id)
        return loader.Known(
            topics=frozenset(self.acceptance.topics.kinds), templates=frozenset(templates), emails=frozenset(self.project.emails)
        )

    async def store_flow(self, conn: AsyncConnection, workspace_id: str, name: str, source: str, now: datetime) -> tuple[dict[str, Any], bool]:
        """Check a flow sent over the API against the workspace and store it as a new version."""
        flow = loader.parse(source, file=f"{name}.yaml", known=await self.known(conn, workspace_id))
        if flow.name != name:
            raise loader.FlowError([loader.Problem(1, "flow", f"the file names flow {flow.name!r}, the address {name!r}")])
        current = await store.current(conn, workspace_id)
        together = loader.FlowSet({n: await self._flow(conn, h["version_id"]) for n, h in current.items() if n != name})
        together.flows[name] = flow
        together.files = {n: n for n in together.flows}
        mine = [p for p in together.check() if p.file == name]
        if mine:
            raise loader.FlowError(mine)
        return await store.save_version(conn, workspace_id, name, source, flow.events, flow.keywords, now)

    async def _flow(self, conn: AsyncConnection, version_id: str) -> model.Flow:
        row = (await store.versions(conn, [version_id]))[version_id]
        return _parsed(row["id"], row["source"])

    async def library(self, conn: AsyncConnection, workspace_id: str, keys: set[str]) -> fi.StaticLibrary:
        """The run's flow versions (by key), their subflows' current versions, and the templates."""
        lib = fi.StaticLibrary({}, emails=self.project.emails)  # email variants are the project's files
        rows = await store.versions(conn, keys)
        for key, row in rows.items():
            lib.flows[key] = _parsed(key, row["source"])
        wanted = {s for f in lib.flows.values() for s in f.subflows}
        if wanted:
            heads = await store.current(conn, workspace_id)
            while wanted:
                name = wanted.pop()
                if name in lib.heads or name not in heads:
                    continue
                key = heads[name]["version_id"]
                lib.heads[name] = key
                if key not in lib.flows:
                    lib.flows[key] = await self._flow(conn, key)
                wanted |= set(lib.flows[key].subflows)
        if any(f.templates for f in lib.flows.values()):  # most flows write their texts inline
            lib.templates = {n: t for n, (t, _) in (await self.catalog.templates(conn, workspace_id)).items()}
        return lib

    # -- starting -------------------------------------------------------------------------

    async def start(
        self,
        conn: AsyncConnection,
        workspace_id: str,
        name: str,
        contact: Contact,
        now: datetime,
        *,
        trigger: str,
        event: dict[str, Any] | None = None,
        variables: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        takes_over: bool = False,
        in_reply_to: str | None = None,
        head: dict[str, Any] | None = None,
    ) -> Started:
        """Start flow `name` for the contact (`head`: its current version, when the caller has
        looked it up already)."""
        if idempotency_key:
            seen = await store.by_key(conn, workspace_id, idempotency_key)
            if seen:
                return Started(seen, contact, replayed=True)
        head = head or (await store.current(conn, workspace_id)).get(name)
        if head is None:
            raise RunError("flow", f"no flow {name!r} in this workspace")
        key = head["version_id"]
        flow = await self._flow(conn, key)
        if flow.once_per is not None:  # one abandoned-cart nudge per cart, ever
            try:
                once = flow.once_per.render(contact=contact_store.to_view(contact), event=event or {}, vars=variables or {}, reply={})
            except TemplateError as exc:
                raise RunError("data", f"flow {name!r}: once_per: {exc.detail}") from None
            idempotency_key = f"once:{name}:{contact.id}:{once}"[:200]
            seen = await store.by_key(conn, workspace_id, idempotency_key)
            if seen:
                return Started(seen, contact, replayed=True)
        run = store.Run(
            id=new_id("run"), workspace_id=workspace_id, contact_id=contact.id, flow=name,
            version_id=key, status=store.ACTIVE,
            priority=flow.priority, waiting=None, state=RunState.start(key, event, variables),
            trigger=trigger, event_id=(event or {}).get("id"), idempotency_key=idempotency_key,
            outcome=None, error=None, created_at=now, updated_at=now, ended_at=None,
        )
        if not contact.phone and not (fallback.usable_email(contact) and self._by_email(flow)):
            run = replace(run, status="skipped", error="the contact has no phone number", ended_at=now)
            await store.add_run(conn, run)
            return Started(run, contact)
        if flow.conversational:
            await store.lock_contact(conn, workspace_id, contact.id)  # two starts at once: one waits
            talking = [r for r in await store.open_runs(conn, workspace_id, contact.id)
                       if r.status == store.ACTIVE and r.waiting in HOLDING]
            if talking:
                active = talking[0]
                if (takes_over and flow.priority >= active.priority) or (
                    flow.when_busy == "interrupt" and flow.priority > active.priority
                ):
                    await self._end(conn, active, "interrupted", now, outcome=f"interrupted_by:{name}", start_next=False)
                elif flow.when_busy == "skip" and not takes_over:
                    run = replace(run, status="skipped", error=f"the contact was talking with flow {active.flow!r}",
                                  ended_at=now)
                    await store.add_run(conn, run)
                    return Started(run, contact)
                # else queue: it starts and parks at its first question
        if in_reply_to is not None:  # started by the person's own text: it is the run's first reply
            heard = Heard((event or {}).get("data", {}).get("text"), in_reply_to, now)
            run = replace(run, state=replace(run.state, reply=heard))
        await store.add_run(conn, run)
        return await self._advance(conn, run, contact, fi.Start(), now, in_reply_to=in_reply_to)

    async def start_for_event(
        self, conn: AsyncConnection, workspace_id: str, contact: Contact, event: dict[str, Any], now: datetime
    ) -> list[Started]:
        started = []
        for name, head in sorted((await store.current(conn, workspace_id)).items()):
            if event["type"] in head["events"]:
                result = await self.start(
                    conn, workspace_id, name, contact, now, trigger=f"event:{event['type']}", event=event,
                    idempotency_key=f"{event['id']}:{name}", head=head,
                )
                started.append(result)
                contact = result.contact  # the next flow sees what this one changed
        return started

    async def keyword(
        self, conn: AsyncConnection, workspace_id: str, contact: Contact, text: str, message_id: str, now: datetime
    ) -> store.Run | None:
        """Start the flow whose keyword begins the person's text ("WATCH sku123"), if any."""
        words = text.strip().split(maxsplit=1)
        if not words:
            return None
        word = words[0].upper().strip(".!?,")
        for name, head in sorted((await store.current(conn, workspace_id)).items()):
            if word in head["keywords"]:
                event = {"id": message_id, "type": "keyword",
                         "data": {"keyword": word, "text": text, "args": words[1].strip() if len(words) > 1 else ""}}
                result = await self.start(
                    conn, workspace_id, name, contact, now, trigger=f"keyword:{word}", event=event,
                    idempotency_key=f"{message_id}:{name}", takes_over=True, in_reply_to=message_id, head=head,
                )
                return result.run
        return None

    def _by_email(self, flow: model.Flow) -> bool:
        """Whether a run reaches a contact who has only an email address: every text of it
        may go by email (`channel: email|both`, `fallback: email`, or a template with an
        email variant in a `[fallback]` topic) and nothing waits for their answer or
        subscribes them."""
        for step in flow.steps:
            action = step.action
            if isinstance(action, (Ask, Handoff, Subflow, Subscription)):
                return False  # they talk by text (a subscription may ask for a yes by text)
            if not isinstance(action, Send):
                continue
            message = action.message
            topic = message.topic or flow.topic
            by_topic = topic in self.project.fallback and message.template_name in self.project.emails
            if not (message.channel != "sms" or message.fallback == "email" or by_topic):
                return False
            if not fallback.can_email(self.acceptance.router, topic):
                return False
        return True

    # -- feeding --------------------------------------------------------------------------

    async def reply(
        self, conn: AsyncConnection, workspace_id: str, contact: Contact, text: str, message_id: str, now: datetime
    ) -> store.Run | None:
        """Give the person's reply to the run waiting for it; None if no run waits for one."""
        for run in await store.open_runs(conn, workspace_id, contact.id):
            if run.status == store.ACTIVE and run.waiting == "reply":
                unreached = await self._unreached(conn, run)
                if unreached is not None:  # they never got the question: this reply is not its answer
                    await self._end(conn, run, "failed", now, error=unreached)
                    return None
                moved = await self._advance(conn, run, contact, fi.Reply(text, message_id), now, in_reply_to=message_id)
                return moved.run
        return None

    async def _unreached(self, conn: AsyncConnection, run: store.Run) -> str | None:
        """Why the run's last text never reached the person (blocked by the gate …), if so."""
        key = f"{run.id}:{run.state.sent}"
        last = (await message_store.by_idempotency_keys(conn, run.workspace_id, [key])).get(key)
        if last is not None and last.status in UNREACHED:
            return f"its question never reached the person ({last.status}: {last.reason})"
        return None

    async def fire(self, conn: AsyncConnection, due: list[timers.Timer], now: datetime) -> int:
        """Scheduler hook: due flow timers, in order. Returns how many runs moved."""
        runs = await store.runs_by_ids(conn, [t.ref for t in due])
        if held := await store.unreadable(conn, [t.ref for t in due if t.ref not in runs]):
            # stored by a newer release: its timers wait for it rather than being lost
            waiting = [t for t in due if t.ref in held]
            first = min(t.due_at for t in waiting)  # they keep their order and spacing
            await timers.schedule(conn, [replace(t, due_at=now + UNREADABLE_RETRY + (t.due_at - first)) for t in waiting])
            log.warning("%d flow timers of runs this release cannot read wait %s", len(held), UNREADABLE_RETRY)
        moved = 0
        for timer in due:
            run = runs.get(timer.ref)
            if run is None or run.status != store.ACTIVE:
                continue
            contact = await contact_store.get(conn, run.workspace_id, run.contact_id)
            if contact is None:
                continue
            runs[run.id] = (await self._advance(
                conn, run, contact, fi.Timer(timer.payload["seq"], timer.payload["purpose"]), now
            )).run
            moved += 1
        return moved

    async def unreadable(self, conn: AsyncConnection, run_ids: list[str]) -> set[str]:
        """Active runs a newer release stored, which this one leaves alone."""
        return await store.unreadable(conn, run_ids)

    async def call_done(self, conn: AsyncConnection, run_id: str, result: fi.CallResult, now: datetime) -> None:
        runs = await store.runs_by_ids(conn, [run_id])
        run = runs.get(run_id)
        if run is None or run.status != store.ACTIVE:
            return
        contact = await contact_store.get(conn, run.workspace_id, run.contact_id)
        if contact is not None:
            await self._advance(conn, run, contact, result, now)

    async def close_thread(self, conn: AsyncConnection, workspace_id: str, thread: threads.Thread, now: datetime) -> None:
        """A person closes an inbox thread: a run that handed it over goes on (or ends)."""
        await threads.set_status(conn, thread.id, "closed", now)
        contact_id = thread.contact_id
        contact = await contact_store.get(conn, workspace_id, contact_id)
        if contact is None:
            return
        for run in await store.open_runs(conn, workspace_id, contact_id):
            if run.status == store.ACTIVE and run.waiting == "handoff":
                contact = (await self._advance(conn, run, contact, fi.HandoffClosed(), now)).contact

    async def stop_contact(self, conn: AsyncConnection, workspace_id: str, contact_id: str, now: datetime) -> int:
        """The person opted out: every run of theirs ends (`stopped`)."""
        stopped = 0
        for run in await store.open_runs(conn, workspace_id, contact_id):
            await self._end(conn, run, "stopped", now, outcome="opted_out", start_next=False)
            stopped += 1
        return stopped + await store.stop_unreadable(conn, workspace_id, contact_id, now)  # those it could not read

    async def cancel(self, conn: AsyncConnection, run: store.Run, now: datetime) -> store.Run:
        return await self._end(conn, run, "cancelled", now, outcome="cancelled")

    # -- the one place a run moves --------------------------------------------------------

    async def _advance(
        self, conn: AsyncConnection, run: store.Run, contact: Contact, given: fi.Input, now: datetime,
        *, in_reply_to: str | None = None,
    ) -> Started:
        """Move the run by `given`: the run as it now is, the contact as its steps left it, and
        the texts they queued."""
        ws = run.workspace_id
        frames = {f.flow for f in run.state.frames}
        lib = await self.library(conn, ws, frames)
        zone = contact.timezone or (timezone_for(contact.phone) if contact.phone else None) or "UTC"
        others = [r for r in await store.open_runs(conn, ws, contact.id) if r.id != run.id]
        free = not any(r.status == store.ACTIVE and r.waiting in HOLDING for r in others)
        ctx = fi.Context(now=now, contact=contact_store.to_view(contact), timezone=zone, conversation_free=free,
                         fallback_topics=self.project.fallback)
        result = fi.advance(lib, run.state, given, ctx)
        state = result.state
        sent: list[str] = []
        try:
            sent, contact = await self._apply(conn, run, contact, result.effects, now, in_reply_to or _recent_reply(state, now))
        except outbox.SubmitError as exc:
            state = replace(state, status="failed", error=f"a text cannot be sent: {exc.detail}", wait=None)
        marks = graph.marks(lib, run.state, given, state, result.ran)  # counted for the flows page, with the run
        await flow_steps.count(conn, ws, run.id, [(lib.flow(m.flow).name, m.step_id, m.outcome) for m in marks])
        if not state.active:  # _end sees what the run waited for before: was it holding?
            ended = await self._end(conn, replace(run, state=state), state.status, now,
                                    outcome=state.outcome, error=state.error)
            return Started(ended, contact, sent=sent)
        assert state.wait is not None  # an active run waits
        waiting = state.wait.kind
        await store.save_run(conn, run.id, now, state=state, waiting=waiting)
        if run.waiting in HOLDING and waiting not in HOLDING:
            await self._next_turn(conn, ws, contact.id, now)
        return Started(replace(run, state=state, waiting=waiting, updated_at=now), contact, sent=sent)

    async def _apply(
        self, conn: AsyncConnection, run: store.Run, contact: Contact, effects: list[fi.Effect],
        now: datetime, in_reply_to: str | None,
    ) -> tuple[list[str], Contact]:
        """Carry out the effects; the ids of the texts queued, and the contact as they left it."""
        ws = run.workspace_id
        event_id = run.event_id if run.trigger.startswith("event:") else None
        texts: list[outbox.MessageRequest] = []
        fallbacks: list[tuple[int, Email, str]] = []  # (index in texts, the email it becomes, why)
        for e in effects:
            if not isinstance(e, fi.SendText):
                continue
            for reach in _reaches(e, contact):
                email = reach == "email"
                address = _address(contact, reach)
                if not address:
                    raise outbox.SubmitError("to", f"the contact has no {'email address' if email else 'phone number'}")
                if not email and e.fallback and e.subject and fallback.usable_email(contact) and fallback.can_email(self.acceptance.router, e.topic):
                    fallbacks.append((len(texts), Email(e.subject, e.email_text or e.text, e.html), e.fallback))
                texts.append(outbox.MessageRequest(
                    to=address, body=(e.email_text or e.text) if email else e.text, topic=e.topic, event_id=event_id,
                    idempotency_key=f"{run.id}:{e.key}" + (":email" if email else ""),
                    in_reply_to=None if email else in_reply_to,
                    subject=e.subject if email else None, html=e.html if email else None,
                    contact_id=contact.id, flow=run.flow, trigger=run.trigger,
                ))
        rows = await self.acceptance.submit(conn, ws, texts, now) if texts else []  # validates all first
        sent = [m.id for m in rows]
        await fallback.remember(conn, ws, [(rows[i], email, why) for i, email, why in fallbacks], now)
        schedule: list[timers.Timer] = []
        for effect in effects:
            if isinstance(effect, fi.Schedule):
                schedule.append(timers.Timer(TIMER, run.id, effect.at, {"seq": effect.seq, "purpose": effect.purpose}, ws))
            elif isinstance(effect, fi.HttpCall):
                schedule.append(timers.Timer(CALL, run.id, now, {
                    "seq": effect.seq, "method": effect.method, "url": effect.url, "headers": effect.headers,
                    "body": effect.body, "timeout": effect.timeout, "retries": effect.retries, "attempts": 0,
                }, ws))
            elif isinstance(effect, fi.UpdateContact):
                contact = await self._update_contact(conn, ws, contact, effect.changes, now)
            elif isinstance(effect, fi.ChangeConsent):
                await self._consent(conn, ws, contact, run, effect, now)
            elif isinstance(effect, fi.OpenHandoff):
                last = await message_store.thread(conn, ws, contact.id)
                await threads.open_for(
                    conn, ws, contact.id, last[-1].id if last else None, now, note=effect.note, run_id=run.id
                )
        await timers.schedule(conn, schedule)
        return sent, contact

    async def _update_contact(
        self, conn: AsyncConnection, ws: str, contact: Contact, changes: Json, now: datetime
    ) -> Contact:
        """Store a `set` step's changes; the contact with them."""
        # The flow loader lets a step set only these fields (flows.steps.set.CONTACT_FIELDS) and attributes.
        direct = cast(contact_store.ContactChanges, {k: v for k, v in changes.items() if not k.startswith("attributes.")})
        attributes = {k.removeprefix("attributes."): v for k, v in changes.items() if k.startswith("attributes.")}
        if attributes:
            direct["attributes"] = {**contact.attributes, **attributes}
        await contact_store.update_fields(conn, ws, contact.id, now, direct)
        return replace(contact, **direct)

    async def _consent(
        self, conn: AsyncConnection, ws: str, contact: Contact, run: store.Run, effect: fi.ChangeConsent,
        now: datetime,
    ) -> None:
        actor = f"flow:{run.flow}"
        evidence = effect.reply_message_id or run.id
        state = (await consent_store.states(conn, ws, [contact.id]))[contact.id]
        if not effect.subscribe:
            if not state.opted_out(effect.topic, "sms"):
                await consents.record(conn, ws, contact, topic=effect.topic, action=ConsentAction.REVOKED,
                                      source="reply" if effect.reply_message_id else "api", actor=actor,
                                      evidence=evidence, now=now, message_id=effect.reply_message_id)
            return
        if state.granted(effect.topic, "sms"):
            return
        marketing = self.acceptance.topics.kind(effect.topic) is TopicKind.MARKETING
        if marketing and effect.reply_message_id is None and self.project.sender.double_opt_in:
            # nobody said yes in this run: ask them (double opt-in), never assume consent
            await consents.request_subscription(conn, ws, contact, effect.topic, source="api", actor=actor,
                                                evidence=evidence, now=now, sender=self.project.sender,
                                                acceptance=self.acceptance)
            return
        await consents.record(conn, ws, contact, topic=effect.topic, action=ConsentAction.GRANTED,
                              source="reply" if effect.reply_message_id else "api", actor=actor, evidence=evidence,
                              now=now, message_id=effect.reply_message_id)

    async def _end(
        self, conn: AsyncConnection, run: store.Run, status: str, now: datetime, *,
        outcome: str | None = None, error: str | None = None, start_next: bool = True,
    ) -> store.Run:
        held = run.waiting in HOLDING
        state = replace(run.state, status="done" if status == "done" else "failed" if status == "failed" else "ended", wait=None)
        run = replace(run, status=status, waiting=None, outcome=outcome, error=error, state=state, ended_at=now,
                      updated_at=now)
        await store.save_run(conn, run.id, now, status=status, waiting=None, outcome=outcome, error=error,
                             state=state, ended_at=now)
        if status == "failed":
            log.warning("flow run %s (%s) failed: %s", run.id, run.flow, error)
        await webhooks.enqueue(conn, run.workspace_id, "flow.run.ended", [{
            "run_id": run.id, "flow": run.flow, "contact_id": run.contact_id, "status": status,
            "outcome": outcome, "error": error, "vars": dict(state.vars), "at": now.isoformat(),
        }], now)
        if start_next and held:
            await self._next_turn(conn, run.workspace_id, run.contact_id, now)
        return run

    async def _next_turn(self, conn: AsyncConnection, ws: str, contact_id: str, now: datetime) -> None:
        """The conversation is free: the first parked run asks its question."""
        contact = await contact_store.get(conn, ws, contact_id)
        tried: set[str] = set()
        while contact is not None:
            open_runs = await store.open_runs(conn, ws, contact_id)
            if any(r.waiting in HOLDING for r in open_runs):
                return
            parked = sorted((r for r in open_runs if r.waiting == "turn" and r.id not in tried),
                            key=lambda r: (-r.priority, r.id))
            if not parked:
                return
            tried.add(parked[0].id)  # one that failed to ask does not block the next
            contact = (await self._advance(conn, parked[0], contact, fi.Turn(), now)).contact


def _address(contact: Contact, reach: str) -> str | None:
    """Where the contact gets a send that goes by `reach` (sms or email)."""
    return contact.email if reach == "email" else contact.phone


def _reaches(send: fi.SendText, contact: Contact) -> tuple[str, ...]:
    """Where a send goes: `both` goes to the addresses the contact has (by text when they
    have neither, so the run fails saying the number is missing); a text that may fall back
    goes by email to a contact without a number."""
    channel = send.channel
    if channel == "sms" and send.fallback and send.subject and not contact.phone and contact.email:
        return ("email",)
    if channel != "both":
        return (channel,)
    return tuple(r for r in ("sms", "email") if _address(contact, r)) or ("sms",)


def _recent_reply(state: RunState, now: datetime) -> str | None:
    """The person's last reply, if it came moments ago: what the run sends now answers it (a
    reply to the person's own text is not held by quiet hours)."""
    reply = state.reply
    if reply is None or not reply.message_id:
        return None
    return reply.message_id if now - reply.at <= REPLY_WINDOW else None


def run_view(run: store.Run) -> Json:
    state = run.state
    return {
        "id": run.id,
        "flow": run.flow,
        "version_id": run.version_id,
        "contact_id": run.contact_id,
        "status": run.status,
        "waiting_for": run.waiting,
        "step": state.wait.step_id if state.wait is not None else None,
        "trigger": run.trigger,
        "event_id": run.event_id,
        "outcome": run.outcome,
        "error": run.error,
        "vars": dict(state.vars),
        "created_at": run.created_at.isoformat(),
        "updated_at": run.updated_at.isoformat(),
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
    }

