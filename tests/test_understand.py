"""Tests for empathic.understand.understand: intents, options and language of real-looking replies.

The example replies here are written for the tests and kept apart from the evaluation set in
bench/data/understanding_eval.jsonl (a test checks no string is shared).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from empathic.understand import Intent, Understanding, understand

NEW_YORK = ZoneInfo("America/New_York")
# A Tuesday morning.
NOW = datetime(2027, 3, 9, 9, 30, tzinfo=NEW_YORK)

I = Intent

INTENTS: list[tuple[str, Intent, str]] = [
    # English
    ("yes!", I.CONFIRM, "en"),
    ("Yeah that's fine", I.CONFIRM, "en"),
    ("yup, see u there", I.CONFIRM, "en"),
    ("👍🏽", I.CONFIRM, "en"),
    ("OK", I.CONFIRM, "en"),
    ("kk", I.CONFIRM, "en"),
    ("sure, we'll come", I.CONFIRM, "en"),
    ("Confirming for tomorrow", I.CONFIRM, "en"),
    ("nope sorry", I.DECLINE, "en"),
    ("nahh", I.DECLINE, "en"),
    ("can't come unfortunately", I.DECLINE, "en"),
    ("Not interested thanks", I.DECLINE, "en"),
    ("we won't make it", I.DECLINE, "en"),
    ("could we move it to wed", I.RESCHEDULE, "en"),
    ("any way to do friday at 10 instead?", I.RESCHEDULE, "en"),
    ("i need to reschedule my appt", I.RESCHEDULE, "en"),
    ("Can we push to next week?", I.RESCHEDULE, "en"),
    ("I'd like to cancel please", I.CANCEL, "en"),
    ("need to cancel tuesday's appointment", I.CANCEL, "en"),
    ("what's the parking situation", I.QUESTION, "en"),
    ("how early should I arrive?", I.QUESTION, "en"),
    ("is this the dentist?", I.QUESTION, "en"),
    ("I need some help with my order", I.HELP, "en"),
    ("can i speak to someone", I.HELP, "en"),
    ("thank you so much", I.THANKS, "en"),
    ("thx!!", I.THANKS, "en"),
    # Thanks, as the development set labels it (a THANK_YOU turn); "great, see you then" confirms.
    ("great, thanks", I.THANKS, "en"),
    ("hmm let me think", I.OTHER, "en"),
    ("brb", I.OTHER, "en"),
    # Spanish
    ("sí, claro que sí", I.CONFIRM, "es"),
    ("Vale, perfecto", I.CONFIRM, "es"),
    ("ahí estaré sin falta", I.CONFIRM, "es"),
    ("no podré asistir, lo siento", I.DECLINE, "es"),
    ("no gracias, no me interesa", I.DECLINE, "es"),
    ("¿podemos cambiar la cita al viernes?", I.RESCHEDULE, "es"),
    ("necesito reprogramar", I.RESCHEDULE, "es"),
    ("quiero cancelar la cita por favor", I.CANCEL, "es"),
    ("¿quién me escribe?", I.QUESTION, "es"),
    ("¿cuánto tengo que pagar?", I.QUESTION, "es"),
    ("necesito ayuda con mi pedido", I.HELP, "es"),
    ("muchísimas gracias", I.THANKS, "es"),
    # French
    ("oui parfait", I.CONFIRM, "fr"),
    ("d'acc, à tout à l'heure", I.CONFIRM, "fr"),
    ("non désolée, je ne peux pas", I.DECLINE, "fr"),
    ("est-ce qu'on peut reporter à lundi ?", I.RESCHEDULE, "fr"),
    ("je souhaite annuler ma commande", I.CANCEL, "fr"),
    ("c'est combien ?", I.QUESTION, "fr"),
    ("j'ai besoin d'aide svp", I.HELP, "fr"),
    ("merci infiniment", I.THANKS, "fr"),
    # German
    ("ja, passt mir gut", I.CONFIRM, "de"),
    ("Alles klar, bis dann", I.CONFIRM, "de"),
    ("nein, leider nicht", I.DECLINE, "de"),
    ("können wir den Termin verschieben?", I.RESCHEDULE, "de"),
    ("ich muss den Termin leider absagen", I.CANCEL, "de"),
    ("wer schreibt mir da?", I.QUESTION, "de"),
    ("ich brauche Unterstützung", I.HELP, "de"),
    ("danke dir!", I.THANKS, "de"),
    # Portuguese
    ("sim, confirmado", I.CONFIRM, "pt"),
    ("beleza, até lá", I.CONFIRM, "pt"),
    ("não posso ir, desculpa", I.DECLINE, "pt"),
    ("preciso remarcar o horário", I.RESCHEDULE, "pt"),
    ("quero cancelar o pedido", I.CANCEL, "pt"),
    ("quem está falando?", I.QUESTION, "pt"),
    ("preciso de ajuda, por favor", I.HELP, "pt"),
    ("muito obrigado!!", I.THANKS, "pt"),
    # Italian
    ("sì, va benissimo grazie", I.CONFIRM, "it"),
    ("no, purtroppo non riesco", I.DECLINE, "it"),
    ("posso spostare a venerdì?", I.RESCHEDULE, "it"),
    ("vorrei annullare la prenotazione", I.CANCEL, "it"),
    ("dove si trova lo studio?", I.QUESTION, "it"),
    ("mi serve aiuto", I.HELP, "it"),
    ("grazie di cuore", I.THANKS, "it"),
]

OPT_OUTS: list[tuple[str, str]] = [
    ("STOP NOW", "en"),
    ("stop please", "en"),
    ("please stop texting this number", "en"),
    ("unsubscribe me from this", "en"),
    ("pls remove me from the list", "en"),
    ("dont text me ever again", "en"),
    ("Do NOT message me again", "en"),
    ("take my number off your list", "en"),
    ("not interested, stop messaging me", "en"),
    ("this is the wrong number", "en"),
    ("STOP!!! 😡", "en"),
    ("End", "en"),
    ("ya no me escribas más por favor", "es"),
    ("por favor no me manden más mensajes", "es"),
    ("quiero darme de baja", "es"),
    ("dejen de mandarme cosas", "es"),
    ("arrêtez de m'envoyer vos pubs", "fr"),
    ("merci de ne plus m'écrire", "fr"),
    ("je veux me désabonner", "fr"),
    ("hört endlich auf, mir zu schreiben", "de"),
    ("bitte schreibt mir nicht mehr", "de"),
    ("ich will mich abmelden", "de"),
    ("pare de me mandar essas mensagens", "pt"),
    ("não quero mais receber essas mensagens", "pt"),
    ("smettetela di scrivermi per favore", "it"),
    ("non voglio più ricevere sms", "it"),
]

NOT_OPT_OUTS = [
    "don't stop, these reminders are great",
    "I'll stop by your office tomorrow",
    "can I stop in around 3?",
    "no pares de enviarme recordatorios",
    "we stop at the pharmacy first, then come",
]


def _read(text: str, options: list[str] | None = None) -> Understanding:
    return understand(text, now=NOW, timezone="America/New_York", options=options)


@pytest.mark.parametrize(("text", "intent", "language"), INTENTS)
def test_intent_and_language(text: str, intent: Intent, language: str) -> None:
    u = _read(text)
    assert (u.intent, u.language) == (intent, language)


@pytest.mark.parametrize(("text", "language"), OPT_OUTS)
def test_opt_out_in_every_language(text: str, language: str) -> None:
    u = _read(text)
    assert u.intent is Intent.OPT_OUT
    assert u.language == language
    assert u.confidence >= 0.9


@pytest.mark.parametrize("text", NOT_OPT_OUTS)
def test_stop_as_an_ordinary_verb_is_not_an_opt_out(text: str) -> None:
    assert _read(text).intent is not Intent.OPT_OUT


def test_opt_out_wins_over_other_intents() -> None:
    assert _read("yes but stop texting me after this").intent is Intent.OPT_OUT
    assert _read("cancel my appt and remove me from your list").intent is Intent.OPT_OUT


def test_compliance_keywords_decide_first() -> None:
    # Carrier keywords are honoured as the compliance layer reads them, whatever else fits.
    assert _read("CANCEL").intent is Intent.OPT_OUT
    assert _read("info").intent is Intent.HELP
    assert _read("cancel the appointment").intent is Intent.CANCEL


@pytest.mark.parametrize(
    ("text", "options", "option", "intent"),
    [
        ("A", ["A", "B"], "A", I.OTHER),
        ("b.", ["A", "B"], "B", I.OTHER),
        ("B please", ["A", "B"], "B", I.OTHER),
        ("yes A", ["A", "B"], "A", I.CONFIRM),
        ("option 3", ["1", "2", "3", "4", "5"], "3", I.OTHER),
        ("#4", ["1", "2", "3", "4", "5"], "4", I.OTHER),
        ("5)", ["1", "2", "3", "4", "5"], "5", I.OTHER),
        ("2", ["1", "2", "3"], "2", I.OTHER),
        ("the second one", ["A", "B"], "B", I.OTHER),
        ("la segunda opción", ["A", "B", "C"], "B", I.OTHER),
        ("je choisis la C", ["A", "B", "C"], "C", I.OTHER),
        ("ich nehme die zwei", ["1", "2"], None, I.OTHER),
        ("Nummer 1 bitte", ["1", "2"], "1", I.OTHER),
        ("opção 2", ["1", "2"], "2", I.OTHER),
        ("A or B, not sure", ["A", "B"], None, I.OTHER),
        ("a las 5", ["A", "B"], None, I.RESCHEDULE),
        ("I want a refund", ["A", "B"], None, I.OTHER),
        ("Tuesday", ["Monday", "Tuesday"], "Tuesday", I.RESCHEDULE),
    ],
)
def test_option_picks(text: str, options: list[str], option: str | None, intent: Intent) -> None:
    u = _read(text, options)
    assert (u.option, u.intent) == (option, intent)


def test_no_options_no_pick() -> None:
    assert _read("A").option is None
    assert _read("A", []).option is None


def test_typos_and_elongations() -> None:
    assert _read("cancell my apointmnt").intent is Intent.CANCEL
    assert _read("YESSSS").intent is Intent.CONFIRM
    assert _read("thaaanks").intent is Intent.THANKS
    assert _read("unsubscirbe").intent is Intent.OPT_OUT
    assert _read("can we do thrusday").when == date(2027, 3, 11)


def test_confidence_is_higher_when_words_are_clear() -> None:
    assert _read("yes").confidence > _read("blue").confidence
    assert _read("STOP").confidence == 0.99


def test_language_defaults_to_english() -> None:
    assert _read("👍").language == "en"
    assert _read("").language == "en"
    assert _read("").intent is Intent.OTHER


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError):
        understand("yes", now=datetime(2027, 3, 9, 9, 30), timezone="UTC")


def test_timezone_may_be_a_zoneinfo() -> None:
    assert _read("tomorrow at 3").when == understand("tomorrow at 3", now=NOW, timezone=NEW_YORK).when


def test_examples_are_not_taken_from_the_evaluation_set() -> None:
    path = Path(__file__).resolve().parent.parent / "bench" / "data" / "understanding_eval.jsonl"
    evaluated = {json.loads(line)["text"].casefold() for line in path.read_text(encoding="utf-8").splitlines()}
    mine = [t for t, *_ in INTENTS] + [t for t, _ in OPT_OUTS] + NOT_OPT_OUTS
    assert not {t.casefold() for t in mine} & evaluated
    assert len(evaluated) >= 600


# Properties

_OPT_OUT_PHRASES = [t for t, _ in OPT_OUTS if t not in ("End",)]
_EDGES = st.text(alphabet=" .,!?¡¿…-*~👍🙏😡🛑❤️\n", max_size=4)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200), options=st.none() | st.lists(st.text(max_size=5), max_size=6))
def test_never_raises_and_confidence_is_bounded(text: str, options: list[str] | None) -> None:
    u = understand(text, now=NOW, timezone="Europe/Paris", options=options)
    assert 0.0 <= u.confidence <= 1.0
    assert u.language in {"en", "es", "fr", "de", "pt", "it"}
    assert u.option is None or u.option in (options or [])


@settings(max_examples=150, deadline=None)
@given(phrase=st.sampled_from(_OPT_OUT_PHRASES), before=_EDGES, after=_EDGES, flips=st.lists(st.booleans(), min_size=60, max_size=60))
def test_opt_out_survives_casing_punctuation_and_emoji(phrase: str, before: str, after: str, flips: list[bool]) -> None:
    cased = "".join(c.upper() if flip else c.lower() for c, flip in zip(phrase, flips + [False] * len(phrase)))
    assert _read(f"{before}{cased}{after}").intent is Intent.OPT_OUT


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=80))
def test_pure_same_input_same_output(text: str) -> None:
    assert _read(text) == _read(text)
