"""A new `Any` needs a reason: no module gains a bare `Any`, one on a line without a comment.

A ratchet. BASELINE holds how many bare `Any` each module has (those without an entry have
none); a module above its count fails with the file and line of each, and one below it
fails until its count is lowered, so the numbers only go down. `Any` is counted wherever it
is written (annotations, aliases, casts) with `ast`; a `# type:` or `# noqa` comment is no
reason.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import empathic

# Bare `Any` per module; counts only go down (a failure prints the whole current dict to paste here).
BASELINE: dict[str, int] = {
    "empathic/api/app.py": 4,
    "empathic/api/catalog.py": 6,
    "empathic/api/fields.py": 8,
    "empathic/api/flows.py": 11,
    "empathic/api/inputs.py": 3,
    "empathic/api/messages.py": 4,
    "empathic/api/rules.py": 7,
    "empathic/api/simulator.py": 4,
    "empathic/api/understand.py": 1,
    "empathic/api/webhooks.py": 4,
    "empathic/channels/config.py": 1,
    "empathic/channels/http.py": 2,
    "empathic/channels/registry.py": 3,
    "empathic/channels/simulator.py": 1,
    "empathic/channels/smpp/channel.py": 4,
    "empathic/channels/smtp.py": 1,
    "empathic/channels/twilio.py": 3,
    "empathic/channels/vonage.py": 2,
    "empathic/core/template_limits.py": 82,
    "empathic/core/templates.py": 47,
    "empathic/engine/catalog.py": 3,
    "empathic/engine/events.py": 1,
    "empathic/engine/fallback.py": 1,
    "empathic/engine/gate.py": 1,
    "empathic/engine/lifecycle.py": 0,
    "empathic/engine/project.py": 3,
    "empathic/engine/runs.py": 5,
    "empathic/engine/transcripts.py": 16,
    "empathic/engine/webhooks.py": 8,
    "empathic/store/bulk.py": 18,
    "empathic/store/catalog.py": 3,
    "empathic/store/consent.py": 1,
    "empathic/store/db.py": 4,
    "empathic/store/events.py": 2,
    "empathic/store/fallbacks.py": 3,
    "empathic/store/flows.py": 7,
    "empathic/store/messages.py": 2,
    "empathic/store/preferences.py": 4,
    "empathic/store/privacy.py": 1,
    "empathic/store/schema.py": 2,
    "empathic/store/timers.py": 4,
}

ROOT = Path(empathic.__file__).parent.parent
FIX = (
    "Give each a real type (a dataclass, a TypedDict, a Protocol, a precise union; "
    "empathic.core.json.Json for a JSON object), or say why it must be Any in a comment on its line."
)


def bare_any(source: str) -> list[int]:
    """The line of each `Any` (from typing) in `source` whose line has no comment giving a reason."""
    tree = ast.parse(source)
    names: set[str] = set()  # what `Any` is imported as
    modules: set[str] = set()  # what `typing` is imported as
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "typing":
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "Any"}
        elif isinstance(node, ast.Import):
            modules |= {alias.asname or alias.name for alias in node.names if alias.name == "typing"}
    reasons = {
        token.start[0]
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT and not token.string.lstrip("# ").startswith(("type:", "noqa"))
    }
    lines = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and node.id in names
        or isinstance(node, ast.Attribute) and node.attr == "Any"
        and isinstance(node.value, ast.Name) and node.value.id in modules
    ]
    return sorted(line for line in lines if line not in reasons)


def _current() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for path in sorted((ROOT / "empathic").rglob("*.py")):
        lines = bare_any(path.read_text(encoding="utf-8"))
        if lines:
            found[path.relative_to(ROOT).as_posix()] = lines
    return found


def _as_baseline(current: dict[str, list[int]]) -> str:
    entries = "".join(f'    "{module}": {len(lines)},\n' for module, lines in current.items())
    return f"The whole count today (to paste as BASELINE):\nBASELINE: dict[str, int] = {{\n{entries}}}"


def test_no_module_gains_a_bare_any() -> None:
    current = _current()
    grown = {module: lines for module, lines in current.items() if len(lines) > BASELINE.get(module, 0)}
    if grown:
        where = "\n".join(
            f"{module}:{line}: bare Any ({len(lines)} in the module, {BASELINE.get(module, 0)} allowed)"
            for module, lines in grown.items()
            for line in lines
        )
        raise AssertionError(f"More bare Any than the baseline (every one of the module listed):\n{where}\n{FIX}\n"
                             f"{_as_baseline(current)}")


def test_baseline_is_as_low_as_the_code() -> None:
    current = _current()
    shed = {module: n for module, n in BASELINE.items() if len(current.get(module, [])) < n}
    if shed:
        which = "\n".join(
            f"{module}: {len(current.get(module, []))} bare Any, baseline {n}" for module, n in shed.items()
        )
        raise AssertionError(f"Fewer bare Any than the baseline; lower it in tests/test_typing.py:\n{which}\n"
                             f"{_as_baseline(current)}")


def test_what_counts_as_a_bare_any() -> None:
    source = (
        "import typing as t\n"
        "from typing import Any, Any as Anything\n"
        "a: Any\n"
        "b: dict[str, Anything] = {}\n"
        "c: t.Any\n"
        "d: Any  # a plugin's own object, whatever it is\n"
        "e: Any  # type: ignore[misc]\n"
        "f: list[Any] = []  # noqa: E501\n"
        "def g(x: int) -> Any: ...\n"
    )
    assert bare_any(source) == [3, 4, 5, 7, 8, 9]
    assert bare_any("from other import Any\nx: Any\n") == []
