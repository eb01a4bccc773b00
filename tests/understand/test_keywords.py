"""Tests for empathic.understand.keywords: whole-message STOP / START / HELP recognition."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from empathic.understand.keywords import (
    HELP_WORDS,
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    Keyword,
    match_keyword,
    match_topic_opt_out,
)

_CLASSES = [
    (Keyword.OPT_OUT, OPT_OUT_WORDS),
    (Keyword.OPT_IN, OPT_IN_WORDS),
    (Keyword.HELP, HELP_WORDS),
]
_WORD_CLASS = [(word, keyword) for keyword, words in _CLASSES for word in sorted(words)]


def test_word_sets_are_disjoint_and_exclude_yes() -> None:
    assert not OPT_OUT_WORDS & OPT_IN_WORDS
    assert not OPT_OUT_WORDS & HELP_WORDS
    assert not OPT_IN_WORDS & HELP_WORDS
    assert "YES" not in OPT_IN_WORDS


def test_keyword_values_are_stable_strings() -> None:
    assert [str(k) for k in Keyword] == ["opt_out", "opt_in", "help"]


@pytest.mark.parametrize(("word", "keyword"), _WORD_CLASS)
def test_every_listed_word_matches_its_class(word: str, keyword: Keyword) -> None:
    assert match_keyword(word) is keyword
    assert match_keyword(word.lower()) is keyword


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        "sToP",
        "Stop!",
        "  stop. ",
        "'stop'",
        '"STOP"',
        "**STOP**",
        "stop\n",
        "\tSTOP\r\n",
        "STOP 🛑",
        "🙏 stop 👍🏽",
        "stop ❤️",
        "\u200bstop\u200d",
        "ＳＴＯＰ",
        "ＳＴＯＰ！",
        "™STOP™",
        "¡Stop!",
        "Unsubscribe.",
        "cancel",
        "End",
        "QUIT!!!",
        "revoke",
        "stopall",
        "STOP ALL",
        "Stop all.",
        "OPTOUT",
        "OPT OUT",
        "opt-out",
        "Opt_Out",
        "opt – out",
    ],
)
def test_opt_out_positives(text: str) -> None:
    assert match_keyword(text) is Keyword.OPT_OUT


@pytest.mark.parametrize("text", ["START", "start.", "Start!", "unstop", "UNSTOP 🙂", "ＳＴＡＲＴ"])
def test_opt_in_positives(text: str) -> None:
    assert match_keyword(text) is Keyword.OPT_IN


@pytest.mark.parametrize("text", ["HELP", "help?", "Help!!", "info", "INFO.", "(help)", "ＨＥＬＰ"])
def test_help_positives(text: str) -> None:
    assert match_keyword(text) is Keyword.HELP


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "!!!",
        "🛑",
        "stop by the store tomorrow",
        "don't stop",
        "please stop",
        "stop it",
        "stop stop",
        "stopped",
        "stops",
        "stop1",
        "s t o p",
        "st op",
        "stop!x",
        "nonstop",
        "unsubscribed",
        "cancel my order",
        "the end",
        "ending",
        "optout now",
        "opt in",
        "stop everything",
        "start over",
        "restart",
        "YES",
        "yes",
        "help me with my order",
        "information",
        "helpful",
        "Ok",
    ],
)
def test_negatives(text: str) -> None:
    assert match_keyword(text) is None


def test_long_ordinary_text_does_not_match() -> None:
    assert match_keyword("stop " * 1000) is None
    assert match_keyword("!" * 10_000) is None
    assert match_keyword("!" * 5_000 + "STOP" + "?" * 5_000) is Keyword.OPT_OUT


# Runs of punctuation, symbols, separators and emoji pieces (ZWJ, VS16, skin tone).
_SURROUNDING = st.text(
    alphabet=st.one_of(
        st.characters(categories=["P", "S", "Zs", "Zl", "Zp"]),
        st.sampled_from(["\t", "\n", "\r", "\u200d", "\ufe0f", "\U0001f3fd", "🛑"]),
    ),
    max_size=12,
)


@st.composite
def _any_casing(draw: st.DrawFn, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.lower() if flip else c.upper() for c, flip in zip(word, flips))


@given(st.sampled_from(_WORD_CLASS), st.data())
def test_any_casing_and_surrounding_noise_still_matches(
    word_class: tuple[str, Keyword], data: st.DataObject
) -> None:
    word, keyword = word_class
    cased = data.draw(_any_casing(word))
    before = data.draw(_SURROUNDING)
    after = data.draw(_SURROUNDING)
    assert match_keyword(before + cased + after) is keyword


@given(
    st.sampled_from(_WORD_CLASS),
    st.characters(categories=["L"]),
    st.booleans(),
    _SURROUNDING,
)
def test_a_letter_touching_the_word_prevents_a_match(
    word_class: tuple[str, Keyword], letter: str, letter_first: bool, noise: str
) -> None:
    word, _ = word_class
    text = letter + word if letter_first else word + letter
    assert match_keyword(noise + text + noise) is None


@given(st.text(max_size=200))
def test_never_raises_and_only_returns_keywords(text: str) -> None:
    assert match_keyword(text) in (None, *Keyword)


TOPIC_NAMES = ["deals", "news", "Reminders"]


@pytest.mark.parametrize(
    ("text", "topic"),
    [("STOP DEALS", "deals"), ("stop deals!", "deals"), ("  Unsubscribe news. ", "news"), ("stop-reminders", "Reminders"),
     ("ＳＴＯＰ ＤＥＡＬＳ", "deals"), ("STOP", None), ("stop gossip", None), ("start deals", None),
     ("please stop deals", None), ("stop deals now", None), ("help deals", None), ("deals stop", None)],
)
def test_topic_opt_out(text: str, topic: str | None) -> None:
    assert match_topic_opt_out(text, TOPIC_NAMES) == topic


@given(st.text(max_size=80))
def test_topic_opt_out_never_raises_and_names_only_given_topics(text: str) -> None:
    assert match_topic_opt_out(text, TOPIC_NAMES) in (None, *TOPIC_NAMES)
