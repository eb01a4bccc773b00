"""The flow interpreter: (run state, input) -> (new run state, effects). Pure.

No I/O and no clock: the engine (`empathic.engine.runs`) stores the state, turns effects into
texts, timers, HTTP calls and inbox threads, and feeds back what happens (a reply, a timer
firing, a call's answer, a thread closed). Every wait is a stored timer identified by the
run's `seq`; an input carrying an older `seq` is stale and changes nothing, so a timer that
fires twice, late, or after the run moved on is harmless.

A run's state is plain JSON (stored as is):

    {"status": "active" | "done" | "failed",
     "frames": [{"flow": <version key>, "at": <step index>}, ...],   # subflows push a frame
     "vars": {...}, "event": {"id", "type", "data"}, "reply": {...} | null,
     "seq": 3, "sent": 5,
     "wait": null | {"kind": "reply" | "timer" | "call" | "handoff" | "turn", "seq": 3, "step": 2,
                     "reminders": 0, "retries": 0, "resume": false},
     "outcome": "confirmed" | null, "error": null | "why it failed"}

Rules of the language (docs/flows.md): steps run in order unless a step names another
(`goto`, `next`, `else`, `on_timeout`, `on_unclear`, `on_failure`); running past the last step
of a subflow returns to the step after the `flow:` that started it; past the last step of the
top flow, or an `end:` anywhere, ends the run.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from empathic.core.limits import ATTRIBUTES_LIMIT, DATA_LIMIT, json_size
from empathic.core.templates import Condition, Email, EmailTemplate, Template, TemplateError, subject_line
from empathic.flows import model
from empathic.understand import understand

MAX_STEPS_PER_INPUT = 200
TURN_LIMIT = timedelta(hours=24)  # a question parked this long behind another conversation is dropped
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
    purpose: str  # "wake" | "remind" | "timeout"


@dataclass(frozen=True)
class CallResult:
    seq: int
    ok: bool
    data: Any = None
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
    purpose: str


@dataclass(frozen=True)
class HttpCall:
    seq: int
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    timeout: float
    retries: int


@dataclass(frozen=True)
class UpdateContact:
    changes: dict[str, Any]  # email / timezone / locale, or attributes.<name>


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
    """The flows and templates a run may use; the engine's is backed by stored versions."""

    def flow(self, key: str) -> model.Flow: ...

    def latest(self, name: str) -> str: ...  # the key of a flow's current version

    def template(self, name: str) -> Template | None: ...

    def email(self, name: str) -> EmailTemplate | None: ...  # a template's email variant


@dataclass(frozen=True)
class Context:
    now: datetime
    contact: dict[str, Any]
    timezone: str = "UTC"
    # False while another run waits for the person's answer (or a person has the thread):
    # an `ask` then parks (wait kind "turn") instead of asking over the other conversation.
    conversation_free: bool = True
    # Topics whose texts fall back to email (the project's `[fallback]`).
    fallback_topics: frozenset[str] = frozenset()


@dataclass
class Outcome:
    state: dict[str, Any]
    effects: list[Effect] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.state["status"] != "active"


CONTACT_FIELDS = frozenset({"email", "timezone", "locale"})
# A flow keeps its run's vars, and sets a contact's fields, within what the API would take:
# the vars like an event's data, the attributes (merged) like the API's, each field its length.
VARS_LIMIT = DATA_LIMIT
FIELD_LENGTHS = {"email": 320, "locale": 35, "timezone": 64}


def new_state(flow_key: str, event: dict[str, Any] | None = None, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "status": "active",
        "frames": [{"flow": flow_key, "at": 0}],
        "vars": dict(variables or {}),
        "event": event or {},
        "reply": None,
        "seq": 0,
        "sent": 0,
        "wait": None,
        "outcome": None,
        "error": None,
    }


def advance(library: Library, state: dict[str, Any], given: Input, ctx: Context) -> Outcome:
    """Apply one input to a run; the state passed in is not modified."""
    run = _Run(library, copy.deepcopy(state), ctx)
    if state["status"] != "active":
        return Outcome(run.state)
    try:
        run.take(given)
    except _Failed as exc:
        run.fail(str(exc))
    return Outcome(run.state, run.effects)


class _Failed(Exception):
    pass


