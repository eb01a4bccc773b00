"""The rules file: what the shipped rules say, and clear errors for a bad one."""

from __future__ import annotations

import pytest

from empathic.core.hours import Window
from empathic.core.phones import subdivision_of
from empathic.core.regulations import RulesError, parse, shipped
from empathic.core.topics import TopicKind


def test_shipped_rules_each_cite_a_source_and_combine_by_place() -> None:
    regs = shipped()
    assert all(len(rule.source) > 20 for rule in regs.rules)
    default = regs.for_places(set())
    assert default.hours_for(TopicKind.MARKETING).days == ((Window.parse("08:00-21:00"),),) * 7  # type: ignore[union-attr]
    assert default.hours_for(TopicKind.TRANSACTIONAL) is None and default.caps == ()
    florida = regs.for_places({"US", "US-FL"})
    assert florida.hours_for(TopicKind.MARKETING).days == ((Window.parse("08:00-20:00"),),) * 7  # type: ignore[union-attr]
    assert [(c.limit, c.period.total_seconds(), c.same_topic) for c in florida.caps] == [(3, 86400.0, True)]
    assert florida.hours_for(TopicKind.CONVERSATIONAL).days == ((Window.parse("08:00-21:00"),),) * 7  # type: ignore[union-attr]
    canada = regs.for_places({"CA", "CA-QC"}).hours_for(TopicKind.MARKETING)
    assert canada is not None and canada.days[0] == (Window.parse("09:00-21:00"),) and canada.days[6] == (Window.parse("10:00-18:00"),)


def test_a_workspace_can_tighten_but_never_loosen() -> None:
    loose = parse('[[rule]]\nwhere = "US-FL"\nkinds = ["marketing"]\nhours = { every_day = "00:00-24:00" }\ncap = { limit = 50, period_hours = 1 }\nsource = "our own wish"')
    tight = parse('[[rule]]\nwhere = "*"\nkinds = ["marketing"]\nhours = { every_day = "10:00-18:00", sun = "closed" }\nsource = "our brand promise"')
    florida = shipped().tightened_by(loose).tightened_by(tight).for_places({"US", "US-FL"})
    week = florida.hours_for(TopicKind.MARKETING)
    assert week is not None and week.days[0] == (Window.parse("10:00-18:00"),) and week.days[6] == ()
    assert sorted(c.limit for c in florida.caps) == [3, 50]  # the stricter cap still applies


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[[rule]]\nwhere = 'US'\nkinds = ['marketing']\nhours = { every_day = '08:00-21:00' }", "source"),
        ("[[rule]]\nwhere = 'usa'\nkinds = ['marketing']\nhours = { every_day = '08:00-21:00' }\nsource = 'x'", "where"),
        ("[[rule]]\nwhere = 'US'\nkinds = ['spam']\nhours = { every_day = '08:00-21:00' }\nsource = 'x'", "kinds"),
        ("[[rule]]\nwhere = 'US'\nkinds = ['marketing']\nhours = { funday = '08:00-21:00' }\nsource = 'x'", "funday"),
        ("[[rule]]\nwhere = 'US'\nkinds = ['marketing']\nhours = { mon = '21:00-08:00' }\nsource = 'x'", "hours.mon"),
        ("[[rule]]\nwhere = 'US'\nkinds = ['marketing']\nhours = { every_day = 'closed' }\nsource = 'x'", "at least one"),
        ("[[rule]]\nwhere = 'US'\nkinds = ['marketing']\ncap = { limit = 0, period_hours = 24 }\nsource = 'x'", "cap.limit"),
        ("[[rule]]\nwhere = 'US'\nkinds = ['marketing']\nsource = 'x'", "hours, a cap"),
        ("[[rule]]\nwhere = 'US'\nkinds = ['marketing']\nsource = 'x'\ncolour = 'red'", "colour"),
        ("rule = [", "TOML"),
        ("[rules]", "top-level"),
    ],
)
def test_bad_rules_files_say_which_rule_and_field(text: str, words: str) -> None:
    with pytest.raises(RulesError, match="rule|TOML|top-level") as caught:
        parse(text, "my.toml")
    assert words in str(caught.value) and str(caught.value).startswith("my.toml")


def test_rules_that_leave_no_hour_are_an_error_naming_the_places() -> None:
    night = parse('[[rule]]\nwhere = "US"\nkinds = ["marketing"]\nhours = { every_day = "22:00-23:00" }\nsource = "x"')
    with pytest.raises(RulesError, match="no hour at all for marketing"):
        shipped().tightened_by(night).for_places({"US"})


@pytest.mark.parametrize(
    ("number", "place"),
    [("+13055550100", "US-FL"), ("+14055550100", "US-OK"), ("+14105550100", "US-MD"), ("+12145550100", "US-TX"),
     ("+12065550100", "US-WA"), ("+14155550100", "US-CA"), ("+12025550100", "US-DC"), ("+15145550100", "CA-QC"),
     ("+18005550100", None), ("+442079460958", None), ("+33612345678", None)],
)
def test_subdivision_from_the_area_code(number: str, place: str | None) -> None:
    assert subdivision_of(number) == place


def test_the_shipped_area_code_table_matches_libphonenumber() -> None:
    # The table is extracted once (the geocoder costs ~100 MB to load at run time); after a
    # phonenumbers upgrade this says whether to rerun tools/nanp_area_codes.py.
    import importlib.util
    import json
    from pathlib import Path

    tool = Path(__file__).resolve().parents[2] / "tools" / "nanp_area_codes.py"
    spec = importlib.util.spec_from_file_location("nanp_area_codes", tool)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shipped_table = json.loads(module.OUT.read_text())["area_codes"]
    assert module.build() == shipped_table
    assert len(shipped_table) > 400
