"""`subscribe` / `unsubscribe`: the contact's consent to a topic.

    - subscribe: offers

Only an answer to the run's question counts as the person's yes: a run started by a keyword
("WATCH") subscribing to a marketing topic asks for it first (double opt-in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from empathic.core.json import Json
from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.steps.base import Builder, Running, StepKind, Where

SCHEMA: Json = {"type": "string", "minLength": 1}  # the topic


@dataclass(frozen=True)
class Subscription(model.Action):
    topic: str
    subscribe: bool


def parse(b: Builder, raw: Mapping[str, JsonValue], where: Where) -> Subscription:
    key = "subscribe" if "subscribe" in raw else "unsubscribe"
    b.topic_ok((*where, key), raw[key])
    return Subscription(raw[key], key == "subscribe")


def execute(run: Running, step: model.Step) -> None:
    action = step.action
    assert isinstance(action, Subscription)
    reply = run.state.reply
    answered = reply.message_id if reply is not None and reply.understood is not None else None
    run.change_consent(action.topic, action.subscribe, answered)
    run.goto(step.next)


KIND = StepKind(("subscribe", "unsubscribe"), SCHEMA, Subscription, parse, execute)