class _Run:
    def __init__(self, library: Library, state: dict[str, Any], ctx: Context) -> None:
        self.library = library
        self.state = state
        self.ctx = ctx
        self.contact = dict(ctx.contact)
        self.effects: list[Effect] = []

    # -- inputs ---------------------------------------------------------------------------

    def take(self, given: Input) -> None:
        wait = self.state["wait"]
        if isinstance(given, Start):
            if wait is None and self.state["seq"] == 0:
                self.run()
            return
        if wait is None:
            return
        if isinstance(given, Reply):
            if wait["kind"] == "reply":
                self._reply(given)
        elif isinstance(given, Timer):
            if given.seq == wait["seq"]:
                self._timer(given.purpose)
        elif isinstance(given, CallResult):
            if wait["kind"] == "call" and given.seq == wait["seq"]:
                self._call_result(given)
        elif isinstance(given, Turn):
            if wait["kind"] == "turn":
                self.state["wait"] = None
                self.run()  # the parked step, the question, again
        elif isinstance(given, HandoffClosed) and wait["kind"] == "handoff":
            self.state["wait"] = None
            if wait["resume"]:
                self.goto(self.step().next)
                self.run()
            else:
                self.finish("handed_off")

    def _reply(self, given: Reply) -> None:
        wait = self.state["wait"]
        step = self.step()
        ask = step.action
        assert isinstance(ask, model.Ask)
        heard = understand(given.text, now=self.ctx.now, timezone=self.ctx.timezone, options=list(ask.options) or None)
        number = _number(given.text)
        reply = {
            "text": given.text,
            "intent": heard.intent.value,
            "option": heard.option,
            "when": heard.when.isoformat() if heard.when is not None else None,
            "number": number,
            "language": heard.language,
            "confidence": round(heard.confidence, 3),
            "message_id": given.message_id,
            "at": self.ctx.now.isoformat(),
        }
        self.state["reply"] = reply
        for expect in ask.expect:
            if _matches(expect, reply, given.text):
                if ask.save:
                    self.keep({ask.save: reply})
                self.state["wait"] = None
                self.goto(expect.goto if expect.goto is not None else step.next)
                self.run()
                return
        if wait["retries"] < ask.retries:
            wait["retries"] += 1
            retry = self.render(ask.retry_text) if ask.retry_text else f"{DEFAULT_RETRY} {self.question(ask)}"
            self.send(retry, self.topic(ask.message))
            return
        self.state["wait"] = None
        if ask.on_unclear is not None:
            self.goto(ask.on_unclear)
            self.run()
        else:  # a flow that cannot help hands the thread to a person
            self.effects.append(OpenHandoff(f"The flow {self.flow().name!r} could not understand the reply at step {step.id!r}."))
            self.finish("unclear")

    def _timer(self, purpose: str) -> None:
        wait = self.state["wait"]
        step = self.step()
        if wait["kind"] == "timer" and purpose == "wake":
            self.state["wait"] = None
            self.goto(step.next)
            self.run()
        elif wait["kind"] == "reply" and purpose == "remind":
            ask = step.action
            assert isinstance(ask, model.Ask)
            if ask.reminders and wait["reminders"] < ask.reminders.count:
                wait["reminders"] += 1
                text = self.render(ask.reminders.text) if ask.reminders.text else self.question(ask)
                self.send(text, self.topic(ask.message))
        elif wait["kind"] == "turn" and purpose == "timeout":
            self.finish("no_turn")
        elif wait["kind"] == "reply" and purpose == "timeout":
            ask = step.action
            assert isinstance(ask, model.Ask)
            self.state["wait"] = None
            if ask.on_timeout is not None:
                self.goto(ask.on_timeout)
                self.run()
            else:
                self.finish("no_answer")

    def _call_result(self, given: CallResult) -> None:
        step = self.step()
        call = step.action
        assert isinstance(call, model.Call)
        self.state["wait"] = None
        if given.ok:
            self.keep({name: _dig(given.data, path) for name, path in call.save})
            self.goto(step.next)
        elif call.on_failure is not None:
            self.keep({"call_error": given.error})
            self.goto(call.on_failure)
        else:
            raise _Failed(f"step {step.id!r}: the call failed: {given.error}")
        self.run()

    # -- running steps --------------------------------------------------------------------

    def run(self) -> None:
        for _ in range(MAX_STEPS_PER_INPUT):
            if self.state["status"] != "active" or self.state["wait"] is not None:
                return
            frame = self.state["frames"][-1]
            if frame["at"] is None:  # ran past the last step
                self.state["frames"].pop()
                if not self.state["frames"]:
                    self.finish("completed")
                    return
                self.goto(self.step().next)  # the step after the `flow:` that called it
                continue
            self.execute(self.step())
        raise _Failed(f"ran {MAX_STEPS_PER_INPUT} steps without waiting: a loop of gotos?")

    def execute(self, step: model.Step) -> None:
        action = step.action
        if isinstance(action, model.Send):
            self.send(self.text(action.message), self.topic(action.message), action.message)
        elif isinstance(action, model.Ask):
            if not self.ctx.conversation_free:
                self.wait("turn")
                self.effects.append(Schedule(self.ctx.now + TURN_LIMIT, self.state["seq"], "timeout"))
                return
            self.send(self.question(action), self.topic(action.message))
            self.wait("reply")
            seq, asked = self.state["seq"], self.ctx.now
            if action.reminders:
                for k in range(1, action.reminders.count + 1):
                    self.effects.append(Schedule(asked + action.reminders.after * k, seq, "remind"))
            if action.timeout:
                self.effects.append(Schedule(asked + action.timeout, seq, "timeout"))
            return
        elif isinstance(action, model.Branch):
            for condition, goto in action.cases:
                try:
                    if condition.holds(**self.scope()):
                        self.goto(goto)
                        return
                except TemplateError as exc:
                    raise _Failed(f"step {step.id!r}: {exc.detail}") from None
            self.goto(action.otherwise if action.otherwise is not None else step.next)
            return
        elif isinstance(action, model.Call):
            self.wait("call")
            self.effects.append(
                HttpCall(
                    self.state["seq"],
                    action.method,
                    self.render(action.url),
                    {k: self.value(v) for k, v in action.headers},
                    self._json(action.body),
                    action.timeout.total_seconds(),
                    action.retries,
                )
            )
            return
        elif isinstance(action, model.Wait):
            due = self.ctx.now + action.duration if action.duration else self._instant(step, action)
            if due > self.ctx.now:
                self.wait("timer")
                self.effects.append(Schedule(due, self.state["seq"], "wake"))
                return
        elif isinstance(action, model.SetFields):
            before = dict(self.state["vars"]), dict(self.contact)
            changes = {}
            try:
                for scope, name, value in action.values:
                    value = self.value(value)
                    if scope == "vars":
                        self.state["vars"][name] = value
                    elif name in CONTACT_FIELDS:
                        changes[name] = value
                        self.contact[name] = value
                    else:
                        changes[f"attributes.{name}"] = value
                        self.contact["attributes"] = {**(self.contact.get("attributes") or {}), name: value}
                self.check_vars(self.state["vars"])
                self.check_contact(changes)
            except _Failed:
                self.state["vars"], self.contact = before  # the step sets all its values or none
                raise
            if changes:
                self.effects.append(UpdateContact(changes))
        elif isinstance(action, model.Subscription):
            reply = self.state["reply"] or {}
            # only an answer to a question counts as the person's yes (a keyword that started the
            # run, like "WATCH", does not: joining a marketing topic by keyword is double opt-in)
            answered = reply.get("message_id") if "intent" in reply else None
            self.effects.append(ChangeConsent(action.topic, action.subscribe, answered))
        elif isinstance(action, model.Handoff):
            note = self.render(action.note) if action.note else f"Handed over by the flow {self.flow().name!r}."
            self.effects.append(OpenHandoff(note))
            self.wait("handoff", resume=action.resume)
            return
        elif isinstance(action, model.Subflow):
            self.state["frames"].append({"flow": self.library.latest(action.name), "at": 0})
            return
        elif isinstance(action, model.End):
            self.finish(action.outcome)
            return
        self.goto(step.next)

    # -- helpers --------------------------------------------------------------------------

    def flow(self) -> model.Flow:
        return self.library.flow(self.state["frames"][-1]["flow"])

    def step(self) -> model.Step:
        return self.flow().steps[self.state["frames"][-1]["at"]]

    def goto(self, index: int | None) -> None:
        self.state["frames"][-1]["at"] = index

    def wait(self, kind: str, *, resume: bool = False) -> None:
        self.state["seq"] += 1
        self.state["wait"] = {
            "kind": kind, "seq": self.state["seq"], "step": self.state["frames"][-1]["at"], "step_id": self.step().id,
            "reminders": 0, "retries": 0, "resume": resume,
        }

    def finish(self, outcome: str) -> None:
        self.state.update(status="done", outcome=outcome, wait=None)

    def fail(self, error: str) -> None:
        self.state.update(status="failed", error=error, wait=None)
        self.effects = [e for e in self.effects if not isinstance(e, (Schedule, HttpCall))]

    def keep(self, values: dict[str, Any]) -> None:
        """Set run variables, all or none."""
        variables = {**self.state["vars"], **values}
        self.check_vars(variables)
        self.state["vars"] = variables

    def check_vars(self, variables: dict[str, Any]) -> None:
        # The vars are stored with the run and copied at every input: a run that would keep
        # more fails, rather than store it (`vars.b = [vars.a] * 10` ten times over was 200 MB).
        if json_size(variables) > VARS_LIMIT:
            raise _Failed(f"step {self.step().id!r}: the run's vars would take more than {VARS_LIMIT // 1024} KiB as JSON")

    def check_contact(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            longest = FIELD_LENGTHS.get(name)
            if longest is not None and value is not None and not (isinstance(value, str) and len(value) <= longest):
                raise _Failed(f"step {self.step().id!r}: a contact's {name} is a text of at most {longest} characters")
        attributes = self.contact.get("attributes") or {}
        if any(name.startswith("attributes.") for name in changes) and json_size(attributes) > ATTRIBUTES_LIMIT:
            raise _Failed(f"step {self.step().id!r}: the contact's attributes would take more than "
                          f"{ATTRIBUTES_LIMIT // 1024} KiB as JSON")

    def scope(self) -> dict[str, Any]:
        return {"contact": self.contact, "event": self.state["event"], "vars": self.state["vars"], "reply": self.state["reply"] or {}}

    def render(self, template: Template) -> str:
        try:
            return template.render(**self.scope())
        except TemplateError as exc:
            raise _Failed(f"{exc.template}: {exc.detail}") from None

    def text(self, message: model.Message) -> str:
        if message.template is not None:
            return self.render(message.template)
        found = self.library.template(message.template_name or "")
        if found is None:
            raise _Failed(f"template {message.template_name!r} does not exist")
        return self.render(found)

    def question(self, ask: model.Ask) -> str:
        return self.text(ask.message)

    def topic(self, message: model.Message) -> str:
        return message.topic or self.flow().topic

    def send(self, text: str, topic: str, message: model.Message | None = None) -> None:
        self.state["sent"] += 1
        extra: dict[str, Any] = {}
        email = self.email(message, text, topic) if message is not None else None
        if message is not None and message.channel != "sms":
            assert email is not None
            extra = {"channel": message.channel}
        elif email is not None:
            extra = {"fallback": "send" if message.fallback == "email" else "topic"}
        if email is not None:
            extra.update(subject=email.subject, html=email.html, email_text=email.text if email.text != text else None)
        self.effects.append(SendText(text, topic, str(self.state["sent"]), **extra))

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
                raise _Failed(f"template {message.template_name!r} has no email variant (a subject)")
            return None
        try:
            return variant.render(text, **self.scope())
        except TemplateError as exc:
            raise _Failed(f"{exc.template}: {exc.detail}") from None

    def value(self, value: Any) -> Any:
        """A data value: a template's text (may be empty), an expression's typed value, or as is."""
        try:
            if isinstance(value, Template):
                return value.render_value(**self.scope())
            if isinstance(value, Condition):
                return value.value(**self.scope())
        except TemplateError as exc:
            raise _Failed(f"{exc.template}: {exc.detail}") from None
        return value

    def _json(self, value: Any) -> Any:
        if isinstance(value, (Template, Condition)):
            return self.value(value)
        if isinstance(value, dict):
            return {k: self._json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._json(v) for v in value]
        return value

    def _instant(self, step: model.Step, wait: model.Wait) -> datetime:
        assert wait.until is not None
        raw = self.render(wait.until)
        zone = ZoneInfo(self.ctx.timezone)
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            try:
                parsed = datetime.combine(date.fromisoformat(raw), time(0))
            except ValueError:
                raise _Failed(f"step {step.id!r}: {raw!r} is not an ISO date or date-time") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone)
        return parsed.astimezone(UTC) + wait.offset  # offsets are elapsed time, across DST too


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:[.,]\d+)?(?![\w])")
_WORD_CACHE: dict[str, re.Pattern[str]] = {}


