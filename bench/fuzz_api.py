"""Schemathesis against the API for long runs: tests/integration/test_openapi_fuzz.py with
many more examples per operation, on one backend, reporting instead of stopping.

Every operation of /openapi.json gets `--examples` generated requests (valid and invalid, at
real ids too) on an engine with one of every resource; a 5xx or a documented answer off its
schema is a failure (hypothesis shrinks it to a minimal request). Prints one JSON object:
{"backend", "operations", "requests", "seconds", "failures": [{"operation", "error"}]}.

    python bench/fuzz_api.py [--examples 500] [--backend sqlite|postgresql] [--only /v1/contacts]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.test_openapi_fuzz import InProcessApi, fuzz, operations  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500, help="generated requests per operation")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--only", default="", help="only operations whose path contains this")
    args = parser.parse_args()
    started = time.monotonic()
    failures = []
    chosen = [(m, p) for m, p in operations() if args.only in p]
    with tempfile.TemporaryDirectory(prefix="fuzz-api-") as data, InProcessApi(Path(data), args.backend) as server:
        schema = server.schema()
        for method, path in chosen:
            try:
                fuzz(server, schema[path][method], args.examples)
            except BaseException as error:  # noqa: BLE001 - schemathesis raises a group of failures
                if isinstance(error, KeyboardInterrupt):
                    raise
                failures.append({"operation": f"{method} {path}",
                                 "error": "".join(traceback.format_exception_only(error)).strip()[:4000]})
        sent = server.sent
    print(json.dumps({
        "backend": args.backend, "operations": len(chosen), "requests": sent,
        "seconds": round(time.monotonic() - started, 1), "failures": failures,
    }, indent=1))


if __name__ == "__main__":
    main()
