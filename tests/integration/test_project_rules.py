"""A project's own regulations.toml tightens the shipped sending rules, checked at load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from empathic.core.hours import Window
from empathic.core.topics import TopicKind
from empathic.engine.project import EXAMPLES, ProjectError, load_project


def project_with(tmp_path: Path, rules: str | None) -> Path:
    root = tmp_path / "project"
    shutil.copytree(EXAMPLES, root)
    if rules is not None:
        (root / "regulations.toml").write_text(rules)
    return root


def test_without_a_rules_file_the_shipped_rules_apply(tmp_path: Path) -> None:
    project = load_project(project_with(tmp_path, None))
    week = project.regulations.for_places({"US", "US-FL"}).hours_for(TopicKind.MARKETING)
    assert week is not None and week.days[0] == (Window.parse("08:00-20:00"),)


def test_project_rules_tighten_and_cannot_loosen(tmp_path: Path) -> None:
    rules = """
[[rule]]
where = "*"
kinds = ["marketing"]
hours = { weekdays = "10:00-19:00", weekend = "closed" }
cap = { limit = 2, period_hours = 168, same_topic = false }
source = "Our brand promise: two promotions a week at most, never at weekends"

[[rule]]
where = "US-FL"
kinds = ["marketing"]
hours = { every_day = "00:00-24:00" }
source = "An attempt to loosen Florida, which changes nothing"
"""
    project = load_project(project_with(tmp_path, rules))
    florida = project.regulations.for_places({"US", "US-FL"})
    week = florida.hours_for(TopicKind.MARKETING)
    assert week is not None and week.days[0] == (Window.parse("10:00-19:00"),) and week.days[5] == ()
    assert sorted((c.limit, c.period.days) for c in florida.caps) == [(2, 7), (3, 1)]


@pytest.mark.parametrize(
    ("rules", "words"),
    [
        ("[[rule]]\nwhere = 'US'\nkinds = ['marketing']\nhours = { every_day = '08:00-21:00' }", "source"),
        ("[[rule]]\nwhere = 'US-TX'\nkinds = ['marketing']\nhours = { every_day = '06:00-08:30' }\nsource = 'x'",
         "no hour at all for marketing"),
    ],
)
def test_bad_project_rules_stop_the_start_with_the_file_named(tmp_path: Path, rules: str, words: str) -> None:
    with pytest.raises(ProjectError, match=words) as caught:
        load_project(project_with(tmp_path, rules))
    assert "regulations.toml" in str(caught.value)
