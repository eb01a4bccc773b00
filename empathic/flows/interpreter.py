"""The flow interpreter: (run state, input) -> (new run state, effects). Pure.

No I/O and no clock: the engine (`empathic.engine.runs`) stores the state, turns effects into
texts, timers, HTTP calls and inbox threads, and feeds back what happens (a reply, a timer
firing, a call's answer, a thread closed). Every wait is a stored timer identified by the
run's `seq`; an input carrying an older `seq` is stale and changes nothing, so a timer that
fires twice, late, or after the run moved on is harmless. A run's state is a `RunState`
(`empathic.flows.state`, with its JSON); each step is run by its kind's module
(`empathic.flows.steps`), through what `_Run` offers it (`steps.base.Running`).

Rules of the language (docs/flows.md): steps run in order unless a step names another
(`goto`, `next`, `else`, `on_timeout`, `on_unclear`, `on_failure`); running past the last step
of a subflow returns to the step after the `flow:` that started it; past the last step of the
top flow, or an `end:` anywhere, ends the run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from empathic.core.json import Json
from empathic.core.limits import DATA_LIMIT, json_size
from empathic.core.templates import Condition, Email, EmailTemplate, Template, TemplateError, subject_line
from empathic.flows import model, steps
from empathic.flows.model import JsonValue
from empathic.flows.state import Frame, Heard, RunState, Understood, Waiting, WaitKind
from empathic.flows.steps.ask import Ask, Expect
from empathic.flows.steps.base import StepFailed, TimerPurpose
from empathic.flows.steps.call import Call
from empathic.understand import understand

MAX_STEPS_PER_INPUT = 200
DEFAULT_RETRY = "Sorry, I didn't get that."

# -- what comes in --------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    pass


@dataclass(frozen=True)
class Reply:
    text: str
    message_id: str | None = None


@dataclass(frozen=True)
class Timer:
    seq: int
    purpose: str  # a TimerPurpose; as stored with the timer


@dataclass(frozen=True)
class CallResult:
    seq: int
    ok: bool
    data: JsonValue = None  # the answer's JSON
    error: str | None = None


@dataclass(frozen=True)
class HandoffClosed:
    pass


@dataclass(frozen=True)
class Turn:
    """The contact's conversation is free again: a run parked before its question goes on."""


Input = Start | Reply | Timer | CallResult | HandoffClosed | Turn

# -- what goes out --------------------------------------------------------------------------


@dataclass(frozen=True)
class SendText:
    text: str
    topic: str
    key: str  # unique within the run: the idempotency key's suffix
    channel: str = "sms"  # sms, email or both
    subject: str | None = None  # email
    html: str | None = None  # email
    email_text: str | None = None  # email: its plain part when not `text` (a template's email variant)
    # sms: may go by email (if it fails for good, or the contact has no number) because the
    # step says so ("send") or its topic does ("topic"); None: it may not
    fallback: str | None = None


@dataclass(frozen=True)
class Schedule:
    at: datetime
    seq: int
    purpose: TimerPurpose


@dataclass(frozen=True)
class HttpCall:
    seq: int
    method: str
    url: str
    headers: dict[str, str]
    body: JsonValue
    timeout: float
    retries: int


@dataclass(frozen=True)
class UpdateContact:
    changes: Json  # email / timezone / locale, or attributes.<name>


@dataclass(frozen=True)
class ChangeConsent:
    topic: str
    subscribe: bool
    reply_message_id: str | None  # the reply that asked for it, if any


@dataclass(frozen=True)
class OpenHandoff:
    note: str


Effect = SendText | Schedule | HttpCall | UpdateContact | ChangeConsent | OpenHandoff


class Library(Protocol):
    """The flows and templates a run may use: the one way flows/ looks them up.
    `StaticLibrary` is the one implementation (the engine fills it from stored versions)."""

    def flow(self, key: str) -> model.Flow: ...

    def latest(self, name: str) -> str: ...  # the key of a flow's current version

    def template(self, name: str) -> Template | None: ...

    def email(self, name: str) -> EmailTemplate | None: ...  # a template's email variant


@dataclass(frozen=True)
class Context:
    now: datetime
    contact: Mapping[str, JsonValue]  # the contact as templates see it (the API's view)
    timezone: str = "UTC"
    # False while another run waits for the person's answer (or a person has the thread):
    # an `ask` then parks (wait kind "turn") instead of asking over the other conversation.
    conversation_free: bool = True
    # Topics whose texts fall back to email (the project's `[fallback]`).
    fallback_topics: frozenset[str] = frozenset()