def _number(text: str) -> float | int | None:
    found = _NUMBER.search(text)
    if not found:
        return None
    raw = found.group().replace(",", ".")
    value = float(raw)
    return int(value) if value.is_integer() and "." not in raw else value


def _matches(expect: model.Expect, reply: dict[str, Any], text: str) -> bool:
    if expect.kind == "option":
        return reply["option"] is not None and str(reply["option"]).upper() in expect.values
    if expect.kind == "intent":
        return reply["intent"] in expect.values
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
        n = reply["number"]
        if n is None:
            return False
        return (expect.low is None or n >= expect.low) and (expect.high is None or n <= expect.high)
    if expect.kind == "when":
        return reply["when"] is not None
    return True  # any


def _dig(data: Any, path: str) -> Any:
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
    """Flows by name (the name is the key) and templates: for checks and pure tests."""

    flows: dict[str, model.Flow]
    templates: dict[str, Template] = field(default_factory=dict)
    emails: dict[str, EmailTemplate] = field(default_factory=dict)

    def flow(self, key: str) -> model.Flow:
        return self.flows[key]

    def latest(self, name: str) -> str:
        return name

    def template(self, name: str) -> Template | None:
        return self.templates.get(name)

    def email(self, name: str) -> EmailTemplate | None:
        return self.emails.get(name)
