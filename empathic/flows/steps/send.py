"""`send`: a text (or an email) and on to the next step.

    - send: "Hi {{ contact.attributes.first_name }}!"
    - send: {template: order_dispatched, channel: both}
"""

from __future__ import annotations

from collections.abc import Mapping

from empathic.flows import model
from empathic.flows.model import JsonValue
from empathic.flows.steps.base import Builder, Running, StepKind, Where


def parse(b: Builder, raw: Mapping[str, JsonValue], where: Where) -> model.Send:
    return model.Send(b.message((*where, "send"), raw["send"]))


def execute(run: Running, step: model.Step) -> None:
    send = step.action
    assert isinstance(send, model.Send)
    run.send(run.text(send.message), run.topic(send.message), send.message)
    run.goto(step.next)


KIND = StepKind(("send",), model.Send, parse, execute)
