"""Which of the offered options ("A"/"B", "1"…"5") a reply picks.

A pick is an option standing on its own in a clause ("b", "yes, A", "la B por favor"), named
("option 2", "#1", "Nummer 2", "2)"), chosen ("I'll take B", "je prends la B", "quero a
opção B") or counted ("the first one", "la segunda", "die erste"). Letters that are also
words ("a", "e", "i", "o", "y") only count alone, capitalised, or named or chosen. Two
different picks in one reply are no pick.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import regex

from empathic.understand.lexicon import ASSENT_WORDS, FILLER_WORDS
from empathic.understand.text import Reply, fold

__all__ = ["pick_option"]

_ORDINALS: dict[str, int] = {}
for _index, _names in enumerate((
    "first 1st primero primera primer premier premiere 1er erste ersten erster erstes primeiro primeira primo prima",
    "second 2nd segundo segunda deuxieme 2eme seconde zweite zweiten zweiter zweites secondo seconda",
    "third 3rd tercero tercera tercer troisieme 3eme dritte dritten dritter drittes terceiro terceira terzo terza",
    "fourth 4th cuarto cuarta quatrieme 4eme vierte vierten vierter quarto quarta",
    "fifth 5th quinto quinta cinquieme 5eme funfte fuenfte funften",
), start=1):
    for _name in _names.split():
        _ORDINALS[_name] = _index

_WORD_LETTERS = frozenset("aeiouy")
_NAMED = (
    r"(?:option|opt|opcion|opcao|opzione|choix|choice|wahl|variante|nummer|numero|number|num|nr|antwort|respuesta"
    r"|reponse|resposta|risposta|letter|letra|lettre|buchstabe|lettera|alternativa)"
)
_ARTICLE = r"(?:the|la|el|a|o|le|l|die|der|das|den|il|lo|los|las|les|an)"
_CHOOSE = (
    r"(?:take|pick|choose|chose|want|prefer|go with|going with|ill go with|vote|prends|prend|choisis|choisi|prefere"
    r"|nehme|nehmen|nimm|wahle|waehle|will|mochte|moechte|quiero|elijo|escojo|prefiero|me quedo con|voto|quero"
    r"|escolho|prefiro|fico com|scelgo|prendo|voglio|preferisco|opto|opto por)"
)
_FILLERS = _ARTICLE[3:-1] + "|" + "|".join(sorted(FILLER_WORDS - {"?", ","}, key=len, reverse=True))


def pick_option(reply: Reply, options: Sequence[str]) -> str | None:
    """The option `reply` picks, as given in `options`, or None."""
    by_key: dict[str, str] = {}
    for option in options:
        key = " ".join(fold(option).split())
        if key:
            by_key.setdefault(key, option)
    if not by_key:
        return None
    named, parenthesised, chosen = _patterns(tuple(sorted(by_key, key=len, reverse=True)))
    words = reply.words
    raw = " ".join(fold(reply.text).replace("#", " # ").split())
    picked: set[str] = set()
    for text, pattern in ((raw, named), (raw, parenthesised), (words, chosen)):
        picked.update(m["k"] for m in pattern.finditer(text))
    for clause in regex.split(r" ?[,?] ?", words):
        picked.update(_clause_pick(clause, by_key, reply.text))
    if len(picked) == 1:
        return by_key[picked.pop()]
    return None


@lru_cache(maxsize=256)
def _patterns(keys: tuple[str, ...]) -> tuple[regex.Pattern[str], ...]:
    """Named ("option 2", "#1"), parenthesised ("2)") and chosen ("I'll take B") picks of `keys`."""
    alternatives = "|".join(regex.escape(k) for k in keys)
    return (
        regex.compile(rf"(?<![^ ])(?:{_NAMED}|#) ?(?P<k>{alternatives})(?![^ ,.;!?):])"),
        regex.compile(rf"(?:^|(?<=[ (]))(?P<k>{alternatives})\)"),
        regex.compile(
            rf"(?<![^ ]){_CHOOSE} (?:{_ARTICLE} )?(?:{_NAMED} )?(?P<k>{alternatives})"
            rf"(?= ,| \?|$| (?:{_FILLERS})(?![^ ]))"
        ),
    )


def _clause_pick(clause: str, by_key: dict[str, str], text: str) -> set[str]:
    """A clause that is only an option (with an article and fillers): "la B por favor", "the first one"."""
    tokens = [t for t in clause.split() if t in by_key or t not in FILLER_WORDS and t not in ASSENT_WORDS]
    while tokens and regex.fullmatch(_ARTICLE, tokens[0]) and len(tokens) > 1:
        tokens = tokens[1:]
    if tokens[-1:] in (["one"], ["option"], ["opcion"], ["opcao"], ["opzione"]) and len(tokens) > 1:
        tokens = tokens[:-1]
    if len(tokens) != 1:
        return set()
    token = tokens[0]
    if token in by_key:
        if token in _WORD_LETTERS and len(clause.split()) > 1 and not regex.search(
            rf"(?<![\p{{L}}\d]){regex.escape(token.upper())}(?![\p{{L}}\d])", text
        ):
            return set()  # "a" / "e" / "y" as a word, not a capital letter
        return {token}
    index = _ORDINALS.get(token)
    if index is not None and index <= len(by_key):
        return {list(by_key)[index - 1]}
    return set()
