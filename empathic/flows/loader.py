"""Reading flow files: YAML in, a checked `Flow` out, or every problem with its line.

YAML is read the YAML 1.2 way (only `true`/`false` are booleans, `09:00` stays a string), so
`keyword: [yes, no]` means the words. Problems are reported like a compiler does:
`appointment.yaml:14: steps[2].ask.timeout: '2 hours' is not a duration (like 90s, 30m, 2h)`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import jsonschema
import yaml
from jsonschema.protocols import Validator

from empathic.core.json import Json
from empathic.core.templates import FLOW_SCOPE, Condition, Template, TemplateError, compile_condition, compile_template
from empathic.flows import model, steps
from empathic.flows.model import JsonValue
from empathic.flows.schema import FLOW_SCHEMA
from empathic.flows.steps.base import STEP_ID, Where
from empathic.flows.steps.flow import Subflow
from empathic.understand.keywords import match_keyword

MAX_SUBFLOW_DEPTH = 5
_WHOLE_EXPRESSION = re.compile(r"^\s*\{\{((?:(?!\}\}|\{\{).)*)\}\}\s*$", re.DOTALL)
# What a text that does not compile becomes: its problem is reported, so the flow is never built.
_NOT_BUILT = compile_template("not built", "-", FLOW_SCOPE)


@dataclass(frozen=True, order=True)
class Problem:
    line: int
    where: str
    message: str
    file: str = ""

    def __str__(self) -> str:
        head = f"{self.file}:{self.line}" if self.file else f"line {self.line}"
        return f"{head}: {self.where + ': ' if self.where else ''}{self.message}"


class FlowError(ValueError):
    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Known:
    """What a flow may refer to outside itself; None = not checked (a flow alone)."""

    topics: frozenset[str] | None = None
    templates: frozenset[str] | None = None
    emails: frozenset[str] | None = None  # templates with an email variant (<name>.email.toml)


# -- YAML with line numbers -------------------------------------------------------------------


# libyaml's parser where PyYAML was built with it (its wheels are): 10 times the pure one.
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, _rx, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^[-+]?[0-9]+$", "-+0123456789"),
    ("tag:yaml.org,2002:float", r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$", "-+.0123456789"),
):
    _Loader.add_implicit_resolver(_tag, re.compile(_rx), list(_first))


def read_yaml(text: str) -> tuple[JsonValue, dict[Where, int]]:
    """Parse YAML; return the data and the 1-based line of every key and list item by path."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise FlowError([Problem(mark.line + 1 if mark else 1, "", f"not valid YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise FlowError([Problem(1, "", f"not valid YAML: {exc}")]) from None
    lines: dict[Where, int] = {(): 1}

    def walk(n: yaml.Node, path: Where) -> None:
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                p = (*path, key.value)
                lines[p] = key.start_mark.line + 1
                walk(value, p)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                lines[(*path, i)] = item.start_mark.line + 1
                walk(item, (*path, i))

    if node is not None:
        walk(node, ())
    return data, lines


