"""A reply as the rules read it: folded (NFKC, casefolded, accents dropped) and split into words.

Every rule in this package (intent phrases, time expressions, option picks) matches against
`Reply.words`, a string of tokens joined by single spaces, so a pattern needs no case,
accent or spacing variants: "¡¡Arrêtez   de m'ENVOYER!!" reads as "arretez de m envoyer ,".
Clause breaks (, . ; ! and line breaks) read as ",", a question mark as "?", so a phrase
never matches across two clauses. Elongations ("yesss", "graziee") and one-letter typos of
lexicon words ("cancle", "unsubscibe") are read as the word meant.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import regex

__all__ = ["Reply", "fold", "read"]

# Elisions and contractions split on the apostrophe: "m'envoyer" → "m envoyer", "can't" → "can t".
_APOSTROPHES = str.maketrans({"'": " ", "\u2019": " ", "\u2018": " ", "`": " ", "\u00b4": " "})
# "4 p.m." must not read as a clause break after "p".
_MERIDIEM = regex.compile(r"(?<![a-z])([ap])\.\s?m\.?(?![a-z])")
_TOKEN = regex.compile(
    # A clock time keeps no sentence-final dot ("at 13:15." is 13:15 then a break); "14." (German
    # for the 14th) and "2.12." do.
    r"(?P<num>\d+:\d+(?:am|pm|h)?(?![\p{L}\d:])|\d+(?:[:/.h]\d+)*\.?(?:am|pm|h|st|nd|rd|th|er|eme)?(?![\p{L}\d]))"
    r"|(?P<word>[\p{L}\p{M}\d]+)"
    r"|(?P<ask>[?\u00bf\uff1f])"
    r"|(?P<brk>[,.;!\n\u00a1\u3002\uff01]+)"
    r"|(?P<at>@)"
)


_MARKS = frozenset({"Mn", "Me", "Cf"})


def fold(text: str) -> str:
    """Compatibility forms, case and accents folded away: "ÉTÉ" → "ete", "ß" → "ss"."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    # Marks go: accents, and the variation selectors and joiners emoji carry.
    return "".join(c for c in folded if unicodedata.category(c) not in _MARKS)


@dataclass(frozen=True, slots=True)
class Reply:
    """The text, folded, as space-joined tokens; `asks` says whether it has a question mark."""

    text: str
    words: str
    asks: bool
    laughs: bool

    @property
    def tokens(self) -> list[str]:
        return self.words.split()


def read(text: str, vocabulary: frozenset[str], stems: frozenset[str] = frozenset()) -> Reply:
    """Fold and tokenize `text`, reading misspelt words as the `vocabulary` word they mean.

    A token that begins with one of `stems` is a known word with an ending, never a typo.
    """
    folded = _MERIDIEM.sub(r" \1m ", fold(text).translate(_APOSTROPHES))
    tokens: list[str] = []
    asks = laughs = False
    for m in _TOKEN.finditer(folded):
        kind = m.lastgroup
        token = m.group()
        if kind == "word":
            laugh = _laugh(token)
            if laugh is not None:
                laughs = True
                tokens.append(laugh)
                continue
            tokens.append(_spelt(token, vocabulary, stems))
        elif kind == "num":
            tokens.append(token)
        elif kind == "ask":
            asks = True
            tokens.append("?")
        elif kind == "at":
            tokens.append("at")
        elif tokens and tokens[-1] not in (",", "?"):
            tokens.append(",")
    return Reply(text=text, words=" ".join(tokens), asks=asks, laughs=laughs)


_LAUGHS = (
    # Each family reads as one token, which says something of the language: jaja (es), kkk (pt)...
    (regex.compile(r"(?:ja|aj|je)+[jh]?"), "jaja"),
    (regex.compile(r"k{3,}|(?:rs){2,}"), "kkk"),
    (regex.compile(r"mdr+|ptdr+"), "mdr"),
    (regex.compile(r"a?(?:ah){2,}a?h?"), "ahah"),
    (regex.compile(r"h?(?:ha|he|hi)+h?|lo+l|lmf?ao+|rofl|xd+"), "haha"),
)


def _laugh(token: str) -> str | None:
    if len(token) < 3:
        return None
    for pattern, family in _LAUGHS:
        if pattern.fullmatch(token):
            return family
    return None


_SQUEEZE_3 = regex.compile(r"(.)\1{2,}")
_SQUEEZE_2 = regex.compile(r"(.)\1+")
# Real words one letter away from a lexicon word; never "corrected".
_KEEP = frozenset({"cancer", "stops", "stopped", "helped", "helps", "pause", "texas", "stocks", "store", "stores"})


def _spelt(token: str, vocabulary: frozenset[str], stems: frozenset[str]) -> str:
    if token in vocabulary or len(token) < 3 or token.isdigit():
        return token
    for squeezed in (_SQUEEZE_3.sub(r"\1", token), _SQUEEZE_2.sub(r"\1", token)):
        if squeezed in vocabulary:
            return squeezed
    if len(token) >= 6 and token not in _KEEP and not any(token[:k] in stems for k in range(4, len(token))):
        return _near(token, vocabulary) or token
    return token


def _deletes(word: str) -> Iterable[str]:
    yield word
    for i in range(len(word)):
        yield word[:i] + word[i + 1:]


@lru_cache(maxsize=8)
def _delete_index(vocabulary: frozenset[str]) -> dict[str, str]:
    index: dict[str, str] = {}
    for word in sorted(vocabulary):
        if len(word) >= 5:
            for variant in _deletes(word):
                index.setdefault(variant, word)
    return index


def _near(token: str, vocabulary: frozenset[str]) -> str | None:
    """The lexicon word one letter dropped, doubled or swapped away ("cancle", "tommorow").

    Substitutions are not read as typos: across six languages they are mostly other words
    ("quanto" / "quatro", "option" / "opcion").
    """
    index = _delete_index(vocabulary)
    for variant in _deletes(token):
        word = index.get(variant)
        if word is not None and len(word) >= 6 and word[0] == token[0] and _slip(token, word):
            return word
    return None


def _slip(a: str, b: str) -> bool:
    """Whether `a` is `b` with one letter added, dropped, or two neighbours swapped."""
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long = (a, b) if len(a) < len(b) else (b, a)
    if len(long) - len(short) != 1:
        return False
    i = next((i for i in range(len(short)) if short[i] != long[i]), len(short))
    return short[i:] == long[i + 1:]
