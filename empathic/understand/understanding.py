"""`understand`: one inbound reply in, what it means out (intent, proposed time, option, language)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import regex

from empathic.understand.context import read_prompt
from empathic.understand.intents import Intent, classify, detect_language, read_lexicon
from empathic.understand.keywords import Keyword, match_keyword
from empathic.understand.lexicon import stems, vocabulary
from empathic.understand.model import Evidence, features, load_model
from empathic.understand.options import pick_option
from empathic.understand.text import read
from empathic.understand.when import VOCABULARY, find_when, month_first

__all__ = ["Understanding", "decide", "evidence", "understand"]

_VOCABULARY = vocabulary() | VOCABULARY
_STEMS = stems()
# Languages where "thurs 4" is a day and an hour; in the others "jeudi 4" is a day of the month.
_HOUR_AFTER_DAY = frozenset({"en", "de"})
_KEYWORD_INTENT = {Keyword.OPT_OUT: Intent.OPT_OUT, Keyword.HELP: Intent.HELP}
# How often the lexicon's opt-out reading was right on the development set (see docs/understanding.md).
_RULE_OPT_OUT_CONFIDENCE = 0.95
_OPTION_CONFIDENCE = 0.85
# The rules' intent wins when the model gives it at least this share of its top probability.
RULE_RATIO = 0.5
# Below this the model's reading of a reply without any rule evidence counts as unclear.
UNSURE = 0.5
_POSSIBLE_OPT_OUT = 0.3
# What an opt-out the model reads must be about: messages, contact, talking, or a bare "stop".
_SILENCE = regex.compile(
    r"(?<![^ ])(?:shut|shush|hush|shh+|quiet|silen\w*|zip it|leave me|texts|texting|messages|messaging|msgs|sms|contact\w*"
    r"|spam\w*|unsub\w*|stop(?= ,| \?|$| (?:it|that|this|now|please|pls)(?![^ ]))"
    r"|callate|callese|callense|silencio|mensajes|basta|para (?:ya|de)|tais toi|taisez vous|chut|ferme la|arret\w*"
    r"|(?:sei|seid) (?:still|ruhig)|ruhe|schweig\w*|nachrichten|klappe|aufhor\w*|hor auf|cala a boca|calado|quieto"
    r"|mensagens|chega|zitt[oaie]|silenzio|smett\w*|messaggi)(?![^ ])"
)


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
    text: str,
    *,
    now: datetime,
    timezone: str | ZoneInfo,
    options: Sequence[str] | None = None,
    prompt: str | None = None,
) -> Understanding:
    """Read one reply. `now` (aware) anchors relative times; nothing here reads the clock.

    `prompt` is the message the reply answers, when known: it changes what "that's all" or
    "make it 4:30" means.

    >>> u = understand("can we do thurs 4 instead", now=datetime.fromisoformat("2026-11-23T10:00-05:00"),
    ...                timezone="America/New_York")
    >>> u.intent, u.when.isoformat()
    (<Intent.RESCHEDULE: 'reschedule'>, '2026-11-26T16:00:00-05:00')
    """
    seen = _see(text, now, timezone, options, prompt)
    keyword = match_keyword(text)
    if keyword in _KEYWORD_INTENT:
        return Understanding(_KEYWORD_INTENT[keyword], seen.when, seen.option, seen.language, 0.99)
    probabilities = load_model().probabilities(features(seen.evidence))
    intent, confidence = decide(seen.evidence, probabilities)
    return Understanding(intent, seen.when, seen.option, seen.language, round(confidence, 2))


def decide(evidence: Evidence, probabilities: dict[str, float]) -> tuple[Intent, float]:
    """The intent and its confidence from the model's probabilities and the rules' evidence.

    An opt-out the lexicon reads (any language, negation handled) stands whatever the model
    says: a missed opt-out is the worst error. The model alone reads an opt-out only where
    the reply is about messages or talking ("be quiet", "stop talking"), so "no, I don't
    want any tickets" stays a refusal.
    """
    ranked = sorted(probabilities.items(), key=lambda item: (-item[1], item[0]))
    if evidence.opt_out_rule:
        return Intent.OPT_OUT, max(probabilities["opt_out"], _RULE_OPT_OUT_CONFIDENCE)
    if ranked[0][0] == "opt_out" and not _about_silence(evidence.words):
        ranked = ranked[1:]
    elif probabilities["opt_out"] >= _POSSIBLE_OPT_OUT and _about_silence(evidence.words):
        # A missed opt-out costs more than a false one: a likely one about messages or talking counts.
        return Intent.OPT_OUT, probabilities["opt_out"]
    if evidence.option and evidence.rule == "other":
        return Intent.OTHER, max(probabilities["other"], _OPTION_CONFIDENCE)  # a bare pick: "B", "Nummer 1 bitte"
    label, confidence = ranked[0]
    if confidence < UNSURE and evidence.rule == "other" and not evidence.lexicon:
        # Nothing the rules know and a model in doubt: unclear, so that a flow asks again.
        return Intent.OTHER, probabilities["other"]
    ruled = probabilities[evidence.rule]
    if label != evidence.rule and evidence.rule != "other" and ruled >= RULE_RATIO * confidence:
        # Close call: the rules, written for texts in six languages, break the tie.
        return Intent(evidence.rule), ruled
    return Intent(label), confidence


def _about_silence(words: str) -> bool:
    """Whether the reply asks for silence: a word of talking or messages, not negated ("don't stop texting")."""
    for m in _SILENCE.finditer(words):
        before = words[:m.start()].split()[-2:]
        # "don't stop" keeps the messages coming; "don't talk" / "don't text me" asks for silence.
        if not (_STOP_WORDS.match(m.group()) and any(token in _NEGATORS for token in before)):
            return True
    return False


_STOP_WORDS = regex.compile(r"stop|arret|smett|para|basta|chega|aufhor|hor auf")
_NEGATORS = frozenset({"not", "never", "dont", "don", "t", "cant", "doesnt", "didnt", "wont", "nicht", "pas", "non", "nao"})


def evidence(
    text: str,
    *,
    now: datetime,
    timezone: str | ZoneInfo,
    options: Sequence[str] | None = None,
    prompt: str | None = None,
) -> Evidence:
    """What the rules read in a reply: the model's input (tools/train_understanding.py reads it too)."""
    return _see(text, now, timezone, options, prompt).evidence


