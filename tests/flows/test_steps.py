"""Step kinds: each module owns its schema fragment and record, registered once in `KINDS` (the
schema's order), and is shown in docs/flows.md."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from empathic.flows import model, steps
from empathic.flows.schema import FLOW_SCHEMA

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "flows.md").read_text()
STEP = FLOW_SCHEMA["properties"]["steps"]["items"]


def test_every_kind_is_one_module_with_its_schema_and_record() -> None:
    for kind in steps.KINDS:
        module = sys.modules[kind.parse.__module__]
        assert kind.schema is module.SCHEMA, module.__name__
        assert kind.action.__module__ == module.__name__ and issubclass(kind.action, model.Action)
        assert kind.execute.__module__ == module.__name__
    assert set(steps.BY_ACTION) == set(model.Action.__subclasses__())  # no record without its kind
    assert len(steps.BY_KEY) == sum(len(kind.keys) for kind in steps.KINDS)  # no key in two kinds


def test_the_schema_is_the_kinds_in_their_order() -> None:
    keys = list(steps.BY_KEY)
    fields = [name for kind in steps.KINDS for name in kind.fields]
    assert list(STEP["properties"]) == ["id", "next", *keys, *fields]
    assert [one["required"] for one in STEP["oneOf"]] == [[key] for key in keys]
    for key, kind in steps.BY_KEY.items():
        assert STEP["properties"][key] == kind.schema
    assert len(fields) == len(set(fields))  # no field in two kinds


def test_every_kind_has_its_section_with_an_example_in_the_docs() -> None:
    sections = dict(re.findall(r"^### (.+?)\n(.*?)(?=^##)", DOCS, re.MULTILINE | re.DOTALL))
    for kind in steps.KINDS:
        heading = next((h for h in sections if h.split()[0] == kind.keys[0]), None)
        assert heading is not None, f"docs/flows.md has no section `### {kind.keys[0]}`"
        examples = re.findall(r"```yaml\n(?!# transcript)(.*?)```", sections[heading], re.DOTALL)
        for key in kind.keys:
            assert any(re.search(rf"^\s+(- )?{key}:", e, re.MULTILINE) for e in examples), f"no example of `{key}:`"
