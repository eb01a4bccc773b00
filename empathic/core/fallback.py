"""Which channels a message goes on for one person: text, email, both, or a text with email
as its fallback. Pure.

The person's channel preference for the topic (`core.preferences.ChannelChoice`) decides
first: `both` sends the text and the email; `email` sends the email instead of the text.
Without one (or with `sms`), the text goes, and email steps in where the topic or the flow
allows it: instead of the text when the person has no phone number, and after the text
when it fails for good (`failed`, or `undelivered` by the carrier's receipt).

An email is possible only when the person has a usable address and an email can be
written and routed (an `smtp` channel serves the topic, the template has an email variant
or the flow step a subject). When it is not, the text goes as it always did, and the
policy gate applies the person's preference to it (`channel_preference`).
"""

from __future__ import annotations

from dataclasses import dataclass

from empathic.core.messages import Status
from empathic.core.preferences import ChannelChoice

# A text in one of these will never reach the person: the moment its fallback is due.
PERMANENT_FAILURES = frozenset({Status.FAILED, Status.UNDELIVERED})


@dataclass(frozen=True, slots=True)
class Plan:
    sms: bool = False
    email: bool = False
    fallback: bool = False  # the text, should it fail for good, goes again by email

    @property
    def nothing(self) -> bool:
        return not (self.sms or self.email)


NOTHING = Plan()


def plan(*, preference: ChannelChoice | None, phone: bool, email: bool, fallback: bool) -> Plan:
    """The channels for one message to one person.

    `phone`: they have a number; `email`: they have an address and an email can be sent;
    `fallback`: the topic (or the flow step) allows email in place of the text.
    """
    if preference is ChannelChoice.BOTH and (phone or email):
        return Plan(sms=phone, email=email)
    if preference is ChannelChoice.EMAIL and email:
        return Plan(email=True)
    if phone:
        return Plan(sms=True, fallback=fallback and email)
    if fallback and email:
        return Plan(email=True)
    return NOTHING
