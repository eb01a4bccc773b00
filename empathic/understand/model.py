"""The learned part of reply understanding: a linear model over hashed n-grams and rule evidence.

A reply becomes a bag of feature strings: character n-grams (2–5) inside each word, word
unigrams and bigrams, which intents the lexicon found, what the rules alone would decide, a
time, a question mark, and the kind of message it answers. Each string is hashed (CRC-32)
into one of `BUCKETS` rows of a weight table with one column per intent; the scores go
through a softmax divided by a fitted temperature, so the top probability is a calibrated
confidence. The table is trained by tools/train_understanding.py and shipped in `data/`;
reading it needs nothing beyond the standard library.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["Evidence", "IntentModel", "features", "load_model"]

FEATURE_VERSION = 1
_CHAR_SIZES = (2, 3, 4, 5)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the rules read in a reply, the input of the model.

    `words` is `Reply.words`; `lexicon` the intents the lexicon matched; `rule` the intent the
    rules alone decide; `prompt` the kinds of the message answered ("none" when unknown);
    `language` the detected language.
    """

    words: str
    lexicon: frozenset[str]
    rule: str
    opt_out_rule: bool
    when: bool
    asks: bool
    option: bool
    prompt: frozenset[str]
    language: str


def features(evidence: Evidence) -> list[str]:
    """The feature strings of one reply (with repeats: counts matter)."""
    tokens = evidence.words.split()
    out: list[str] = []
    add = out.append
    for token in tokens:
        add("w:" + token)
        if token in (",", "?"):
            continue
        padded = f" {token} "
        size = len(padded)
        for n in _CHAR_SIZES:
            for i in range(size - n + 1):
                add("c:" + padded[i:i + n])
    bounded = ["<s>", *tokens, "</s>"]
    for a, b in zip(bounded, bounded[1:], strict=False):
        add("b:" + a + " " + b)
    lexicon = sorted(evidence.lexicon)
    for intent in lexicon:
        add("L:" + intent)
    add("R:" + evidence.rule)
    # The rules were written for six languages, the dev set is English: let trust differ by language.
    add("R:" + evidence.rule + "|" + evidence.language)
    for intent in lexicon:
        add("L:" + intent + "|" + evidence.language)
    if evidence.opt_out_rule:
        add("O:rule")
    if evidence.when:
        add("T:when")
    if evidence.asks:
        add("Q:asks")
    if evidence.option:
        add("P:option")
    if len(tokens) <= 2:
        add("N:short")
    for kind in sorted(evidence.prompt):
        add("K:" + kind)
        add("K:" + kind + "|R:" + evidence.rule)
        for intent in lexicon:
            add("K:" + kind + "|L:" + intent)
        if tokens:
            add("K:" + kind + "|first:" + tokens[0])
        if evidence.when:
            add("K:" + kind + "|T:when")
    return out


def bucket(feature: str, buckets: int) -> int:
    """The weight row of `feature`: CRC-32 of its UTF-8 bytes, modulo the (power of two) row count."""
    return zlib.crc32(feature.encode()) & (buckets - 1)


@dataclass(frozen=True, slots=True)
class IntentModel:
    """Weights (`buckets` × `len(labels)`, row-major), biases and the calibration temperature."""

    labels: tuple[str, ...]
    buckets: int
    weights: array[float]  # array('f'), row-major
    bias: tuple[float, ...]
    temperature: float

    def probabilities(self, names: Iterable[str]) -> dict[str, float]:
        """Calibrated probability of each label for a reply with these feature strings."""
        k = len(self.labels)
        scores = list(self.bias)
        weights, mask = self.weights, self.buckets - 1
        crc = zlib.crc32
        for name in names:
            row = (crc(name.encode()) & mask) * k
            for j in range(k):
                scores[j] += weights[row + j]
        top = max(scores)
        exps = [math.exp((s - top) / self.temperature) for s in scores]
        total = sum(exps)
        return {label: e / total for label, e in zip(self.labels, exps, strict=True)}


@cache
def load_model() -> IntentModel:
    """The shipped model (`data/intent_model.json` + `data/intent_model.bin`), checked against its digest."""
    data = resources.files("empathic.understand") / "data"
    meta = json.loads((data / "intent_model.json").read_text(encoding="utf-8"))
    raw = zlib.decompress((data / "intent_model.bin").read_bytes())
    if hashlib.sha256(raw).hexdigest() != meta["sha256"]:
        raise RuntimeError("understand/data/intent_model.bin does not match its manifest")
    if meta["feature_version"] != FEATURE_VERSION:
        raise RuntimeError("understand/data/intent_model.json was trained on other features")
    weights: array[float] = array("f")
    weights.frombytes(raw)
    labels = tuple(meta["labels"])
    if len(weights) != meta["buckets"] * len(labels):
        raise RuntimeError("understand/data/intent_model.bin has the wrong size")
    return IntentModel(labels, meta["buckets"], weights, tuple(meta["bias"]), meta["temperature"])
