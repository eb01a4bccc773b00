"""Which of the offered options ("A"/"B", "1"…"5") a reply picks.

A pick is an option standing on its own in a clause ("b", "yes, A", "la B por favor"), named
("option 2", "#1", "Nummer 2", "2)"), chosen ("I'll take B", "je prends la B", "quero a
opção B") or counted ("the first one", "la segunda", "die erste"). Letters that are also
words ("a", "e", "i", "o", "y") only count alone, capitalised, or named or chosen. Number
words stand for number options ("two", "la dos", "opção três"), never for letters. A number
that counts or times something ("2 people", "in 2 days", "at 2pm", "one sec") is no pick:
"2 people" might answer "how many?", but nothing says the options count people, so the
reply is left to the caller. Two different picks in one reply are no pick.
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
    # Not "sexta": in Portuguese that is Friday.
    "sixth 6th sexto sixieme 6eme sechste sechsten sesto sesta",
    "seventh 7th septimo septima septieme 7eme siebte siebten setimo setima settimo settima",
    "eighth 8th octavo octava huitieme 8eme achte achten oitavo oitava ottavo ottava",
    "ninth 9th noveno novena neuvieme 9eme neunte neunten nono nona",
    "tenth 10th decimo decima dixieme 10eme zehnte zehnten",
), start=1):
    for _name in _names.split():
        _ORDINALS[_name] = _index

# Number words by value; a word two languages share has one value ("tres", "seis", "nove").
_NUMBERS: dict[str, int] = {}
for _names in (
    "one two three four five six seven eight nine ten",
    "uno/una dos tres cuatro cinco seis siete ocho nueve diez",
    "un/une deux trois quatre cinq six sept huit neuf dix",
    "eins zwei/zwo drei vier funf/fuenf sechs sieben acht neun zehn",
    "um/uma dois/duas tres quatro cinco seis sete oito nove dez",
    "uno due tre quattro cinque sei sette otto nove dieci",
):
    for _value, _spellings in enumerate(_names.split(), start=1):
        _NUMBERS.update(dict.fromkeys(_spellings.split("/"), _value))
# Also articles or other words ("um" is English hesitation, "sei" "I know"): only named or alone.
_WEAK_NUMBERS = frozenset({"un", "une", "um", "uma", "una", "sei"})
# Plural articles before a number mean "both" / "the three of them": "los dos", "les deux", "i due".
# "die zwei" may also be "die Zwei", the number: ambiguous, so no pick either ("the two": no article).
_BOTH = frozenset(
    (article, word)
    for articles, words in (
        ("los las", "dos tres cuatro cinco seis siete ocho nueve diez"),
        ("les", "deux trois quatre cinq six sept huit neuf dix"),
        ("die", "zwei zwo drei vier funf fuenf sechs sieben acht neun zehn"),
        ("os as", "dois duas tres quatro cinco seis sete oito nove dez"),
        ("i gli le", "due tre quattro cinque sei sette otto nove dieci"),
    )
    for article in articles.split()
    for word in words.split()
)

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
# What may stand before a number word in a clause that picks it ("yes, I'll take la dos"), longest
# first so the repetition can be possessive, and after it.
_LEAD = "|".join(sorted(
    {*_CHOOSE[3:-1].split("|"), *ASSENT_WORDS, *(
        "id d ill m s just let lets think guess say je j nous on ich wir yo creo digo crois dis glaube denke sage eu"
        " acho io penso credo dico"
    ).split()},
    key=lambda lead: (-len(lead), lead),
))
_THANKS = (
    r"(?:please|pls|plz|thanks|thank you|thx|ty|por favor|porfa|porfavor|gracias|merci|svp|stp|s il vous plait|bitte"
    r"|danke|obrigado|obrigada|grazie|per favore|perfavore)"
)
_POLITE = rf"(?:{_THANKS}|ok|okay|then|entonces|alors|dann|entao|allora)"
_NUMBER_CLAUSE = regex.compile(rf"(?:(?:{_LEAD}) )*+(?:(?P<a>la|el|le|o|a|il|die) )?(?P<w>[a-z]+)(?: {_POLITE})*")
_THANKS_ONLY = regex.compile(rf"(?:(?:{_THANKS}|,|\?)(?: |$))*")


def pick_option(reply: Reply, options: Sequence[str]) -> str | None:
    """The option `reply` picks, as given in `options`, or None."""
    by_key: dict[str, str] = {}
    for option in options:
        key = " ".join(fold(option).split())
        if key:
            by_key.setdefault(key, option)
    if not by_key:
        return None
    # Number words of number options: "two" → "2".
    aliases = {word: str(value) for word, value in _NUMBERS.items() if str(value) in by_key}
    named, parenthesised, chosen = _patterns(tuple(sorted(by_key, key=len, reverse=True)))
    words = reply.words
    raw = " ".join(regex.sub(r"['\u2019\u2018`\u00b4]", " ", fold(reply.text)).replace("#", " # ").split())
    picked: set[str] = set()
    for text, pattern in ((raw, named), (raw, parenthesised), (words, chosen)):
        picked.update(m["k"] for m in pattern.finditer(text))
    if aliases:
        alias_named = _patterns(tuple(sorted(aliases, key=len, reverse=True)))[0]
        picked.update(aliases[m["k"]] for m in alias_named.finditer(raw))
    for clause in regex.split(r" ?[,?] ?", words):
        picked.update(_clause_pick(clause, by_key, reply.text))
        if aliases:
            picked.update(_number_word_pick(clause, aliases, words))
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
    # "2." reads as one token ("die 2." is German for "the second").
    split = [t[:-1] if t[-1:] == "." and t[:-1] in by_key else t for t in clause.split()]
    tokens = [t for t in split if t in by_key or t not in FILLER_WORDS and t not in ASSENT_WORDS]
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
    if token == "second" and regex.search(r"(?<![^ ])a second", clause):
        return set()  # "just a second"
    if index is not None and index <= len(by_key):
        return {list(by_key)[index - 1]}
    return set()


def _number_word_pick(clause: str, aliases: dict[str, str], words: str) -> set[str]:
    """A clause that only says a number word ("two please", "sí, la dos", "je prends la deux")."""
    m = _NUMBER_CLAUSE.fullmatch(clause)
    if m is None or m["w"] not in aliases:
        return set()
    word = m["w"]
    before = clause[: m.start("w")].split()
    if before and (before[-1], word) in _BOTH:
        return set()
    rest = words.split()
    rest.remove(word)
    if word in _WEAK_NUMBERS and not _THANKS_ONLY.fullmatch(" ".join(rest)):
        return set()  # "um, not sure", "um ok", "la una" (one o'clock), "quero uma"
    return {aliases[word]}