def _where(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Problems:
    def __init__(self, lines: Mapping[Where, int]) -> None:
        self.lines = lines
        self.found: list[Problem] = []

    def add(self, path: Where, message: str) -> None:
        probe = tuple(path)
        while probe not in self.lines and probe:
            probe = probe[:-1]
        self.found.append(Problem(self.lines.get(probe, 1), _where(path), message))


# -- checking ---------------------------------------------------------------------------------

_TOP_SCHEMA = {**FLOW_SCHEMA, "properties": {**FLOW_SCHEMA["properties"], "steps": {"type": "array", "minItems": 1}}}
_VALIDATOR = jsonschema.Draft202012Validator
_KIND_SCHEMAS = {
    key: _VALIDATOR(
        {
            "type": "object",
            "properties": {"id": STEP_ID, "next": STEP_ID, key: kind.schema, **kind.fields},
            **({"required": list(kind.required)} if kind.required else {}),
        }
    )
    for key, kind in steps.BY_KEY.items()
}
_FIELD_KIND = {name: kind for kind in steps.KINDS for name in kind.fields}  # `expect` -> ask's
_STEP_KEYS = {"id", "next", *steps.BY_KEY, *_FIELD_KIND}


def _schema_problems(validator: Validator, data: JsonValue, base: Where, out: _Problems) -> None:
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        best = jsonschema.exceptions.best_match([error])
        path = (*base, *best.absolute_path)
        out.add(path, _human(best))


def _human(error: jsonschema.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    described = schema.get("description")
    value: JsonValue = error.instance
    expected: JsonValue = error.validator_value
    if error.validator == "pattern" and described:
        return f"{value!r} is not valid: {described[0].lower() + described[1:]}"
    if error.validator == "pattern":
        return f"{value!r} is not valid here (must match {expected})"
    if error.validator == "additionalProperties":
        properties = schema.get("properties", {})
        extra = sorted(set(value) - set(properties))
        hint = _did_you_mean(extra[0], properties) if extra else ""
        return f"unknown key {', '.join(map(repr, extra))}{hint}"
    if error.validator in ("oneOf", "anyOf") and described:
        return f"{value!r} is not valid: {described[0].lower() + described[1:]}"
    if error.validator == "enum":
        return f"{value!r} is not one of {', '.join(map(str, expected))}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    return error.message


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse(text: str, *, file: str = "", known: Known | None = None) -> model.Flow:
    """A flow file's text -> Flow, or FlowError listing every problem found with its line."""
    try:
        data, lines = read_yaml(text)
    except FlowError as exc:
        raise FlowError([Problem(p.line, p.where, p.message, file) for p in exc.problems]) from None
    problems = _Problems(lines)
    if not isinstance(data, dict):
        raise FlowError([Problem(1, "", "a flow file is a mapping with `flow:` and `steps:`", file)])
    _schema_problems(_VALIDATOR(_TOP_SCHEMA), data, (), problems)
    raw_steps: list[JsonValue] = data["steps"] if isinstance(data.get("steps"), list) else []
    for i, step in enumerate(raw_steps):
        path: Where = ("steps", i)
        if not isinstance(step, dict):
            problems.add(path, "a step is a mapping like `send: ...` or `ask: ...`")
            continue
        kinds = [k for k in step if k in steps.BY_KEY]
        unknown = [k for k in step if k not in _STEP_KEYS]
        for key in unknown:
            problems.add((*path, key), f"unknown key {key!r}{_did_you_mean(str(key), _STEP_KEYS)}")
        if not kinds:
            problems.add(path, f"a step needs one action: {', '.join(steps.BY_KEY)}")
        elif len(kinds) > 1:
            problems.add(path, f"a step has one action; this one has {' and '.join(kinds)} (split it into steps)")
        else:
            for key in step:
                owner = _FIELD_KIND.get(key)
                if owner is not None and kinds[0] not in owner.keys:
                    problems.add((*path, key), f"{key!r} belongs to an `{owner.keys[0]}` step, not `{kinds[0]}`")
            _schema_problems(_KIND_SCHEMAS[kinds[0]], {k: v for k, v in step.items() if k in _STEP_KEYS}, path, problems)
    if problems.found:
        raise FlowError([Problem(p.line, p.where, p.message, file) for p in problems.found])
    flow = _build(data, problems, known or Known())
    if problems.found:
        raise FlowError([Problem(p.line, p.where, p.message, file) for p in problems.found])
    assert flow is not None
    return flow


def _build(data: Json, problems: _Problems, known: Known) -> model.Flow | None:
    raw_steps: list[Json] = data["steps"]
    b = _Builder(data["flow"], raw_steps, problems, known)
    topic = data.get("topic", "transactional")
    b.topic_ok(("topic",), topic)
    built: list[model.Step] = []
    for i, raw in enumerate(raw_steps):
        where = ("steps", i)
        kind = next(steps.BY_KEY[key] for key in raw if key in steps.BY_KEY)
        action = kind.parse(b, raw, where)
        nxt = b.target((*where, "next"), raw.get("next")) if "next" in raw else (i + 1 if i + 1 < len(raw_steps) else None)
        built.append(model.Step(raw.get("id", f"{i + 1}"), action, nxt, problems.lines.get(where, 0)))

    trigger = data.get("trigger", {})
    events = trigger.get("event", [])
    keywords = trigger.get("keyword", [])
    keywords = [keywords] if isinstance(keywords, str) else keywords
    for j, word in enumerate(keywords):
        if match_keyword(word) is not None:
            problems.add(("trigger", "keyword", j) if isinstance(trigger.get("keyword"), list) else ("trigger", "keyword"),
                         f"{word!r} is a compliance keyword (STOP, START, HELP …); it cannot start a flow")
    once_per = b.template(("once_per",), data["once_per"]) if "once_per" in data else None
    _unreachable(built, problems)
    if problems.found:
        return None
    return model.Flow(
        name=b.flow_name,
        steps=tuple(built),
        topic=topic,
        description=data.get("description", ""),
        events=tuple([events] if isinstance(events, str) else events),
        keywords=tuple(w.upper() for w in keywords),
        priority=data.get("priority", 0),
        when_busy=data.get("when_busy", "queue"),
        subflows=tuple(dict.fromkeys(s.action.name for s in built if isinstance(s.action, Subflow))),
        once_per=once_per,
    )


class _Builder:
    """The loader's side of reading one flow's steps (`steps.base.Builder`)."""

    def __init__(self, name: str, raw_steps: list[Json], problems: _Problems, known: Known) -> None:
        self.flow_name = name
        self.problems = problems
        self.known = known
        self.ids: dict[str, int] = {}
        for i, raw in enumerate(raw_steps):
            step_id = raw.get("id", f"{i + 1}")
            if step_id in self.ids:
                problems.add(("steps", i, "id"), f"step id {step_id!r} is used twice (first at steps[{self.ids[step_id]}])")
            self.ids.setdefault(step_id, i)

    def problem(self, where: Where, message: str) -> None:
        self.problems.add(where, message)

    def target(self, where: Where, step_id: str | None) -> int | None:
        if step_id is None:
            return None
        if step_id not in self.ids:
            self.problems.add(where, f"no step with id {step_id!r}{_did_you_mean(step_id, self.ids)}")
            return None
        return self.ids[step_id]

    def template(self, where: Where, source: str, *, html: bool = False) -> Template:
        try:
            return compile_template(f"{self.flow_name}:{_where(where)}", source, FLOW_SCOPE, html=html)
        except TemplateError as exc:
            self.problems.add(where, exc.detail)
            return _NOT_BUILT

    def condition(self, where: Where, source: str, *, named: Where | None = None) -> Condition | None:
        try:
            return compile_condition(f"{self.flow_name}:{_where(where if named is None else named)}", source)
        except TemplateError as exc:
            self.problems.add(where, exc.detail)
            return None

    def value(self, where: Where, source: JsonValue) -> JsonValue:
        """A data value: "{{ expr }}" alone keeps the expression's type; other text is a template."""
        if not isinstance(source, str):
            return source
        whole = _WHOLE_EXPRESSION.match(source)
        if whole is None:
            return self.template(where, source)
        return self.condition(where, whole.group(1).strip())

    def topic_ok(self, where: Where, topic: str | None) -> None:
        topics = self.known.topics
        if topic is not None and topics is not None and topic not in topics:
            self.problems.add(where, f"unknown topic {topic!r}{_did_you_mean(topic, topics)}")

    def message(self, where: Where, raw: JsonValue) -> model.Message:
        if isinstance(raw, str):
            return model.Message(self.template(where, raw))
        known, add = self.known, self.problems.add
        self.topic_ok((*where, "topic"), raw.get("topic"))
        channel = raw.get("channel", "sms")
        fallback = raw.get("fallback")
        email = {k: self.template((*where, k), raw[k], html=k == "html") for k in ("subject", "html") if k in raw}
        # A template with an email variant brings its own subject and HTML.
        variant = "template" in raw and (known.emails is None or raw["template"] in known.emails)
        if where[-1] != "send" and ("channel" in raw or "fallback" in raw or email):
            add(where, "only `send` chooses a channel: questions and reminders go by text, where the answer comes")
        elif fallback is not None and channel != "sms":
            add((*where, "fallback"), f"`fallback: email` is for a text; with `channel: {channel}` the email goes anyway")
        elif channel == "sms" and fallback is None and email:
            add(where, f"`{next(iter(email))}` is for email: add `channel: email`, `channel: both` or `fallback: email`")
        elif (channel != "sms" or fallback is not None) and "subject" not in raw and not variant:
            why = f"`channel: {channel}`" if channel != "sms" else "`fallback: email`"
            hint = f" (template {raw['template']!r} has no email variant, {raw['template']}.email.toml)" if "template" in raw else ""
            add((*where, "subject"), f"{why} needs a `subject`{hint}")
        subject, html = email.get("subject"), email.get("html")
        if "template" in raw:
            wanted = raw["template"]
            if known.templates is not None and wanted not in known.templates:
                add((*where, "template"), f"no template {wanted!r} in the project{_did_you_mean(wanted, known.templates)}")
            return model.Message(None, wanted, raw.get("topic"), channel, subject, html, fallback)
        return model.Message(self.template((*where, "text"), raw["text"]), None, raw.get("topic"), channel, subject, html,
                             fallback)

    def duration(self, where: Where, raw: str | None) -> timedelta | None:
        if raw is None:
            return None
        try:
            return model.parse_duration(raw)
        except ValueError as exc:
            self.problems.add(where, str(exc))
            return None


def successors(step: model.Step) -> list[int]:
    """The steps a step may go to next."""
    return [i for i in steps.BY_ACTION[type(step.action)].successors(step) if i is not None]


def _unreachable(steps: list[model.Step], problems: _Problems) -> None:
    seen = {0}
    todo = [0]
    while todo:
        for nxt in successors(steps[todo.pop()]):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    for i, step in enumerate(steps):
        if i not in seen:
            problems.add(("steps", i), f"step {step.id!r} can never be reached (add an `id` and `goto` it, or remove it)")


# -- a set of flows ---------------------------------------------------------------------------


@dataclass
class FlowSet:
    """Flows that may refer to each other (subflows) and share keyword triggers."""

    flows: dict[str, model.Flow] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def check(self) -> list[Problem]:
        problems: list[Problem] = []
        owners: dict[str, str] = {}
        for flow in self.flows.values():
            file = self.files.get(flow.name, "")
            for sub in flow.subflows:
                if sub not in self.flows:
                    problems.append(Problem(1, "", f"runs subflow {sub!r}, which does not exist{_did_you_mean(sub, self.flows)}", file))
            for word in flow.keywords:
                if word in owners and owners[word] != flow.name:
                    problems.append(Problem(1, "trigger.keyword", f"{word!r} already starts flow {owners[word]!r}", file))
                owners.setdefault(word, flow.name)
        for flow in self.flows.values():
            depth = self._depth(flow.name, ())
            if depth is None:
                problems.append(Problem(1, "", "its subflows run in a cycle", self.files.get(flow.name, "")))
            elif depth > MAX_SUBFLOW_DEPTH:
                problems.append(Problem(1, "", f"subflows nest {depth} deep; at most {MAX_SUBFLOW_DEPTH}", self.files.get(flow.name, "")))
        return problems

    def _depth(self, name: str, stack: tuple[str, ...]) -> int | None:
        if name in stack:
            return None
        flow = self.flows.get(name)
        if flow is None or not flow.subflows:
            return 0
        depths = [self._depth(s, (*stack, name)) for s in flow.subflows]
        if any(d is None for d in depths):
            return None
        return 1 + max(d for d in depths if d is not None)
