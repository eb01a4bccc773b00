"""Every flow example in docs/flows.md is valid and its transcript passes on the real engine."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from empathic.flows import loader
from empathic.engine.transcripts import run_file

REPO = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def examples() -> list[tuple[str, str, list[str]]]:
    """(flow name, flow text, its transcripts) in the order of the page."""
    found: list[tuple[str, str, list[str]]] = []
    for block in BLOCK.findall((REPO / "docs" / "flows.md").read_text()):
        if block.startswith("# transcript"):
            found[-1][2].append(block)
        else:
            found.append((loader.parse(block).name, block, []))
    return found


EXAMPLES = examples()
FLOWS = {name: text for name, text, _ in EXAMPLES}


def test_every_example_is_valid_and_has_a_transcript() -> None:
    assert len(EXAMPLES) >= 10
    assert [name for name, _, transcripts in EXAMPLES if not transcripts] == []


@pytest.mark.parametrize("name", [n for n, _, _ in EXAMPLES])
async def test_the_example_plays_as_documented(name: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "flows").mkdir(parents=True)
    shutil.copy(REPO / "empathic" / "examples" / "acme" / "empathic.toml", project / "empathic.toml")
    shutil.copytree(REPO / "empathic" / "examples" / "acme" / "templates", project / "templates")
    wanted = [name]
    while wanted:  # the example and the subflows it runs
        flow = loader.parse(FLOWS[wanted.pop()])
        (project / "flows" / f"{flow.name}.yaml").write_text(FLOWS[flow.name])
        wanted += [s for s in flow.subflows if not (project / "flows" / f"{s}.yaml").exists()]
    transcripts = next(t for n, _, t in EXAMPLES if n == name)
    for i, text in enumerate(transcripts):
        path = project / "flows" / f"{name}.test.yaml"
        path.write_text(f"flow: {name}\n{text}")
        result = await run_file(path)
        failures = [f"{c.name}: {c.failure.message}" for c in result.cases if c.failure]
        assert result.error is None and failures == [], f"transcript {i + 1} of {name}"
