"""Reply-understanding benchmark: accuracy and latency of `empathic.understand.understand`.

Runs the labelled replies in `bench/data/understanding_eval.jsonl` through `understand` and
through a plain keyword baseline (the "message has any of these words" rules flow tools
ship, English keywords only), and prints one JSON object with, for each:

- `accuracy`, `macro_f1` over the nine intents, `recall` per intent (opt_out first),
  `accuracy_by_language`, `language_accuracy` (detected language);
- `option_exact`: of replies offered options, share whose pick (or no pick) is exactly right;
- `when_exact`: of replies with an expected `when`, share exactly right (same kind, same value);
  `when_spurious`: of replies without one, share where a `when` was reported;
- `latency_ms`: median and p99 of one call, over `--repeat` passes.

Every reply is read at the same fixed `now`: 2026-11-23 10:00 (a Monday) in the reply's own
time zone.

With the development set of real replies (`../shared/data/replies-dev.jsonl`, see its
README; `--dev` to name another copy) it also reports, under `dev`, the same figures for its
held-out part (never trained or tuned on: tools/train_understanding.py), its training part,
all of it and each source, with `opt_out_precision`, `cpu_ms` (the thread's CPU time per call), `when_exact` over the reschedules that
carry an expected date or time, and a 10-bin `reliability` table (confidence said vs share
right) of `understand` on the held-out part. Each reply is read with the prompt it answers.

    python bench/understanding.py [--repeat 5] [--dev PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import regex

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from empathic.understand import Intent, understand

EVAL = REPO / "bench" / "data" / "understanding_eval.jsonl"
DEV = REPO.parent / "shared" / "data" / "replies-dev.jsonl"
NOW_LOCAL = datetime(2026, 11, 23, 10, 0)
INTENTS = ["opt_out", "confirm", "decline", "reschedule", "cancel", "help", "question", "thanks", "other"]
LANGUAGES = ["en", "es", "fr", "de", "pt", "it"]


@dataclass(frozen=True, slots=True)
class Guess:
    intent: str
    when: datetime | date | None
    option: str | None
    language: str


Reader = Callable[[str, datetime, str, Sequence[str] | None], Guess]


def ours(text: str, now: datetime, zone: str, options: Sequence[str] | None) -> Guess:
    u = understand(text, now=now, timezone=zone, options=options)
    return Guess(str(u.intent), u.when, u.option, u.language)


# What typical flow tools ship: first rule whose keyword appears as a word wins.
_BASELINE_RULES = [
    ("opt_out", {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout"}),
    ("help", {"help", "info"}),
    ("confirm", {"yes", "y", "ok", "okay", "confirm", "yep", "yeah", "sure", "c"}),
    ("decline", {"no", "n", "nope"}),
    ("reschedule", {"reschedule", "change", "later"}),
    ("thanks", {"thanks", "thank", "thx"}),
]
_BASELINE_WORD = regex.compile(r"[\p{L}\d]+")


def baseline_reader(text: str, now: datetime, zone: str, options: Sequence[str] | None) -> Guess:
    words = {w.casefold() for w in _BASELINE_WORD.findall(text)}
    intent = next((name for name, keys in _BASELINE_RULES if words & keys), "question" if "?" in text else "other")
    option = None
    if options:
        trimmed = text.strip().strip(".!)").casefold()
        option = next((o for o in options if o.casefold() == trimmed), None)
    return Guess(intent, None, option, "en")


def expected_when(value: str | None) -> datetime | date | None:
    if value is None:
        return None
    return datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)


def same_when(got: datetime | date | None, want: datetime | date | None) -> bool:
    if isinstance(want, datetime) or isinstance(got, datetime):
        return isinstance(got, datetime) and isinstance(want, datetime) and got == want
    return got == want


def evaluate(reader: Reader, items: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    guesses: list[Guess] = []
    latencies: list[float] = []
    for _ in range(repeat):
        guesses = []
        for item in items:
            now = NOW_LOCAL.replace(tzinfo=ZoneInfo(item["timezone"]))
            started = time.perf_counter()
            guess = reader(item["text"], now, item["timezone"], item.get("options"))
            latencies.append((time.perf_counter() - started) * 1000)
            guesses.append(guess)
    right = [g.intent == item["intent"] for g, item in zip(guesses, items, strict=True)]
    recall, f1 = {}, []
    for intent in INTENTS:
        truth = [item["intent"] == intent for item in items]
        said = [g.intent == intent for g in guesses]
        tp = sum(t and s for t, s in zip(truth, said, strict=True))
        precision = tp / sum(said) if sum(said) else 0.0
        rec = tp / sum(truth) if sum(truth) else 0.0
        recall[intent] = round(rec, 4)
        f1.append(2 * precision * rec / (precision + rec) if precision + rec else 0.0)
    by_language = {}
    for language in LANGUAGES:
        mine = [r for r, item in zip(right, items, strict=True) if item["language"] == language]
        by_language[language] = round(sum(mine) / len(mine), 4) if mine else None
    offered = [(g, item) for g, item in zip(guesses, items, strict=True) if item.get("options")]
    timed = [(g, item) for g, item in zip(guesses, items, strict=True) if item["when"] is not None]
    untimed = [(g, item) for g, item in zip(guesses, items, strict=True) if item["when"] is None]
    latencies.sort()
    return {
        "accuracy": round(sum(right) / len(items), 4),
        "macro_f1": round(sum(f1) / len(f1), 4),
        "recall": recall,
        "accuracy_by_language": by_language,
        "language_accuracy": round(sum(g.language == item["language"] for g, item in zip(guesses, items, strict=True)) / len(items), 4),
        "option_exact": round(sum(g.option == item["option"] for g, item in offered) / len(offered), 4),
        "when_exact": round(sum(same_when(g.when, expected_when(item["when"])) for g, item in timed) / len(timed), 4),
        "when_spurious": round(sum(g.when is not None for g, _ in untimed) / len(untimed), 4),
        "latency_ms": {
            "median": round(statistics.median(latencies), 4),
            "p99": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 4),
        },
    }


def dev_report(path: Path, repeat: int) -> dict[str, Any]:
    """The development set's figures: held-out, training part, all, by source, reliability."""
    sys.path.insert(0, str(REPO / "tools"))
    from train_understanding import Example, dev_examples, held_out

    examples = dev_examples(path)
    parts = {
        "held_out": [e for e in examples if held_out(e)],
        "train": [e for e in examples if not held_out(e)],
        "all": examples,
    }
    for source in sorted({e.source for e in examples}):
        parts[f"held_out_{source}"] = [e for e in parts["held_out"] if e.source == source]
    report: dict[str, Any] = {"items": {name: len(part) for name, part in parts.items()}}
    for name, part in parts.items():
        mine = _dev_run(part, repeat if name == "held_out" else 1, baseline=False)
        theirs = _dev_run(part, 1, baseline=True)
        report[name] = {"understand": mine.figures, "baseline_keywords": theirs.figures}
        if name == "held_out":
            report["reliability_held_out"] = _reliability(mine.confidences, mine.right)
        if name == "all":
            report["reliability_all"] = _reliability(mine.confidences, mine.right)
    return report


