"""`ask`: a question, then wait for the answer (with reminders, retries and a time-out).

    - ask: "Still on for {{ event.data.day }}? Reply YES or NO"
      save: answer
      expect:
        - intent: confirm
          goto: confirmed
      timeout: 1d
      reminders: {after: 4h, count: 2}

Its answer comes back through the interpreter (`Reply`, `Timer`), which matches `expect`.
While another run holds the contact's conversation, the question parks (waiting `turn`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.steps.base import Builder, Running, StepKind, Where

TURN_LIMIT = timedelta(hours=24)  # a question parked this long behind another conversation is dropped


def parse(b: Builder, raw: Mapping[str, JsonValue], where: Where) -> model.Ask:
    expects = [_expect(b, e, (*where, "expect", j)) for j, e in enumerate(raw["expect"])]
    reminders = None
    if "reminders" in raw:
        r = raw["reminders"]
        reminders = model.Reminders(
            r.get("count", 1),
            b.duration((*where, "reminders", "after"), r["after"]) or timedelta(0),
            b.template((*where, "reminders", "text"), r["text"]) if "text" in r else None,
        )
    timeout = b.duration((*where, "timeout"), raw.get("timeout"))
    if reminders and reminders.after and timeout and reminders.after * reminders.count >= timeout:
        b.problem((*where, "reminders"), f"{reminders.count} reminder(s) every {raw['reminders']['after']} do not fit "
                                         f"before the timeout {raw['timeout']}")
    if reminders and timeout is None:
        b.problem((*where, "reminders"), "reminders need a `timeout` (they are sent before it)")
    if "on_timeout" in raw and timeout is None:
        b.problem((*where, "on_timeout"), "`on_timeout` needs a `timeout`")
    retry = raw.get("retry", {})
    return model.Ask(
        b.message((*where, "ask"), raw["ask"]),
        tuple(expects),
        save=raw.get("save"),
        timeout=timeout,
        on_timeout=b.target((*where, "on_timeout"), raw.get("on_timeout")),
        reminders=reminders,
        retries=retry.get("count", 1),
        retry_text=b.template((*where, "retry", "text"), retry["text"]) if "text" in retry else None,
        on_unclear=b.target((*where, "on_unclear"), raw.get("on_unclear")),
    )


def _expect(b: Builder, e: Mapping[str, JsonValue], where: Where) -> model.Expect:
    goto = b.target((*where, "goto"), e.get("goto"))
    if "option" in e:
        return model.Expect("option", tuple(str(v).upper() for v in _listed(e["option"])), goto=goto)
    if "intent" in e:
        return model.Expect("intent", tuple(_listed(e["intent"])), goto=goto)
    if "keyword" in e:
        return model.Expect("keyword", tuple(str(v).casefold() for v in _listed(e["keyword"])), goto=goto)
    if "number" in e:
        low, high = e["number"].get("min"), e["number"].get("max")
        if low is not None and high is not None and low > high:
            b.problem((*where, "number"), f"min {low} is above max {high}")
        return model.Expect("number", low=low, high=high, goto=goto)
    if "when" in e:
        return model.Expect("when", goto=goto)
    return model.Expect("any", goto=goto)


def _listed(value: JsonValue) -> list[JsonValue]:
    return value if isinstance(value, list) else [value]


def execute(run: Running, step: model.Step) -> None:
    ask = step.action
    assert isinstance(ask, model.Ask)
    if not run.conversation_free:
        run.wait("turn")
        run.schedule(run.now + TURN_LIMIT, "timeout")
        return
    run.send(run.text(ask.message), run.topic(ask.message))
    run.wait("reply")
    if ask.reminders:
        for k in range(1, ask.reminders.count + 1):
            run.schedule(run.now + ask.reminders.after * k, "remind")
    if ask.timeout:
        run.schedule(run.now + ask.timeout, "timeout")


def successors(step: model.Step) -> Sequence[int | None]:
    ask = step.action
    assert isinstance(ask, model.Ask)
    return [e.goto if e.goto is not None else step.next for e in ask.expect] + [ask.on_timeout, ask.on_unclear]


KIND = StepKind(("ask",), model.Ask, parse, execute, successors)
