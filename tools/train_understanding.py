"""Train the reply-understanding model shipped in empathic/understand/data/ (reproducibly).

Inputs, read in a fixed order:
- the development set `../shared/data/replies-dev.jsonl` (or `--dev`), minus its held-out
  part: every reply whose `id` hashes (SHA-256) to 0 modulo 5, about 20 %, is never trained
  or tuned on (bench/understanding.py reports it separately);
- the project's own multilingual replies in tools/understanding_data/*.txt.

Each reply goes through the same rules `understand` runs (`empathic.understand.understanding.
evidence`), its feature strings are hashed into `BUCKETS` rows, and a multinomial logistic
regression (scikit-learn, L2, lbfgs: deterministic) is fitted. The softmax temperature is
then fitted on out-of-fold predictions (5 folds by id hash) so that confidences are
calibrated. Output: `intent_model.bin` (zlib of float32 weights, row-major buckets × labels)
and `intent_model.json` (labels, biases, temperature, digests of the inputs and the weights).

    pip install -e '.[train]'
    python tools/train_understanding.py            # writes empathic/understand/data/
    python tools/train_understanding.py --check    # retrains and compares with the shipped files
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import regex  # noqa: E402

from empathic.understand.model import FEATURE_VERSION, bucket, features  # noqa: E402
from empathic.understand.text import fold  # noqa: E402
from empathic.understand.understanding import evidence  # noqa: E402

DEV = REPO.parent / "shared" / "data" / "replies-dev.jsonl"
OWN = REPO / "tools" / "understanding_data"
EVALS = (REPO / "bench" / "data" / "understanding_eval.jsonl", REPO / "bench" / "data" / "understanding_heldout.jsonl")
OUT = REPO / "empathic" / "understand" / "data"
LABELS = ("confirm", "decline", "reschedule", "cancel", "opt_out", "help", "question", "thanks", "other")
BUCKETS = 1 << 18
C = 4.0
ZONE = ZoneInfo("America/New_York")
# Own examples carry no date; any fixed Monday morning does.
OWN_NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZONE)


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled reply, as the bench and the trainer read it."""

    id: str
    source: str
    reply: str
    label: str
    lang: str
    prompt: str | None
    now: datetime
    expected: dict[str, object]


def share(identifier: str, parts: int = 5) -> int:
    """The fold of a reply: SHA-256 of its id, modulo `parts` (fold 0 is the held-out part)."""
    return int(hashlib.sha256(identifier.encode()).hexdigest()[:12], 16) % parts


def held_out(example: Example) -> bool:
    return example.source != "own" and share(example.id) == 0


def dev_examples(path: Path = DEV) -> list[Example]:
    """The development set; `now` is the item's day at midnight in New York (2019-03-01 when absent)."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        now = datetime.fromisoformat(item.get("now") or "2019-03-01").replace(tzinfo=ZONE)
        expected = {k: item[k] for k in ("expected_datetime", "expected_date", "expected_time", "date_from_prompt") if k in item}
        found.append(Example(item["id"], item["source"], item["reply"], item["label"], item.get("lang", "en"),
                             item.get("prompt"), now, expected))
    return found


def own_examples(folder: Path = OWN) -> list[Example]:
    """The project's own replies: `<lang>.txt` files of "label | reply" lines ("#" starts a comment)."""
    found = []
    for path in sorted(folder.glob("*.txt")):
        lang = path.stem.split("_")[0]
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            label, _, reply = (part.strip() for part in line.partition("|"))
            if label not in LABELS or not reply:
                raise ValueError(f"{path.name}:{number}: expected 'label | reply' with a known label")
            found.append(Example(f"own:{path.stem}:{number:05d}", "own", reply, label, lang, None, OWN_NOW, {}))
    return found


def feature_rows(examples: Sequence[Example]) -> list[list[int]]:
    rows = []
    for example in examples:
        seen = evidence(example.reply, now=example.now, timezone=ZONE, prompt=example.prompt)
        rows.append([bucket(name, BUCKETS) for name in features(seen)])
    return rows


@dataclass(frozen=True, slots=True)
class Fitted:
    weights: bytes  # float32, row-major buckets × labels
    bias: list[float]
    temperature: float


