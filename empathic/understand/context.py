"""The message a reply answers: what kind of message it was and the day it proposed.

"Thanks, that's all" after "Would you like to book it?" turns the offer down; after "Your
table is booked" it only thanks. "Make it 4:30" after "your appointment is on March 10th"
means March 10th. So the prompt is read for a few kinds of message (offer, request to
confirm, news that something is done, question) and for the day it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo

import regex

from empathic.understand.text import read
from empathic.understand.when import find_day

__all__ = ["Prompt", "read_prompt"]

_KINDS = {
    # Offers something the reply may take or turn down.
    "offer": regex.compile(
        r"(?<![^ ])(?:would you like|do you want|want me to|shall i|should i|would you care|can i (?:book|reserve|get)"
        r"|how about|what about|are you interested|interested in|do you wish|would you prefer|would you be"
        r"|quieres|quiere|desea|deseas|te gustaria|le gustaria|voulez vous|veux tu|souhaitez|aimeriez|voudriez"
        r"|mochten sie|moechten sie|mochtest du|willst du|wollen sie|soll ich|sollen wir|quer que|quer |deseja"
        r"|gostaria|voce quer|vuoi|vuole|desidera|vorresti|vorrebbe|ti interessa|le interessa)(?![^ ])"
    ),
    # Asks to confirm details.
    "check": regex.compile(
        r"(?<![^ ])(?:confirm\w*|is (?:that|this|it) (?:right|correct|ok|okay)|correct|right \?|sound good|sounds good"
        r"|confirm\w*|correcto|es correcto|esta bien|c est bien|est ce correct|bestatig\w*|stimmt das|passt das"
        r"|correto|esta certo|corretto|va bene \?|conferm\w*)(?![^ ])"
    ),
    # Says something is done: booked, sent, placed.
    "done": regex.compile(
        r"(?<![^ ])(?:booked|reserved|confirmed|successfully|success|has been|have been|is set|all set|is placed"
        r"|is scheduled|added|on your calendar|on its way|enjoy|reservad\w*|confirmad\w*|agendad\w*|marcad\w*"
        r"|reserve|reservee|confirme|confirmee|gebucht|bestatigt|reserviert|eingetragen|prenotat\w*|confermat\w*"
        r"|listo|pronto|fatto|erledigt|c est fait)(?![^ ])"
    ),
}


@dataclass(frozen=True, slots=True)
class Prompt:
    """What the reply answers: its kinds (`offer`, `check`, `done`, `asks`, `when`) and its day."""

    kinds: frozenset[str]
    day: date | None


NO_PROMPT = Prompt(frozenset({"none"}), None)


def read_prompt(text: str | None, now: datetime, zone: tzinfo, *, month_first: bool = False) -> Prompt:
    """The kinds of message `text` is and the day it names (the last one it names, if several)."""
    if not text or not text.strip():
        return NO_PROMPT
    words = read(text, frozenset()).words
    kinds = {kind for kind, pattern in _KINDS.items() if pattern.search(words)}
    if "?" in words:
        kinds.add("asks")
    day = find_day(words, now.astimezone(zone).date(), month_first=month_first)
    if day is not None:
        kinds.add("when")
    return Prompt(frozenset(kinds), day)