@dataclass(frozen=True, slots=True)
class _DevRun:
    figures: dict[str, Any]
    confidences: list[float]
    right: list[bool]


def _dev_run(examples: Sequence[Any], repeat: int, *, baseline: bool) -> _DevRun:
    zone = "America/New_York"
    said: list[str] = []
    confidences: list[float] = []
    whens: list[datetime | date | None] = []
    latencies: list[float] = []
    cpu: list[float] = []
    for _ in range(repeat):
        said, confidences, whens = [], [], []
        for e in examples:
            started, started_cpu = time.perf_counter(), time.thread_time()
            if baseline:
                guess = baseline_reader(e.reply, e.now, zone, None)
                intent, confidence, when = guess.intent, 1.0, guess.when
            else:
                u = understand(e.reply, now=e.now, timezone=zone, prompt=e.prompt)
                intent, confidence, when = str(u.intent), u.confidence, u.when
            latencies.append((time.perf_counter() - started) * 1000)
            cpu.append((time.thread_time() - started_cpu) * 1000)
            said.append(intent)
            confidences.append(confidence)
            whens.append(when)
    truth = [e.label for e in examples]
    right = [s == t for s, t in zip(said, truth, strict=True)]
    recall, precision = {}, {}
    for intent in INTENTS:
        n_true = sum(t == intent for t in truth)
        n_said = sum(s == intent for s in said)
        hits = sum(s == t == intent for s, t in zip(said, truth, strict=True))
        if n_true:
            recall[intent] = round(hits / n_true, 4)
        if n_said:
            precision[intent] = round(hits / n_said, 4)
    timed = [(w, e) for w, e in zip(whens, examples, strict=True) if e.label == "reschedule" and _dev_timed(e.expected)]
    by_language: dict[str, float] = {}
    for language in LANGUAGES:
        mine = [r for r, e in zip(right, examples, strict=True) if e.lang == language]
        if mine:
            by_language[language] = round(sum(mine) / len(mine), 4)
    latencies.sort()
    cpu.sort()
    figures = {
        "accuracy": round(sum(right) / len(right), 4) if right else None,
        "recall": recall,
        "precision": precision,
        "opt_out_precision": precision.get("opt_out", 0.0),
        "accuracy_by_language": by_language,
        "when_exact": round(sum(_dev_when_right(w, e.expected) for w, e in timed) / len(timed), 4) if timed else None,
        "when_items": len(timed),
        "latency_ms": {
            "median": round(statistics.median(latencies), 4),
            "p99": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 4),
        },
        # CPU time of the calling thread: the same call without other processes' share of the cores.
        "cpu_ms": {
            "median": round(statistics.median(cpu), 4),
            "p99": round(cpu[min(len(cpu) - 1, int(len(cpu) * 0.99))], 4),
        },
    }
    return _DevRun(figures, confidences, right)