@dataclass
class Outcome:
    state: RunState
    effects: list[Effect] = field(default_factory=list)
    ran: list[tuple[str, int]] = field(default_factory=list)  # the steps executed, in order: (flow key, index)

    @property
    def finished(self) -> bool:
        return not self.state.active


# A flow keeps its run's vars within what the API would take (like an event's data).
VARS_LIMIT = DATA_LIMIT


def advance(library: Library, state: RunState, given: Input, ctx: Context) -> Outcome:
    """Apply one input to a run (a state is immutable: the new one is returned)."""
    if not state.active:
        return Outcome(state)
    run = _Run(library, state, ctx)
    try:
        run.take(given)
    except StepFailed as exc:
        run.fail(str(exc))
    return Outcome(run.state, run.effects, run.ran)


class _Run:
    def __init__(self, library: Library, state: RunState, ctx: Context) -> None:
        self.library = library
        self.state = state
        self.ctx = ctx
        self.contact = dict(ctx.contact)
        self.effects: list[Effect] = []
        self.ran: list[tuple[str, int]] = []

    # -- inputs ---------------------------------------------------------------------------

    def take(self, given: Input) -> None:
        wait = self.state.wait
        if isinstance(given, Start):
            if wait is None and self.state.seq == 0:
                self.run()
            return
        if wait is None:
            return
        if isinstance(given, Reply):
            if wait.kind == "reply":
                self._reply(given, wait)
        elif isinstance(given, Timer):
            if given.seq == wait.seq:
                self._timer(given.purpose, wait)
        elif isinstance(given, CallResult):
            if wait.kind == "call" and given.seq == wait.seq:
                self._call_result(given)
        elif isinstance(given, Turn):
            if wait.kind == "turn":
                self.update(wait=None)
                self.run()  # the parked step, the question, again
        elif isinstance(given, HandoffClosed) and wait.kind == "handoff":
            self.update(wait=None)
            if wait.resume:
                self.goto(self.step().next)
                self.run()
            else:
                self.finish("handed_off")

    def _reply(self, given: Reply, wait: Waiting) -> None:
        step = self.step()
        ask = step.action
        assert isinstance(ask, Ask)
        heard = understand(given.text, now=self.ctx.now, timezone=self.ctx.timezone, options=list(ask.options) or None)
        understood = Understood(
            intent=heard.intent.value,
            option=heard.option,
            when=heard.when.isoformat() if heard.when is not None else None,
            number=_number(given.text),
            language=heard.language,
            confidence=round(heard.confidence, 3),
        )
        self.update(reply=Heard(given.text, given.message_id, self.ctx.now, understood))
        for expect in ask.expect:
            if _matches(expect, understood, given.text):
                if ask.save:
                    self.keep({ask.save: self.reply()})
                self.update(wait=None)
                self.goto(expect.goto if expect.goto is not None else step.next)
                self.run()
                return
        if wait.retries < ask.retries:
            self.update(wait=replace(wait, retries=wait.retries + 1))
            retry = self.render(ask.retry_text) if ask.retry_text else f"{DEFAULT_RETRY} {self.text(ask.message)}"
            self.send(retry, self.topic(ask.message))
            return
        self.update(wait=None)
        if ask.on_unclear is not None:
            self.goto(ask.on_unclear)
            self.run()
        else:  # a flow that cannot help hands the thread to a person
            self.effects.append(OpenHandoff(f"The flow {self.flow().name!r} could not understand the reply at step {step.id!r}."))
            self.finish("unclear")

    def _timer(self, purpose: str, wait: Waiting) -> None:
        step = self.step()
        if wait.kind == "timer" and purpose == "wake":
            self.update(wait=None)
            self.goto(step.next)
            self.run()
        elif wait.kind == "reply" and purpose == "remind":
            ask = step.action
            assert isinstance(ask, Ask)
            if ask.reminders and wait.reminders < ask.reminders.count:
                self.update(wait=replace(wait, reminders=wait.reminders + 1))
                text = self.render(ask.reminders.text) if ask.reminders.text else self.text(ask.message)
                self.send(text, self.topic(ask.message))
        elif wait.kind == "turn" and purpose == "timeout":
            self.finish("no_turn")
        elif wait.kind == "reply" and purpose == "timeout":
            ask = step.action
            assert isinstance(ask, Ask)
            self.update(wait=None)
            if ask.on_timeout is not None:
                self.goto(ask.on_timeout)
                self.run()
            else:
                self.finish("no_answer")

    def _call_result(self, given: CallResult) -> None:
        step = self.step()
        call = step.action
        assert isinstance(call, Call)
        self.update(wait=None)
        if given.ok:
            self.keep({name: _dig(given.data, path) for name, path in call.save})
            self.goto(step.next)
        elif call.on_failure is not None:
            self.keep({"call_error": given.error})
            self.goto(call.on_failure)
        else:
            raise StepFailed(f"step {step.id!r}: the call failed: {given.error}")
        self.run()

    # -- running steps --------------------------------------------------------------------

    def run(self) -> None:
        for _ in range(MAX_STEPS_PER_INPUT):
            if not self.state.active or self.state.wait is not None:
                return
            if self.state.frames[-1].at is None:  # ran past the last step
                self.update(frames=self.state.frames[:-1])
                if not self.state.frames:
                    self.finish("completed")
                    return
                self.goto(self.step().next)  # the step after the `flow:` that called it
                continue
            self.execute(self.step())
        raise StepFailed(f"ran {MAX_STEPS_PER_INPUT} steps without waiting: a loop of gotos?")

    def execute(self, step: model.Step) -> None:
        frame = self.state.frames[-1]
        if frame.at is not None:
            self.ran.append((frame.flow, frame.at))
        steps.BY_ACTION[type(step.action)].execute(self, step)

    # -- what a step may do (steps.base.Running) ------------------------------------------

    @property
    def now(self) -> datetime:
        return self.ctx.now

    @property
    def timezone(self) -> str:
        return self.ctx.timezone

    @property
    def conversation_free(self) -> bool:
        return self.ctx.conversation_free

    def schedule(self, at: datetime, purpose: TimerPurpose) -> None:
        self.effects.append(Schedule(at, self.state.seq, purpose))

    def enter(self, flow_name: str) -> None:
        self.update(frames=(*self.state.frames, Frame(self.library.latest(flow_name), 0)))

    def set_vars(self, variables: Mapping[str, JsonValue]) -> None:
        self.update(vars=variables)

    def call(self, method: str, url: str, headers: dict[str, str], body: JsonValue, timeout: float, retries: int) -> None:
        self.effects.append(HttpCall(self.state.seq, method, url, headers, body, timeout, retries))

    def update_contact(self, changes: Json) -> None:
        self.effects.append(UpdateContact(changes))

    def change_consent(self, topic: str, subscribe: bool, reply_message_id: str | None) -> None:
        self.effects.append(ChangeConsent(topic, subscribe, reply_message_id))

    def open_handoff(self, note: str) -> None:
        self.effects.append(OpenHandoff(note))

    # -- helpers --------------------------------------------------------------------------

    def update(self, **changes: object) -> None:
        self.state = replace(self.state, **changes)  # type: ignore[arg-type]  # RunState's own fields

    def flow(self) -> model.Flow:
        return self.library.flow(self.state.frames[-1].flow)

    def step(self) -> model.Step:
        at = self.state.frames[-1].at
        assert at is not None  # run() pops a frame that ran past its last step
        return self.flow().steps[at]

    def goto(self, index: int | None) -> None:
        frames = self.state.frames
        self.update(frames=(*frames[:-1], replace(frames[-1], at=index)))

    def wait(self, kind: WaitKind, *, resume: bool = False) -> None:
        step = self.state.frames[-1].at
        assert step is not None
        seq = self.state.seq + 1
        self.update(seq=seq, wait=Waiting(kind, seq, step, self.step().id, resume=resume))

    def finish(self, outcome: str) -> None:
        self.update(status="done", outcome=outcome, wait=None)

    def fail(self, error: str) -> None:
        self.update(status="failed", error=error, wait=None)
        self.effects = [e for e in self.effects if not isinstance(e, (Schedule, HttpCall))]

    def keep(self, values: Mapping[str, JsonValue]) -> None:
        """Set run variables, all or none."""
        variables = {**self.state.vars, **values}
        self.check_vars(variables)
        self.set_vars(variables)

    def check_vars(self, variables: Mapping[str, JsonValue]) -> None:
        # The vars are stored with the run and copied at every input: a run that would keep
        # more fails, rather than store it (`vars.b = [vars.a] * 10` ten times over was 200 MB).
        if json_size(variables) > VARS_LIMIT:
            raise StepFailed(f"step {self.step().id!r}: the run's vars would take more than {VARS_LIMIT // 1024} KiB as JSON")

    def reply(self) -> Json:
        """The last reply as templates see it ({} when there is none)."""
        return self.state.reply.to_json() if self.state.reply is not None else {}

    def scope(self) -> Json:
        return {"contact": self.contact, "event": self.state.event, "vars": self.state.vars, "reply": self.reply()}

    def render(self, template: Template) -> str:
        try:
            return template.render(**self.scope())
        except TemplateError as exc:
            raise StepFailed(f"{exc.template}: {exc.detail}") from None

    def text(self, message: model.Message) -> str:
        if message.template is not None:
            return self.render(message.template)
        found = self.library.template(message.template_name or "")
        if found is None:
            raise StepFailed(f"template {message.template_name!r} does not exist")
        return self.render(found)

    def topic(self, message: model.Message) -> str:
        return message.topic or self.flow().topic

    def send(self, text: str, topic: str, message: model.Message | None = None) -> None:
        self.update(sent=self.state.sent + 1)
        key = str(self.state.sent)
        email = self.email(message, text, topic) if message is not None else None
        if message is None or email is None:
            assert message is None or message.channel == "sms"  # email() has one for email, or fails
            self.effects.append(SendText(text, topic, key))
            return
        by_email = message.channel != "sms"
        self.effects.append(SendText(
            text, topic, key, channel=message.channel, subject=email.subject, html=email.html,
            email_text=email.text if email.text != text else None,
            fallback=None if by_email else "send" if message.fallback == "email" else "topic",
        ))

    def email(self, message: model.Message, text: str, topic: str) -> Email | None:
        """The email of a send: for `channel: email|both`, or for a text that may fall back
        (`fallback: email`, or its topic falls back and its template has an email variant)
        to a contact with an address; None when there is none to write."""
        explicit = message.channel != "sms" or message.fallback == "email"
        if not explicit and (topic not in self.ctx.fallback_topics or message.template_name is None):
            return None
        if message.channel == "sms" and not self.contact.get("email"):
            return None  # nowhere to fall back to
        if message.subject is not None:
            html = self.render(message.html) if message.html is not None else None
            return Email(subject_line(self.render(message.subject)), text, html)
        variant = self.library.email(message.template_name or "")
        if variant is None:
            if explicit:
                raise StepFailed(f"template {message.template_name!r} has no email variant (a subject)")
            return None
        try:
            return variant.render(text, **self.scope())
        except TemplateError as exc:
            raise StepFailed(f"{exc.template}: {exc.detail}") from None

    def value(self, value: JsonValue) -> JsonValue:
        """A data value: a template's text (may be empty), an expression's typed value, or as is."""
        try:
            if isinstance(value, Template):
                return value.render_value(**self.scope())
            if isinstance(value, Condition):
                return value.value(**self.scope())
        except TemplateError as exc:
            raise StepFailed(f"{exc.template}: {exc.detail}") from None
        return value


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:[.,]\d+)?(?![\w])")
_WORD_CACHE: dict[str, re.Pattern[str]] = {}


