"""Step kinds: each is registered once, in the JSON Schema, and shown in docs/flows.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from empathic.flows import model, steps
from empathic.flows.schema import _STEP_KINDS

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "flows.md").read_text()


def test_every_action_of_the_model_has_one_kind() -> None:
    assert set(steps.BY_ACTION) == set(get_args(model.Action))
    assert len(steps.BY_KEY) == sum(len(kind.keys) for kind in steps.KINDS)  # no key in two kinds


def test_the_kinds_are_the_schemas_in_its_order() -> None:
    assert list(steps.BY_KEY) == list(_STEP_KINDS)


def test_every_kind_has_its_section_with_an_example_in_the_docs() -> None:
    sections = dict(re.findall(r"^### (.+?)\n(.*?)(?=^##)", DOCS, re.MULTILINE | re.DOTALL))
    for kind in steps.KINDS:
        heading = next((h for h in sections if h.split()[0] == kind.keys[0]), None)
        assert heading is not None, f"docs/flows.md has no section `### {kind.keys[0]}`"
        examples = re.findall(r"```yaml\n(?!# transcript)(.*?)```", sections[heading], re.DOTALL)
        for key in kind.keys:
            assert any(re.search(rf"^\s+(- )?{key}:", e, re.MULTILINE) for e in examples), f"no example of `{key}:`"
