"""Compliance keywords: recognising STOP / START / HELP replies the carriers require us to honour.

CTIA and carrier rules oblige a sender to act on these words whatever else is configured, so
the match is deliberately narrow and deterministic: the whole message, once surrounding
punctuation, symbols, emoji and whitespace are trimmed, must be exactly one keyword. Anything
looser ("don't stop", "help me with my order") is left to natural-language understanding.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Iterable

import regex

__all__ = [
    "HELP_WORDS", "OPT_IN_WORDS", "OPT_OUT_WORDS", "TOPIC_OPT_IN_WORDS", "Keyword", "match_keyword",
    "match_topic_opt_in", "match_topic_opt_out",
]


class Keyword(enum.StrEnum):
    """What a compliance keyword asks for; the values are stable for storage and logs."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
# "YES" is deliberately absent: it answers too many ordinary questions to mean consent.
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})

_KEYWORD_BY_WORD: dict[str, Keyword] = {
    **{word.casefold(): Keyword.OPT_OUT for word in OPT_OUT_WORDS},
    **{word.casefold(): Keyword.OPT_IN for word in OPT_IN_WORDS},
    **{word.casefold(): Keyword.HELP for word in HELP_WORDS},
}
_LONGEST_WORD = max(map(len, _KEYWORD_BY_WORD))

# What may surround a keyword: punctuation, symbols (emoji are mostly So), separators,
# control and format characters (ZWJ, tags), plus the emoji pieces that are not symbols:
# pictographs without a category, skin-tone modifiers, variation selectors, the keycap mark.
_EDGE = (
    r"\p{P}\p{S}\p{Z}\p{Cc}\p{Cf}\p{Extended_Pictographic}\p{Emoji_Modifier}"
    r"\uFE00-\uFE0F\u20E3"
)
# Possessive edges and a core that begins and ends on a non-edge character keep this linear
# in the message length: no backtracking between the edges and the core.
_TRIMMED = regex.compile(
    rf"[{_EDGE}]*+(?P<core>[^{_EDGE}](?:.*[^{_EDGE}])?)[{_EDGE}]*+", regex.DOTALL
)
# Spelled-apart forms people send: "OPT OUT", "opt-out", "Stop all".
_SPLIT_WORD = regex.compile(r"(opt|stop)[\p{Zs}\p{Pd}\p{Pc}]+(out|all)")
_SPLIT_WORDS = frozenset({("opt", "out"), ("stop", "all")})
# Generous bound on the core before normalisation (full-width letters, a few spaces in
# "opt out"); anything longer is ordinary text and skips the Unicode work entirely.
_MAX_CORE = 2 * _LONGEST_WORD


def match_keyword(text: str) -> Keyword | None:
    """Return the compliance keyword ``text`` consists of, or ``None`` if it is anything else.

    Matching ignores case and surrounding whitespace, punctuation, symbols and emoji, and
    reads compatibility forms (full-width ``ＳＴＯＰ``) as their plain letters.
    """
    trimmed = _TRIMMED.fullmatch(text)
    if trimmed is None:
        return None
    core = trimmed["core"]
    if len(core) > _MAX_CORE:
        return None
    # Trim before NFKC so symbols that decompose to letters (™ → TM) stay punctuation.
    word = unicodedata.normalize("NFKC", core).casefold()
    keyword = _KEYWORD_BY_WORD.get(word)
    if keyword is not None:
        return keyword
    split = _SPLIT_WORD.fullmatch(word)
    if split is not None and (split[1], split[2]) in _SPLIT_WORDS:
        return _KEYWORD_BY_WORD[split[1] + split[2]]
    return None


_TWO_WORDS = regex.compile(r"(\w+)[\p{Zs}\p{Pd}]+(\w+)")


# Words that ask to join one topic: "START DEALS", "join news", "Subscribe deals".
TOPIC_OPT_IN_WORDS = frozenset({"START", "UNSTOP", "JOIN", "SUBSCRIBE"})


def match_topic_opt_out(text: str, topics: Iterable[str]) -> str | None:
    """The topic a "STOP <topic>" reply ("stop deals", "UNSUBSCRIBE news!") names, if any.

    Only an opt-out word followed by exactly one of the given topic names (any case) counts;
    the caller passes the topics a person may leave (not the essential ones).
    """
    words = _word_and_topic(text)
    if words is None or _KEYWORD_BY_WORD.get(words[0]) is not Keyword.OPT_OUT:
        return None
    return _topic_named(words[1], topics)


def match_topic_opt_in(text: str, topics: Iterable[str]) -> str | None:
    """The topic a "START <topic>" / "JOIN <topic>" text asks to subscribe to, if any."""
    words = _word_and_topic(text)
    if words is None or words[0].upper() not in TOPIC_OPT_IN_WORDS:
        return None
    return _topic_named(words[1], topics)


def _word_and_topic(text: str) -> tuple[str, str] | None:
    trimmed = _TRIMMED.fullmatch(text)
    if trimmed is None or len(trimmed["core"]) > _MAX_CORE + 70:
        return None
    words = _TWO_WORDS.fullmatch(unicodedata.normalize("NFKC", trimmed["core"]).casefold())
    return (words[1], words[2]) if words is not None else None


def _topic_named(word: str, topics: Iterable[str]) -> str | None:
    return {t.casefold(): t for t in topics}.get(word)