@dataclass(frozen=True, slots=True)
class _Seen:
    evidence: Evidence
    when: datetime | date | None
    option: str | None
    language: str


def _see(
    text: str, now: datetime, timezone: str | ZoneInfo, options: Sequence[str] | None, prompt: str | None
) -> _Seen:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    zone = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
    reply = read(text, _VOCABULARY, _STEMS)
    reading = read_lexicon(reply)
    language = detect_language(reply, reading)
    hour_after_day = language in _HOUR_AFTER_DAY
    first = month_first(language, zone.key or "")
    answered = read_prompt(prompt, now, zone, month_first=first)
    when = find_when(
        reply.words, now, zone, month_first=first, hour_after_day=hour_after_day, day_in_context=answered.day
    )
    option = pick_option(reply, options) if options else None
    later_when = False
    if when is not None and "decline" in reading.intents:
        # A time in a clause after the refusal is a counter-proposal: "can't today, friday?"
        clauses = regex.split(r" [,?] ", reply.words, maxsplit=1)
        later_when = len(clauses) == 2 and find_when(
            clauses[1], now, zone, month_first=first, hour_after_day=hour_after_day
        ) is not None
    rule, _ = classify(reply, reading, when, later_when=later_when, option=option)
    seen = Evidence(
        words=reply.words,
        lexicon=frozenset(reading.intents),
        rule=str(rule),
        opt_out_rule=reading.opt_out,
        when=when is not None,
        asks=reply.asks,
        option=option is not None,
        prompt=answered.kinds,
        language=language,
    )
    return _Seen(seen, when, option, language)