def fit(rows: Sequence[list[int]], labels: Sequence[str], *, c: float = C, calibrate: bool = True,
        folds: Sequence[int] | None = None) -> Fitted:
    """Logistic regression over hashed counts; temperature from out-of-fold predictions."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    def matrix(selected: Iterable[int]) -> csr_matrix:
        indptr, indices, data = [0], [], []
        for i in selected:
            counts: dict[int, int] = {}
            for b in rows[i]:
                counts[b] = counts.get(b, 0) + 1
            for b in sorted(counts):
                indices.append(b)
                data.append(float(counts[b]))
            indptr.append(len(indices))
        return csr_matrix((np.array(data), np.array(indices), np.array(indptr)), shape=(len(indptr) - 1, BUCKETS))

    y = np.array([LABELS.index(label) for label in labels])

    def train(selected: list[int]) -> LogisticRegression:
        model = LogisticRegression(C=c, max_iter=2000)
        model.fit(matrix(selected), y[selected])
        return model

    temperature = 1.0
    if calibrate:
        assert folds is not None
        logits = np.zeros((len(rows), len(LABELS)))
        for fold in range(5):
            inside = [i for i in range(len(rows)) if folds[i] != fold]
            outside = [i for i in range(len(rows)) if folds[i] == fold]
            model = train(inside)
            scores = np.full((len(outside), len(LABELS)), -1e9)
            scores[:, model.classes_] = model.decision_function(matrix(outside))
            logits[outside] = scores
        temperature = _temperature(logits, y)
    model = train(list(range(len(rows))))
    weights = np.zeros((BUCKETS, len(LABELS)), dtype=np.float32)
    weights[:, model.classes_] = model.coef_.T
    bias = [0.0] * len(LABELS)
    for j, cls in enumerate(model.classes_):
        bias[int(cls)] = float(model.intercept_[j])
    return Fitted(weights.astype("<f4").tobytes(), bias, temperature)


def _temperature(logits: object, y: object) -> float:
    """The softmax temperature (0.3–3, step 0.01) with the least negative log-likelihood."""
    import numpy as np

    scores, truth = np.asarray(logits), np.asarray(y)
    best, best_loss = 1.0, math.inf
    for step in range(30, 301):
        t = step / 100
        z = scores / t
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = float(-log_p[np.arange(len(truth)), truth].mean())
        if loss < best_loss - 1e-12:
            best, best_loss = t, loss
    return best


def training_set(dev: Path = DEV, own: Path = OWN) -> list[Example]:
    """What the shipped model learns from: the dev set's training part and the own replies, sorted by id.

    Own replies that are also in bench/data/understanding_eval.jsonl or understanding_heldout.jsonl
    (once folded) are left out, so those sets stay unseen.
    """
    unseen = {
        _plain(json.loads(line)["text"])
        for path in EVALS for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    }
    examples = [e for e in dev_examples(dev) if not held_out(e)]
    examples += [e for e in own_examples(own) if _plain(e.reply) not in unseen]
    return sorted(examples, key=lambda e: e.id)


def _plain(text: str) -> str:
    return " ".join(regex.findall(r"[\p{L}\p{N}]+", fold(text)))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(dev: Path = DEV, own: Path = OWN) -> tuple[bytes, dict[str, object]]:
    examples = training_set(dev, own)
    fitted = fit(feature_rows(examples), [e.label for e in examples], folds=[share("calibration:" + e.id) for e in examples])
    meta: dict[str, object] = {
        "feature_version": FEATURE_VERSION,
        "labels": list(LABELS),
        "buckets": BUCKETS,
        "bias": [round(b, 6) for b in fitted.bias],
        "temperature": fitted.temperature,
        "sha256": hashlib.sha256(fitted.weights).hexdigest(),
        "trained_on": {
            "dev_sha256": _digest(dev),
            "own_sha256": {p.name: _digest(p) for p in sorted(own.glob("*.txt"))},
            "examples": len(examples),
            "by_source": {s: sum(e.source == s for e in examples) for s in sorted({e.source for e in examples})},
            "held_out": "dev ids whose SHA-256 is 0 modulo 5",
            "c": C,
        },
    }
    return fitted.weights, meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=Path, default=DEV)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="retrain and compare with the shipped weights")
    args = parser.parse_args()
    weights, meta = build(args.dev)
    if args.check:
        shipped = json.loads((args.out / "intent_model.json").read_text(encoding="utf-8"))
        same = shipped["sha256"] == meta["sha256"] and shipped["trained_on"] == meta["trained_on"]
        print("the shipped model is what this script trains" if same else "the shipped model differs")
        raise SystemExit(0 if same else 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "intent_model.bin").write_bytes(zlib.compress(weights, 9))
    (args.out / "intent_model.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: meta[k] for k in ("temperature", "sha256", "trained_on")}, indent=2))


if __name__ == "__main__":
    main()
