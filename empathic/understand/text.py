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
    r"(?P<num>\d+(?:[:/.h]\d+)*\.?(?:am|pm|h|st|nd|rd|th|er|eme)?(?![\p{L}\d]))"
    r"|(?P<word>[\p{L}\p{M}\d]+)"
    r"|(?P<ask>[?\u00bf\uff1f])"
    r"|(?P<brk>[,.;!\n\u00a1\u3002\uff01]+)"
    r"|(?P<at>@)"
)


def fold(text: str) -> str:
    """Compatibility forms, case and accents folded away: "ÉTÉ" → "ete", "ß" → "ss"."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(c for c in folded if not unicodedata.combining(c))


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


def read(text: str, vocabulary: frozenset[str]) -> Reply:
    """Fold and tokenize `text`, reading misspelt words as the `vocabulary` word they mean."""
    folded = _MERIDIEM.sub(r" \1m ", fold(text).translate(_APOSTROPHES))
    tokens: list[str] = []
    asks = laughs = False
    for m in _TOKEN.finditer(folded):
        kind = m.lastgroup
        token = m.group()
        if kind == "word":
            if _is_laugh(token):
                laughs = True
                continue
            tokens.append(_spelt(token, vocabulary))
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


def _is_laugh(token: str) -> bool:
    return len(token) >= 3 and (
        token in ("lol", "lool", "mdr", "xd", "kkk", "rsrs", "lmao", "lmfao", "rofl")
        or regex.fullmatch(r"(?:ha|ah|ja|aj|je|he|hi|ih|rs|ks)+h?|k{3,}|lo{2,}l|ahah\w*|hah\w*", token) is not None
    )


_SQUEEZE_3 = regex.compile(r"(.)\1{2,}")
_SQUEEZE_2 = regex.compile(r"(.)\1+")
# Real words one letter away from a lexicon word; never "corrected".
_KEEP = frozenset({"cancer", "stops", "stopped", "helped", "helps", "pause", "texas", "stocks", "store", "stores"})


def _spelt(token: str, vocabulary: frozenset[str]) -> str:
    if token in vocabulary or len(token) < 3 or token.isdigit():
        return token
    for squeezed in (_SQUEEZE_3.sub(r"\1", token), _SQUEEZE_2.sub(r"\1", token)):
        if squeezed in vocabulary:
            return squeezed
    if len(token) >= 6 and token not in _KEEP:
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
    """The lexicon word one edit (or one swap of neighbours) away, starting with the same letter."""
    index = _delete_index(vocabulary)
    for variant in _deletes(token):
        word = index.get(variant)
        if word is not None and word[0] == token[0] and abs(len(word) - len(token)) <= 1:
            return word
    return None
