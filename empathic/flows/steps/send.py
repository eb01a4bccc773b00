"""`send`: a text (or an email) and on to the next step.

    - send: "Hi {{ contact.attributes.first_name }}!"
    - send: {template: order_dispatched, channel: both}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from empathic.core.json import Json
from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.steps.base import MESSAGE, Builder, Running, StepKind, Where

SCHEMA: Json = MESSAGE  # the text


@dataclass(frozen=True)
class Send(model.Action):
    message: model.Message

    @property
    def messages(self) -> tuple[model.Message, ...]:
        return (self.message,)


def parse(b: Builder, raw: Mapping[str, JsonValue], where: Where) -> Send:
    return Send(b.message((*where, "send"), raw["send"]))


def execute(run: Running, step: model.Step) -> None:
    send = step.action
    assert isinstance(send, Send)
    run.send(run.text(send.message), run.topic(send.message), send.message)
    run.goto(step.next)


KIND = StepKind(("send",), SCHEMA, Send, parse, execute)
