"""Every shipped flow's transcript tests pass on the real engine; a wrong transcript fails,
naming its line; `empathic flows check/test` report like a compiler."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from empathic.cli import app
from empathic.engine.transcripts import run_file

EXAMPLES = Path(__file__).resolve().parents[2] / "empathic" / "examples"
TRANSCRIPTS = sorted(EXAMPLES.glob("*/flows/*.test.yaml"))


def test_every_shipped_flow_has_a_transcript() -> None:
    flows = [p for p in EXAMPLES.glob("*/flows/*.yaml") if not p.name.endswith(".test.yaml")]
    assert len(flows) >= 1
    missing = [p.name for p in flows if not p.with_name(p.stem + ".test.yaml").exists()]
    assert missing == []


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
async def test_shipped_transcripts_pass(path: Path) -> None:
    result = await run_file(path)
    failures = [f"{c.name} (line {c.failure.line}): {c.failure.message}" for c in result.cases if c.failure]
    assert result.error is None and failures == [] and len(result.cases) >= 3


async def test_a_wrong_transcript_fails_at_its_line(tmp_path: Path) -> None:
    project = tmp_path / "acme"
    shutil.copytree(EXAMPLES / "acme", project)
    transcript = project / "flows" / "appointment-reminder.test.yaml"
    text = transcript.read_text().replace('expect: "you\'re confirmed"', 'expect: "you are NOT confirmed"')
    transcript.write_text(text)
    result = await run_file(transcript)
    (failed,) = [c for c in result.cases if not c.ok]
    assert failed.name == "A confirms"
    line = text.splitlines().index('      - expect: "you are NOT confirmed"') + 1
    assert failed.failure is not None and failed.failure.line == line
    assert "got \"Great, you're confirmed. See you tomorrow!\"" in failed.failure.message


def test_flows_check_reports_each_problem_with_file_and_line(tmp_path: Path) -> None:
    project = tmp_path / "acme"
    shutil.copytree(EXAMPLES / "acme", project)
    bad = project / "flows" / "broken.yaml"
    bad.write_text("flow: broken\ntopic: nope\nsteps:\n  - send: hi\n    next: nowhere\n")
    runner = CliRunner()
    result = runner.invoke(app, ["flows", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:2: topic: unknown topic 'nope'" in result.output
    assert f"{bad}:5: steps[0].next: no step with id 'nowhere'" in result.output
    good = runner.invoke(app, ["flows", "check", str(project / "flows" / "appointment-reminder.yaml")])
    assert good.exit_code == 0 and "ok: 1 flow file(s)" in good.output
    schema = runner.invoke(app, ["flows", "schema"])
    assert schema.exit_code == 0 and '"title": "Empathic flow (format 1)"' in schema.output


def test_flows_test_command_exits_non_zero_on_a_failure(tmp_path: Path) -> None:
    project = tmp_path / "acme"
    shutil.copytree(EXAMPLES / "acme", project)
    transcript = project / "flows" / "appointment-reminder.test.yaml"
    runner = CliRunner()
    ok = runner.invoke(app, ["flows", "test", str(project / "flows" / "appointment-reminder.yaml")])
    assert ok.exit_code == 0, ok.output
    assert ok.output.count("pass ") == 4
    transcript.write_text(transcript.read_text().replace("outcome: no_answer", "outcome: confirmed"))
    failed = runner.invoke(app, ["flows", "test", str(transcript)])
    assert failed.exit_code == 1 and "run outcome is 'no_answer', expected 'confirmed'" in failed.output
