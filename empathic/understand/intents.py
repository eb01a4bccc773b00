"""What a reply means to the conversation: the closed set of intents and the rules that pick one.

Opt-out meaning wins over everything else and is read generously (any language, any
phrasing in the lexicon, a bare "stop" beside fillers), except where it is negated ("don't
stop", "no dejen de escribir") or "stop" is a verb of its own ("stop by the store").
After that, in order: asking for another time, cancelling, proposing a time, asking for
help, asking a question, turning down, agreeing, thanking; anything else is `other`.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

import regex

from empathic.understand.lexicon import (
    BARE_STOP_WORDS,
    FILLER_WORDS,
    LANGUAGES,
    LEXICON,
    STOPWORDS,
    compiled,
)
from empathic.understand.text import Reply
from empathic.understand.when import VOCABULARY

__all__ = ["Intent", "Reading", "classify", "detect_language", "read_lexicon"]


class Intent(enum.StrEnum):
    """What a reply asks for; the values are stable for storage, webhooks and the API."""

    CONFIRM = "confirm"
    DECLINE = "decline"
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"
    OPT_OUT = "opt_out"
    HELP = "help"
    QUESTION = "question"
    THANKS = "thanks"
    OTHER = "other"


_PATTERNS = [
    (intent, language, pattern)
    for intent, by_language in LEXICON.items()
    for language, fragments in by_language.items()
    if (pattern := compiled(fragments)) is not None
]

_EMOJI = {
    "confirm": frozenset("\U0001f44d\U0001f44c\u2705\u2714\u2611\U0001f197\U0001f64c\U0001f4af\U0001f91d\U0001f919"),
    "decline": frozenset("\U0001f44e\u274c\U0001f645\u2716\u274e"),
    "opt_out": frozenset("\U0001f6d1\u26d4\U0001f6ab\U0001f910"),
    "thanks": frozenset("\U0001f64f"),
    "question": frozenset("\u2753\u2754"),
}
# Characters only some of the languages write.
_LETTER_HINTS = {
    "es": frozenset("ñ¿¡"), "pt": frozenset("ãõç"), "de": frozenset("ßäöü"),
    "fr": frozenset("çâêîôûëïœàùè"), "it": frozenset("ìòèà"),
}
_NEGATORS = frozenset({"not", "never", "dont", "didnt", "wont", "cant", "shouldnt"})
_NEGATOR_PAIRS = frozenset({("don", "t"), ("do", "not"), ("won", "t"), ("didn", "t"), ("please", "dont"), ("pls", "dont")})
_ROMANCE_NOT = frozenset({"no", "nao", "non", "n", "nicht", "ne"})
_STOP_VERBS = regex.compile(r"(?:deja|dej|para|pare|parar|smett|arret|cess|basta|chega|deix|hor|stop|quit|unsub)")
# "stop" leading a clause means "stop texting" unless it starts another verb phrase.
_LEADING_STOP = regex.compile(
    r"(?:^|(?<=, |\? ))(?:stop|stopp|arretez|arrete|basta)(?! (?:by|in|at|over|on|and|off|for|to|the|here|there|worrying"
    r"|it s|being|doing|se|du|pour|al|a|en|la|le|di|da|na|no|wenn|in|bei|zu|e|y|o|ou|che|que|con que|com que|cosi che|vous|toi)\b)(?= |$)"
)


@dataclass(frozen=True, slots=True)
class Reading:
    """The lexicon's matches in a reply: intent → languages that voted, and opt-out evidence."""

    intents: dict[str, list[str]]
    opt_out: bool


