"""`understand`: one inbound reply in, what it means out (intent, proposed time, option, language)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import regex

from empathic.understand.intents import Intent, classify, detect_language, read_lexicon
from empathic.understand.keywords import Keyword, match_keyword
from empathic.understand.lexicon import stems, vocabulary
from empathic.understand.options import pick_option
from empathic.understand.text import read
from empathic.understand.when import VOCABULARY, find_when, month_first

__all__ = ["Understanding", "understand"]

_VOCABULARY = vocabulary() | VOCABULARY
_STEMS = stems()
# Languages where "thurs 4" is a day and an hour; in the others "jeudi 4" is a day of the month.
_HOUR_AFTER_DAY = frozenset({"en", "de"})
_KEYWORD_INTENT = {Keyword.OPT_OUT: Intent.OPT_OUT, Keyword.HELP: Intent.HELP}


@dataclass(frozen=True, slots=True)
class Understanding:
    """What a reply means.

    `when` is the day (`date`) or instant (aware `datetime` in the person's time zone) the reply
    names, `option` the offered option it picks, `language` an ISO 639-1 code, `confidence` 0..1.
    """

    intent: Intent
    when: datetime | date | None
    option: str | None
    language: str
    confidence: float


def understand(
    text: str, *, now: datetime, timezone: str | ZoneInfo, options: Sequence[str] | None = None
) -> Understanding:
    """Read one reply. `now` (aware) anchors relative times; nothing here reads the clock.

    >>> u = understand("can we do thurs 4 instead", now=datetime.fromisoformat("2026-11-23T10:00-05:00"),
    ...                timezone="America/New_York")
    >>> u.intent, u.when.isoformat()
    (<Intent.RESCHEDULE: 'reschedule'>, '2026-11-26T16:00:00-05:00')
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    zone = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
    reply = read(text, _VOCABULARY, _STEMS)
    reading = read_lexicon(reply)
    language = detect_language(reply, reading)
    hour_after_day = language in _HOUR_AFTER_DAY
    first = month_first(language, zone.key or "")
    when = find_when(reply.words, now, zone, month_first=first, hour_after_day=hour_after_day)
    option = pick_option(reply, options) if options else None
    keyword = match_keyword(text)
    if keyword in _KEYWORD_INTENT:
        return Understanding(_KEYWORD_INTENT[keyword], when, option, language, 0.99)
    later_when = False
    if when is not None and "decline" in reading.intents:
        # A time in a clause after the refusal is a counter-proposal: "can't today, friday?"
        clauses = regex.split(r" [,?] ", reply.words, maxsplit=1)
        later_when = len(clauses) == 2 and find_when(
            clauses[1], now, zone, month_first=first, hour_after_day=hour_after_day
        ) is not None
    intent, confidence = classify(reply, reading, when, later_when=later_when, option=option)
    return Understanding(intent, when, option, language, round(min(1.0, max(0.0, confidence)), 2))