def _dev_timed(expected: dict[str, Any]) -> bool:
    """Whether a reschedule names a day or time to check ("dontcare" days do not)."""
    day = expected.get("expected_date")
    return bool(expected.get("expected_datetime") or expected.get("expected_time") or day and day[:1].isdigit())


def _dev_when_right(got: datetime | date | None, expected: dict[str, Any]) -> bool:
    """The day matches, and the time of day too where one is expected (local wall time)."""
    if expected.get("expected_datetime"):
        want = datetime.fromisoformat(expected["expected_datetime"])
        return isinstance(got, datetime) and got.replace(tzinfo=None) == want
    if not (expected.get("expected_date") or "")[:1].isdigit():
        clock = expected["expected_time"]
        return isinstance(got, datetime) and got.strftime("%H:%M") == clock[:5]
    want_day = date.fromisoformat(expected["expected_date"])
    day = got.date() if isinstance(got, datetime) else got
    return day == want_day


def _reliability(confidences: list[float], right: list[bool]) -> list[dict[str, Any]]:
    """10 bins of confidence: how many replies, the mean confidence said, the share right."""
    table = []
    for b in range(10):
        low, high = b / 10, (b + 1) / 10
        inside = [(c, r) for c, r in zip(confidences, right, strict=True) if low <= c < high or (b == 9 and c == 1.0)]
        table.append({
            "bin": f"{low:.1f}-{high:.1f}",
            "items": len(inside),
            "confidence": round(sum(c for c, _ in inside) / len(inside), 3) if inside else None,
            "right": round(sum(r for _, r in inside) / len(inside), 3) if inside else None,
        })
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="passes over the set for latency (default 5)")
    parser.add_argument("--set", type=Path, default=EVAL, help="labelled replies (JSON lines); default the eval set")
    parser.add_argument("--dev", type=Path, default=DEV, help="the development set of real replies (skipped if absent)")
    args = parser.parse_args()
    items = [json.loads(line) for line in args.set.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert {item["intent"] for item in items} <= {str(i) for i in Intent}
    understand("warm up", now=NOW_LOCAL.replace(tzinfo=ZoneInfo("UTC")), timezone="UTC", options=["A", "B"])
    report = {
        "set": str(args.set.resolve().relative_to(REPO) if args.set.resolve().is_relative_to(REPO) else args.set),
        "items": len(items),
        "items_by_language": dict(Counter(item["language"] for item in items)),
        "items_by_intent": {i: sum(item["intent"] == i for item in items) for i in INTENTS},
        "items_with_when": sum(item["when"] is not None for item in items),
        "items_with_options": sum(bool(item.get("options")) for item in items),
        "now": NOW_LOCAL.isoformat() + " local to each reply's time zone",
        "understand": evaluate(ours, items, args.repeat),
        "baseline_keywords": evaluate(baseline_reader, items, args.repeat),
        "dev": dev_report(args.dev, args.repeat) if args.dev.exists() else None,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
