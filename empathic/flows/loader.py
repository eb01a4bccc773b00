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
from typing import Any

import jsonschema
import yaml

from empathic.core.templates import FLOW_SCOPE, TemplateError, compile_condition, compile_template

_WHOLE_EXPRESSION = re.compile(r"^\s*\{\{((?:(?!\}\}|\{\{).)*)\}\}\s*$", re.DOTALL)
from empathic.flows import model
from empathic.flows.schema import _ASK_FIELDS, _STEP_KINDS, FLOW_SCHEMA
from empathic.understand.keywords import match_keyword

MAX_SUBFLOW_DEPTH = 5


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


def read_yaml(text: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
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
    lines: dict[tuple[Any, ...], int] = {(): 1}

    def walk(n: yaml.Node, path: tuple[Any, ...]) -> None:
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


def _where(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Problems:
    def __init__(self, lines: Mapping[tuple[Any, ...], int]) -> None:
        self.lines = lines
        self.found: list[Problem] = []

    def add(self, path: tuple[Any, ...], message: str) -> None:
        probe = tuple(path)
        while probe not in self.lines and probe:
            probe = probe[:-1]
        self.found.append(Problem(self.lines.get(probe, 1), _where(path), message))


# -- checking ---------------------------------------------------------------------------------

_TOP_SCHEMA = {**FLOW_SCHEMA, "properties": {**FLOW_SCHEMA["properties"], "steps": {"type": "array", "minItems": 1}}}
_VALIDATOR = jsonschema.Draft202012Validator
_KIND_SCHEMAS = {
    kind: _VALIDATOR(
        {
            "type": "object",
            "properties": {
                "id": FLOW_SCHEMA["properties"]["steps"]["items"]["properties"]["id"],
                "next": FLOW_SCHEMA["properties"]["steps"]["items"]["properties"]["next"],
                kind: schema,
                **(_ASK_FIELDS if kind == "ask" else {}),
            },
            **({"required": ["expect"]} if kind == "ask" else {}),
        }
    )
    for kind, schema in _STEP_KINDS.items()
}
_STEP_KEYS = {"id", "next", *_STEP_KINDS, *_ASK_FIELDS}


def _schema_problems(validator: Any, data: Any, base: tuple[Any, ...], out: _Problems) -> None:
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        best = jsonschema.exceptions.best_match([error])
        path = (*base, *best.absolute_path)
        out.add(path, _human(best))


def _human(error: jsonschema.ValidationError) -> str:
    described = error.schema.get("description") if isinstance(error.schema, dict) else None
    value = error.instance
    if error.validator == "pattern" and described:
        return f"{value!r} is not valid: {described[0].lower() + described[1:]}"
    if error.validator == "pattern":
        return f"{value!r} is not valid here (must match {error.validator_value})"
    if error.validator == "additionalProperties":
        extra = sorted(set(value) - set(error.schema.get("properties", {})))
        hint = _did_you_mean(extra[0], error.schema.get("properties", {})) if extra else ""
        return f"unknown key {', '.join(map(repr, extra))}{hint}"
    if error.validator in ("oneOf", "anyOf") and described:
        return f"{value!r} is not valid: {described[0].lower() + described[1:]}"
    if error.validator == "enum":
        return f"{value!r} is not one of {', '.join(map(str, error.validator_value))}"
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
    steps = data.get("steps") if isinstance(data.get("steps"), list) else []
    for i, step in enumerate(steps):
        path: tuple[Any, ...] = ("steps", i)
        if not isinstance(step, dict):
            problems.add(path, "a step is a mapping like `send: ...` or `ask: ...`")
            continue
        kinds = [k for k in step if k in _STEP_KINDS]
        unknown = [k for k in step if k not in _STEP_KEYS]
        for key in unknown:
            problems.add((*path, key), f"unknown key {key!r}{_did_you_mean(str(key), _STEP_KEYS)}")
        if not kinds:
            problems.add(path, f"a step needs one action: {', '.join(_STEP_KINDS)}")
        elif len(kinds) > 1:
            problems.add(path, f"a step has one action; this one has {' and '.join(kinds)} (split it into steps)")
        else:
            if kinds[0] != "ask":
                for key in step:
                    if key in _ASK_FIELDS:
                        problems.add((*path, key), f"{key!r} belongs to an `ask` step, not `{kinds[0]}`")
            _schema_problems(_KIND_SCHEMAS[kinds[0]], {k: v for k, v in step.items() if k in _STEP_KEYS}, path, problems)
    if problems.found:
        raise FlowError([Problem(p.line, p.where, p.message, file) for p in problems.found])
    flow = _build(data, problems, known or Known())
    if problems.found:
        raise FlowError([Problem(p.line, p.where, p.message, file) for p in problems.found])
    assert flow is not None
    return flow


def _build(data: dict[str, Any], problems: _Problems, known: Known) -> model.Flow | None:
    name = data["flow"]
    raw_steps: list[dict[str, Any]] = data["steps"]
    ids: dict[str, int] = {}
    for i, raw in enumerate(raw_steps):
        step_id = raw.get("id", f"{i + 1}")
        if step_id in ids:
            problems.add(("steps", i, "id"), f"step id {step_id!r} is used twice (first at steps[{ids[step_id]}])")
        ids.setdefault(step_id, i)

    def target(path: tuple[Any, ...], step_id: str | None) -> int | None:
        if step_id is None:
            return None
        if step_id not in ids:
            problems.add(path, f"no step with id {step_id!r}{_did_you_mean(step_id, ids)}")
            return None
        return ids[step_id]

    def template(path: tuple[Any, ...], source: str, *, html: bool = False) -> Any:
        try:
            return compile_template(f"{name}:{_where(path)}", source, FLOW_SCOPE, html=html)
        except TemplateError as exc:
            problems.add(path, exc.detail)
            return None

    def value(path: tuple[Any, ...], source: Any) -> Any:
        """A data value: "{{ expr }}" alone keeps the expression's type; other text is a template."""
        if not isinstance(source, str):
            return source
        whole = _WHOLE_EXPRESSION.match(source)
        if whole is None:
            return template(path, source)
        try:
            return compile_condition(f"{name}:{_where(path)}", whole.group(1).strip())
        except TemplateError as exc:
            problems.add(path, exc.detail)
            return None

    def topic_ok(path: tuple[Any, ...], topic: str | None) -> None:
        if topic is not None and known.topics is not None and topic not in known.topics:
            problems.add(path, f"unknown topic {topic!r}{_did_you_mean(topic, known.topics)}")

    def message(path: tuple[Any, ...], raw: Any) -> model.Message:
        if isinstance(raw, str):
            return model.Message(template(path, raw))
        topic_ok((*path, "topic"), raw.get("topic"))
        channel = raw.get("channel", "sms")
        fallback = raw.get("fallback")
        email = {k: template((*path, k), raw[k], html=k == "html") for k in ("subject", "html") if k in raw}
        # A template with an email variant brings its own subject and HTML.
        variant = "template" in raw and (known.emails is None or raw["template"] in known.emails)
        if path[-1] != "send" and ("channel" in raw or "fallback" in raw or email):
            problems.add(path, "only `send` chooses a channel: questions and reminders go by text, where the answer comes")
        elif fallback is not None and channel != "sms":
            problems.add((*path, "fallback"), f"`fallback: email` is for a text; with `channel: {channel}` the email goes anyway")
        elif channel == "sms" and fallback is None and email:
            problems.add(path, f"`{next(iter(email))}` is for email: add `channel: email`, `channel: both` or `fallback: email`")
        elif (channel != "sms" or fallback is not None) and "subject" not in raw and not variant:
            why = f"`channel: {channel}`" if channel != "sms" else "`fallback: email`"
            hint = f" (template {raw['template']!r} has no email variant, {raw['template']}.email.toml)" if "template" in raw else ""
            problems.add((*path, "subject"), f"{why} needs a `subject`{hint}")
        extra = {"channel": channel, "subject": email.get("subject"), "html": email.get("html"), "fallback": fallback}
        if "template" in raw:
            wanted = raw["template"]
            if known.templates is not None and wanted not in known.templates:
                problems.add((*path, "template"), f"no template {wanted!r} in the project{_did_you_mean(wanted, known.templates)}")
            return model.Message(None, wanted, raw.get("topic"), **extra)
        return model.Message(template((*path, "text"), raw["text"]), None, raw.get("topic"), **extra)

    def duration(path: tuple[Any, ...], raw: str | None) -> Any:
        if raw is None:
            return None
        try:
            return model.parse_duration(raw)
        except ValueError as exc:
            problems.add(path, str(exc))
            return None

    topic = data.get("topic", "transactional")
    topic_ok(("topic",), topic)
    steps: list[model.Step] = []
    subflows: list[str] = []
    for i, raw in enumerate(raw_steps):
        path = ("steps", i)
        action: Any
        if "send" in raw:
            action = model.Send(message((*path, "send"), raw["send"]))
        elif "ask" in raw:
            expects = []
            for j, e in enumerate(raw["expect"]):
                ep = (*path, "expect", j)
                goto = target((*ep, "goto"), e.get("goto"))
                if "option" in e:
                    values = e["option"] if isinstance(e["option"], list) else [e["option"]]
                    expects.append(model.Expect("option", tuple(str(v).upper() for v in values), goto=goto))
                elif "intent" in e:
                    values = e["intent"] if isinstance(e["intent"], list) else [e["intent"]]
                    expects.append(model.Expect("intent", tuple(values), goto=goto))
                elif "keyword" in e:
                    values = e["keyword"] if isinstance(e["keyword"], list) else [e["keyword"]]
                    expects.append(model.Expect("keyword", tuple(str(v).casefold() for v in values), goto=goto))
                elif "number" in e:
                    low, high = e["number"].get("min"), e["number"].get("max")
                    if low is not None and high is not None and low > high:
                        problems.add((*ep, "number"), f"min {low} is above max {high}")
                    expects.append(model.Expect("number", low=low, high=high, goto=goto))
                elif "when" in e:
                    expects.append(model.Expect("when", goto=goto))
                else:
                    expects.append(model.Expect("any", goto=goto))
            reminders = None
            if "reminders" in raw:
                r = raw["reminders"]
                reminders = model.Reminders(
                    r.get("count", 1),
                    duration((*path, "reminders", "after"), r["after"]),
                    template((*path, "reminders", "text"), r["text"]) if "text" in r else None,
                )
            timeout = duration((*path, "timeout"), raw.get("timeout"))
            if reminders and reminders.after and timeout and reminders.after * reminders.count >= timeout:
                problems.add((*path, "reminders"), f"{reminders.count} reminder(s) every {raw['reminders']['after']} do not fit before the timeout {raw['timeout']}")
            if reminders and timeout is None:
                problems.add((*path, "reminders"), "reminders need a `timeout` (they are sent before it)")
            if "on_timeout" in raw and timeout is None:
                problems.add((*path, "on_timeout"), "`on_timeout` needs a `timeout`")
            retry = raw.get("retry", {})
            action = model.Ask(
                message((*path, "ask"), raw["ask"]),
                tuple(expects),
                save=raw.get("save"),
                timeout=timeout,
                on_timeout=target((*path, "on_timeout"), raw.get("on_timeout")),
                reminders=reminders,
                retries=retry.get("count", 1),
                retry_text=template((*path, "retry", "text"), retry["text"]) if "text" in retry else None,
                on_unclear=target((*path, "on_unclear"), raw.get("on_unclear")),
            )
        elif "branch" in raw:
            cases = []
            otherwise = None
            for j, case in enumerate(raw["branch"]):
                cp = (*path, "branch", j)
                if "else" in case:
                    if j != len(raw["branch"]) - 1:
                        problems.add(cp, "`else` must be the last case of a branch")
                    otherwise = target((*cp, "else"), case["else"])
                    continue
                try:
                    cond = compile_condition(f"{name}:{_where(cp)}", case["if"])
                except TemplateError as exc:
                    problems.add((*cp, "if"), exc.detail)
                    continue
                goto = target((*cp, "goto"), case["goto"])
                if goto is not None:
                    cases.append((cond, goto))
            action = model.Branch(tuple(cases), otherwise)
        elif "call" in raw:
            c = raw["call"]
            cp = (*path, "call")
            action = model.Call(
                url=template((*cp, "url"), c["url"]),
                method=c.get("method", "POST"),
                headers=tuple((k, template((*cp, "headers", k), v)) for k, v in c.get("headers", {}).items()),
                body=_json_templates(c.get("body"), (*cp, "body"), value),
                save=tuple(c.get("save", {}).items()),
                retries=c.get("retries", 2),
                timeout=duration((*cp, "timeout"), c.get("timeout", "10s")),
                on_failure=target((*cp, "on_failure"), c.get("on_failure")),
            )
        elif "wait" in raw:
            w = raw["wait"]
            wp = (*path, "wait")
            if "for" in w:
                d = duration((*wp, "for"), w["for"])
                if d is not None and d.total_seconds() <= 0:
                    problems.add((*wp, "for"), "a wait lasts longer than zero")
                action = model.Wait(duration=d)
            else:
                action = model.Wait(until=template((*wp, "until"), w["until"]), offset=duration((*wp, "offset"), w.get("offset", "0s")))
        elif "set" in raw:
            values = []
            for key, raw_value in raw["set"].items():
                scope, _, field_name = key.partition(".")
                values.append((scope, field_name, value((*path, "set", key), raw_value)))
            action = model.SetFields(tuple(values))
        elif "subscribe" in raw or "unsubscribe" in raw:
            key = "subscribe" if "subscribe" in raw else "unsubscribe"
            topic_ok((*path, key), raw[key])
            action = model.Subscription(raw[key], key == "subscribe")
        elif "handoff" in raw:
            h = raw["handoff"] or {}
            action = model.Handoff(template((*path, "handoff", "note"), h["note"]) if "note" in h else None, h.get("then", "end") == "resume")
        elif "flow" in raw:
            if raw["flow"] == name:
                problems.add((*path, "flow"), "a flow cannot run itself as a subflow")
            subflows.append(raw["flow"])
            action = model.Subflow(raw["flow"])
        else:
            action = model.End(raw["end"])
        nxt = target((*path, "next"), raw.get("next")) if "next" in raw else (i + 1 if i + 1 < len(raw_steps) else None)
        steps.append(model.Step(raw.get("id", f"{i + 1}"), action, nxt, problems.lines.get(path, 0)))

    trigger = data.get("trigger", {})
    events = trigger.get("event", [])
    keywords = trigger.get("keyword", [])
    keywords = [keywords] if isinstance(keywords, str) else keywords
    for j, word in enumerate(keywords):
        if match_keyword(word) is not None:
            problems.add(("trigger", "keyword", j) if isinstance(trigger.get("keyword"), list) else ("trigger", "keyword"),
                         f"{word!r} is a compliance keyword (STOP, START, HELP …); it cannot start a flow")
    once_per = template(("once_per",), data["once_per"]) if "once_per" in data else None
    _unreachable(steps, problems)
    if problems.found:
        return None
    return model.Flow(
        name=name,
        steps=tuple(steps),
        topic=topic,
        description=data.get("description", ""),
        events=tuple([events] if isinstance(events, str) else events),
        keywords=tuple(w.upper() for w in keywords),
        priority=data.get("priority", 0),
        when_busy=data.get("when_busy", "queue"),
        subflows=tuple(dict.fromkeys(subflows)),
        once_per=once_per,
    )


def _json_templates(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if isinstance(data, str):
        return value(path, data)
    if isinstance(data, dict):
        return {k: _json_templates(v, (*path, k), value) for k, v in data.items()}
    if isinstance(data, list):
        return [_json_templates(v, (*path, i), value) for i, v in enumerate(data)]
    return data


def successors(step: model.Step) -> list[int]:
    a = step.action
    out: list[int | None] = []
    if isinstance(a, model.End):
        return []
    if isinstance(a, model.Branch):
        out = [g for _, g in a.cases] + [a.otherwise if a.otherwise is not None else step.next]
    elif isinstance(a, model.Ask):
        out = [e.goto if e.goto is not None else step.next for e in a.expect] + [a.on_timeout, a.on_unclear]
    elif isinstance(a, model.Call):
        out = [step.next, a.on_failure]
    elif isinstance(a, model.Handoff):
        out = [step.next] if a.resume else []
    else:
        out = [step.next]
    return [i for i in out if i is not None]


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
