"""Template benchmark: what rendering the Acme project's templates costs, limits included.

Renders every text template of `empathic/examples/acme/templates` and every part of their
email variants (subject, plain text, HTML) with a typical contact and event, `--repeat` times
per round; prints, per template, the best round's mean time per render in microseconds (best
of `--rounds`: the least disturbed by the rest of the machine), and their sum.

    python bench/templates.py [--repeat 2000] [--rounds 7]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from empathic.core.templates import Template, compile_email, compile_template  # noqa: E402

TEMPLATES = REPO / "empathic" / "examples" / "acme" / "templates"
CONTACT = {"phone": "+14155550100", "email": "ana@example.com", "attributes": {"first_name": "Ana", "tier": "gold"}}
EVENT = {
    "id": "evt_1", "type": "order.dispatched",
    "data": {"order_id": "A-1001", "expected_date": "Friday", "tracking_url": "https://t.example/A-1001",
             "courier": "UPS", "eta": "14:00", "location": "front door"},
}


def templates() -> dict[str, Template]:
    found: dict[str, Template] = {}
    for path in sorted(TEMPLATES.glob("*.txt")):
        found[path.stem] = compile_template(path.stem, path.read_text())
        variant = path.with_suffix(".email.toml")
        if variant.exists():
            email = compile_email(path.stem, **tomllib.loads(variant.read_text()))
            for part in ("subject", "text", "html"):
                template = getattr(email, part)
                if template is not None:
                    found[template.name] = template
    return found


def best_mean_us(template: Template, repeat: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeat):
            template.render(contact=CONTACT, event=EVENT)
        best = min(best, (time.perf_counter() - started) / repeat)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    each = {name: round(best_mean_us(t, args.repeat, args.rounds), 2) for name, t in templates().items()}
    print(json.dumps({"us_per_render": each, "us_all": round(sum(each.values()), 2),
                      "repeat": args.repeat, "rounds": args.rounds}, indent=2))


if __name__ == "__main__":
    main()