def _number(text: str) -> float | int | None:
    found = _NUMBER.search(text)
    if not found:
        return None
    raw = found.group().replace(",", ".")
    value = float(raw)
    return int(value) if value.is_integer() and "." not in raw else value


def _matches(expect: Expect, heard: Understood, text: str) -> bool:
    if expect.kind == "option":
        return heard.option is not None and str(heard.option).upper() in expect.values
    if expect.kind == "intent":
        return heard.intent in expect.values
    if expect.kind == "keyword":
        folded = text.casefold()
        for word in expect.values:
            pattern = _WORD_CACHE.get(word)
            if pattern is None:
                pattern = _WORD_CACHE[word] = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)")
            if pattern.search(folded):
                return True
        return False
    if expect.kind == "number":
        n = heard.number
        if n is None:
            return False
        return (expect.low is None or n >= expect.low) and (expect.high is None or n <= expect.high)
    if expect.kind == "when":
        return heard.when is not None
    return True  # any


def _dig(data: JsonValue, path: str) -> JsonValue:
    current = data
    for part in re.findall(r"[^.\[\]]+", path):
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


@dataclass
class StaticLibrary:
    """Flows and templates held in memory. The engine's, loaded for one transaction, has flows by
    version key and `heads` (a subflow's current version); checks' and tests' have flows by name
    (the name is the key) and no heads."""

    flows: dict[str, model.Flow]
    templates: Mapping[str, Template] = field(default_factory=dict)
    emails: Mapping[str, EmailTemplate] = field(default_factory=dict)
    heads: dict[str, str] = field(default_factory=dict)

    def flow(self, key: str) -> model.Flow:
        return self.flows[key]

    def latest(self, name: str) -> str:
        return self.heads[name] if self.heads else name

    def template(self, name: str) -> Template | None:
        return self.templates.get(name)

    def email(self, name: str) -> EmailTemplate | None:
        return self.emails.get(name)
