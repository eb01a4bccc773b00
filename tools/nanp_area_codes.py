"""Regenerate empathic/core/data/nanp_area_codes.json from libphonenumber's geocoder.

The geocoder's data costs ~100 MB of memory and 0.4 s to import; the platform needs only
which US state or Canadian province each North American area code belongs to, so that is
extracted here once and shipped as a small file. Run after upgrading phonenumbers:

    .venv/bin/python tools/nanp_area_codes.py
"""

from __future__ import annotations

import json
from pathlib import Path

import phonenumbers
from phonenumbers import geocoder

from empathic.core.phones import SUBDIVISION_NAMES

OUT = Path(__file__).resolve().parent.parent / "empathic" / "core" / "data" / "nanp_area_codes.json"


def build() -> dict[str, str]:
    table: dict[str, str] = {}
    for area in range(200, 1000):
        number = phonenumbers.parse(f"+1{area}5550100")
        region = phonenumbers.region_code_for_number(number)
        if region not in ("US", "CA") or not phonenumbers.is_valid_number(number):
            continue
        place = geocoder.description_for_number(number, "en")
        head, _, tail = place.rpartition(", ")
        code = tail if head and len(tail) == 2 and tail.isupper() else SUBDIVISION_NAMES.get(place)
        if code:
            table[str(area)] = f"{region}-{code}"
    return table


if __name__ == "__main__":
    table = build()
    OUT.write_text(json.dumps({"source": f"libphonenumber geocoder via phonenumbers {phonenumbers.__version__}", "area_codes": table}, indent=0, sort_keys=True) + "\n")
    print(f"{len(table)} area codes -> {OUT}")