def read_lexicon(reply: Reply) -> Reading:
    """Every intent the lexicon finds in `reply`, with the language each match belongs to."""
    words = reply.words
    found: dict[str, list[str]] = {}
    opt_out = False
    for intent, language, pattern in _PATTERNS:
        for m in pattern.finditer(words):
            if intent == "opt_out" and _negated(words, m.start(), m.group()):
                continue
            found.setdefault(intent, []).append(language)
            opt_out = opt_out or intent == "opt_out"
            break
    for intent, marks in _EMOJI.items():
        if any(c in marks for c in reply.text):
            found.setdefault(intent, []).append("*")
    if not opt_out:
        opt_out = _bare_stop(words) or ("opt_out" in found and not regex.search(r"\w", words))
    if not opt_out and "opt_out" in found:
        del found["opt_out"]
    return Reading(found, opt_out)


def _negated(words: str, start: int, matched: str) -> bool:
    before = words[:start].split()[-2:]
    if before[-1:] and before[-1] in _NEGATORS or tuple(before) in _NEGATOR_PAIRS:
        return True
    return bool(before[-1:]) and before[-1] in _ROMANCE_NOT and _STOP_VERBS.match(matched) is not None


def _bare_stop(words: str) -> bool:
    for clause in regex.split(r" ?[,?] ?", words):
        tokens = clause.split()
        if tokens and any(t in BARE_STOP_WORDS for t in tokens) and all(
            t in BARE_STOP_WORDS or t in FILLER_WORDS for t in tokens
        ):
            return True
    leading = _LEADING_STOP.search(words)
    return leading is not None and not _negated(words, leading.start(), leading.group())


def detect_language(reply: Reply, reading: Reading) -> str:
    """The reply's language from lexicon matches, function words and letters; "en" if unknown."""
    votes: defaultdict[str, float] = defaultdict(float)
    for languages in reading.intents.values():
        for language in set(languages) - {"*"}:
            votes[language] += 2
    for token in reply.words.split():
        for language in LANGUAGES:
            if token in STOPWORDS[language]:
                votes[language] += 1
    lowered = reply.text.casefold()
    for language, letters in _LETTER_HINTS.items():
        if any(c in letters for c in lowered):
            votes[language] += 1.5
    if not votes:
        return "en"
    best = max(votes.values())
    return next(language for language in LANGUAGES if votes[language] == best)


def classify(
    reply: Reply, reading: Reading, when: datetime | date | None, *, later_when: bool, option: str | None
) -> tuple[Intent, float]:
    """The intent and a confidence in [0, 1].

    `later_when` says a time is proposed in a clause after a refusal ("not today, friday?").
    """
    hits = reading.intents
    rivals = len(hits) - 1
    sure = max(0.6, 0.92 - 0.08 * max(rivals, 0))
    if reading.opt_out:
        return Intent.OPT_OUT, 0.95
    if "reschedule" in hits:
        return Intent.RESCHEDULE, sure
    if "cancel" in hits:
        return Intent.CANCEL, sure
    if "proposal" in hits and when is not None:
        return Intent.RESCHEDULE, sure - 0.05
    if "help" in hits:
        return Intent.HELP, sure
    if "question" in hits:
        return Intent.QUESTION, sure - 0.05
    if when is not None and ("decline" in hits and later_when or reply.asks and "confirm" not in hits):
        return Intent.RESCHEDULE, 0.75
    if "decline" in hits:
        return Intent.DECLINE, sure
    if "confirm" in hits:
        return Intent.CONFIRM, sure
    if "thanks" in hits:
        return Intent.THANKS, sure
    if reply.asks:
        return Intent.QUESTION, 0.6
    if when is not None and _mostly_time(reply.words):
        return Intent.RESCHEDULE, 0.6
    if option is not None:
        return Intent.OTHER, 0.85
    if not reply.words:
        return Intent.OTHER, 0.3
    return Intent.OTHER, 0.6 if reply.laughs else 0.5


def _mostly_time(words: str) -> bool:
    """Few words besides the time expression: "thurs 4", "friday at 3 then"."""
    content = [t for t in words.split() if t not in FILLER_WORDS and t not in VOCABULARY and not t[0].isdigit()
               and t not in ("at", "on", "um", "am", "a", "las", "alle", "as", "le", "el", "il", "de")]
    return len(content) <= 2
