"""Tests for option picks said in words and punctuation: "two", "la dos", "option deux", "2.", "(2)".

A number word stands for a number option ("1".."9"), never for a letter; a number that counts or
times something ("2 people", "at 2pm", "one sec", "no one") picks nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from empathic.understand import understand

NOW = datetime.fromisoformat("2027-03-09T09:30:00-05:00")
FIVE = ["1", "2", "3", "4", "5"]
NINE = [str(n) for n in range(1, 10)]
AB = ["A", "B"]
ABCDE = ["A", "B", "C", "D", "E"]


def _pick(text: str, options: list[str]) -> str | None:
    return understand(text, now=NOW, timezone="America/New_York", options=options).option


# One to five in each language, as a whole reply.
WORDS = {
    "en": ["one", "two", "three", "four", "five"],
    "es": ["uno", "dos", "tres", "cuatro", "cinco"],
    "fr": ["un", "deux", "trois", "quatre", "cinq"],
    "de": ["eins", "zwei", "drei", "vier", "fünf"],
    "pt": ["um", "dois", "três", "quatro", "cinco"],
    "it": ["uno", "due", "tre", "quattro", "cinque"],
}
_ALONE = [(word, str(n)) for words in WORDS.values() for n, word in enumerate(words, start=1)]
_ALONE += [("une", "1"), ("funf", "5"), ("fuenf", "5"), ("zwo", "2"), ("uma", "1"), ("duas", "2")]


@pytest.mark.parametrize(("word", "option"), _ALONE)
def test_a_number_word_alone_picks_its_number(word: str, option: str) -> None:
    assert _pick(word, FIVE) == option
    assert _pick(word.capitalize() + "!", FIVE) == option


@pytest.mark.parametrize(("word", "option"), _ALONE)
def test_a_number_word_never_picks_a_letter(word: str, option: str) -> None:
    assert _pick(word, ABCDE) is None
    assert _pick(f"option {word}", ABCDE) is None


PICKS = [
    # en
    ("Two please", FIVE, "2"),
    ("yes, three", FIVE, "3"),
    ("ok four", FIVE, "4"),
    ("option two", FIVE, "2"),
    ("Option Five please", FIVE, "5"),
    ("number three", FIVE, "3"),
    ("#two", FIVE, "2"),
    ("I'll take two", FIVE, "2"),
    ("I'm going with three", FIVE, "3"),
    ("let's do four", FIVE, "4"),
    ("my choice is five", FIVE, "5"),
    ("two, not three", FIVE, "2"),
    ("the first one pls", FIVE, "1"),
    ("second", FIVE, "2"),
    ("the second one please", FIVE, "2"),
    ("seven", NINE, "7"),
    ("nine thanks", NINE, "9"),
    ("the sixth one", NINE, "6"),
    # punctuation around digits
    ("2.", FIVE, "2"),
    ("2!", FIVE, "2"),
    ("(2)", FIVE, "2"),
    ("#3 please", FIVE, "3"),
    ("number 4", FIVE, "4"),
    ("4!!", FIVE, "4"),
    ("3.", FIVE, "3"),
    ("yes, 2.", FIVE, "2"),
    # es
    ("dos por favor", FIVE, "2"),
    ("sí, la dos", FIVE, "2"),
    ("la tres", FIVE, "3"),
    ("el uno", FIVE, "1"),
    ("opción dos", FIVE, "2"),
    ("Opción 2 por favor", FIVE, "2"),
    ("la opción cuatro", FIVE, "4"),
    ("quiero la cinco", FIVE, "5"),
    ("me quedo con la cuatro", FIVE, "4"),
    ("la primera, gracias", FIVE, "1"),
    ("la segunda opción", FIVE, "2"),
    ("siete", NINE, "7"),
    # fr
    ("deux svp", FIVE, "2"),
    ("oui, trois", FIVE, "3"),
    ("le deux", FIVE, "2"),
    ("la quatre", FIVE, "4"),
    ("je prends la deux", FIVE, "2"),
    ("l'option trois", FIVE, "3"),
    ("numéro cinq", FIVE, "5"),
    ("choix un", FIVE, "1"),
    ("Une svp", FIVE, "1"),
    ("le deuxième", FIVE, "2"),
    ("la troisième", FIVE, "3"),
    ("huit", NINE, "8"),
    # de
    ("zwei bitte", FIVE, "2"),
    ("ja, drei", FIVE, "3"),
    ("die eins", FIVE, "1"),
    ("Nummer zwei", FIVE, "2"),
    ("Option vier bitte", FIVE, "4"),
    ("ich nehme Nummer fünf", FIVE, "5"),
    ("die erste bitte", FIVE, "1"),
    ("die 2.", FIVE, "2"),
    ("sieben", NINE, "7"),
    # pt
    ("dois, obrigado", FIVE, "2"),
    ("sim, três", FIVE, "3"),
    ("o dois", FIVE, "2"),
    ("opção quatro", FIVE, "4"),
    ("número cinco", FIVE, "5"),
    ("opção um", FIVE, "1"),
    ("Uma, obrigada", FIVE, "1"),
    ("fico com o dois", FIVE, "2"),
    ("o segundo", FIVE, "2"),
    ("a terceira", FIVE, "3"),
    ("oito", NINE, "8"),
    # it
    ("due grazie", FIVE, "2"),
    ("sì, tre", FIVE, "3"),
    ("la due", FIVE, "2"),
    ("il quattro", FIVE, "4"),
    ("opzione cinque", FIVE, "5"),
    ("scelgo la due", FIVE, "2"),
    ("la seconda", FIVE, "2"),
    ("il primo", FIVE, "1"),
    ("nove", NINE, "9"),
    # letters keep working
    ("option b", AB, "B"),
    ("la b", AB, "B"),
    ("b)", AB, "B"),
    ("(B)", AB, "B"),
    ("B!", AB, "B"),
    ("la c por favor", ABCDE, "C"),
    ("Option D", ABCDE, "D"),
    ("the second one", AB, "B"),
]


@pytest.mark.parametrize(("text", "options", "option"), PICKS)
def test_picks(text: str, options: list[str], option: str) -> None:
    assert _pick(text, options) == option


NO_PICKS = [
    # a count, a time or a duration, not a choice ("2 people" might answer "how many?", but
    # nothing says the options count people)
    ("2 people", FIVE),
    ("two people", FIVE),
    ("I'll be there at 2pm", FIVE),
    ("at two", FIVE),
    ("in 2 days", FIVE),
    ("in two days", FIVE),
    ("I have two kids", FIVE),
    ("table for two", FIVE),
    ("one more", FIVE),
    ("one of them", FIVE),
    # "one" as a word, not a number
    ("one sec", FIVE),
    ("one moment", FIVE),
    ("just a second", FIVE),
    ("a second please", FIVE),
    ("no one will be home", FIVE),
    ("someone will be there", FIVE),
    ("anyone?", FIVE),
    ("a one-off", FIVE),
    ("this one", FIVE),
    ("that one", FIVE),
    ("which one?", FIVE),
    ("the one", FIVE),
    ("um, not sure", FIVE),
    ("um ok", FIVE),
    # both, or all of them
    ("the two", FIVE),
    ("one or two", FIVE),
    ("two, three", FIVE),
    # es
    ("uno momento", FIVE),
    ("un momento", FIVE),
    ("un segundo", FIVE),
    ("a las dos", FIVE),
    ("la una", FIVE),
    ("los dos", FIVE),
    ("las tres", FIVE),
    ("somos dos", FIVE),
    ("en dos días", FIVE),
    # fr
    ("une seconde", FIVE),
    ("à deux heures", FIVE),
    ("les deux", FIVE),
    ("dans deux jours", FIVE),
    ("oui, une", FIVE),
    # de
    ("um zwei", FIVE),
    ("die zwei", FIVE),
    ("ich nehme die zwei", FIVE),
    ("einen Moment", FIVE),
    ("in zwei Tagen", FIVE),
    # pt
    ("às duas", FIVE),
    ("as duas", FIVE),
    ("os dois", FIVE),
    ("quero uma", FIVE),
    ("um momento", FIVE),
    ("não sei", NINE),
    # it
    ("alle due", FIVE),
    ("le due", FIVE),
    ("i due", FIVE),
    ("un attimo", FIVE),
    ("tra due giorni", FIVE),
    # number words and letters
    ("two", AB),
    ("one", AB),
    ("la dos", AB),
    ("option two", AB),
    # a number the options do not have
    ("seven", FIVE),
    ("option nine", FIVE),
]


@pytest.mark.parametrize(("text", "options"), NO_PICKS)
def test_no_pick(text: str, options: list[str]) -> None:
    assert _pick(text, options) is None


def test_times_still_read_as_times() -> None:
    u = understand("at two", now=NOW, timezone="America/New_York", options=FIVE)
    assert (u.option, u.when) == (None, datetime.fromisoformat("2027-03-09T14:00:00-05:00"))


def test_examples_are_not_taken_from_the_evaluation_set() -> None:
    path = Path(__file__).resolve().parents[2] / "bench" / "data" / "understanding_eval.jsonl"
    evaluated = {json.loads(line)["text"].casefold() for line in path.read_text(encoding="utf-8").splitlines()}
    mine = [t for t, _ in _ALONE] + [t for t, *_ in PICKS] + [t for t, _ in NO_PICKS]
    assert not {t.casefold() for t in mine} & evaluated
