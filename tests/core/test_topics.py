"""Topics' policy for unknown outcomes (core.topics) and its `[topics]` form in empathic.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from empathic.core.topics import DEFAULT_TOPICS, HOLD, OnUnknown, Topics, TopicKind, UnknownPolicy
from empathic.engine.project import ProjectError, load_project


def test_codes_and_alerts_are_resent_once_the_rest_held() -> None:
    topics = Topics(dict(DEFAULT_TOPICS))
    resend_once = UnknownPolicy(OnUnknown.RESEND, 1)
    assert {name: topics.unknown_policy(name) for name in DEFAULT_TOPICS} == {
        "otp": resend_once, "transactional": resend_once,
        "conversational": HOLD, "marketing": HOLD, "compliance": HOLD,
    }
    assert topics.unknown_policy("gone") == HOLD  # a topic no longer declared: never re-sent blindly


def load(tmp_path: Path, topics: str) -> Topics:
    (tmp_path / "empathic.toml").write_text(f'[sender]\nname = "Acme"\n\n[topics]\n{topics}', encoding="utf-8")
    return load_project(tmp_path, with_flows=False).topics


def test_a_topic_may_choose_its_policy(tmp_path: Path) -> None:
    topics = load(tmp_path, 'deals = "marketing"\n'
                            'security = { kind = "transactional", resends = 2, on_unknown = "resend" }\n'
                            'offers = { kind = "marketing", on_unknown = "resend" }\n'
                            'transactional = { kind = "transactional", on_unknown = "hold" }\n'
                            'orders = { kind = "transactional" }\n')
    assert topics.kinds["security"] is TopicKind.TRANSACTIONAL and topics.kinds["offers"] is TopicKind.MARKETING
    assert topics.unknown_policy("deals") == HOLD
    assert topics.unknown_policy("security") == UnknownPolicy(OnUnknown.RESEND, 2)
    assert topics.unknown_policy("offers") == UnknownPolicy(OnUnknown.RESEND, 1)
    assert topics.unknown_policy("transactional") == HOLD
    assert topics.unknown_policy("orders") == UnknownPolicy(OnUnknown.RESEND, 1)  # its kind's default


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ('x = { kind = "marketing", on_unknown = "retry" }', "topic 'x': on_unknown must be resend or hold, not 'retry'"),
        ('x = { kind = "otp", on_unknown = "resend", resends = 0 }', "topic 'x': resends must be a whole number from 1 to 5"),
        ('x = { kind = "otp", on_unknown = "resend", resends = 6 }', "resends must be a whole number from 1 to 5"),
        ('x = { kind = "otp", on_unknown = "resend", resends = true }', "resends must be a whole number from 1 to 5"),
        ('x = { kind = "otp", on_unknown = "hold", resends = 2 }', 'topic \'x\': resends goes with on_unknown = "resend"'),
        ('x = { kind = "otp", resends = 2 }', 'resends goes with on_unknown = "resend"'),
        ('x = { kind = "otp", unknown = "hold" }', "topic 'x': unknown keys unknown; a topic has kind, on_unknown, resends"),
        ('x = { on_unknown = "hold" }', "topic 'x' has unknown kind None"),
        ('x = "fax"', "topic 'x' has unknown kind 'fax'"),
    ],
)
def test_a_bad_topic_stops_the_start_naming_it(tmp_path: Path, entry: str, error: str) -> None:
    with pytest.raises(ProjectError, match="empathic.toml") as caught:
        load(tmp_path, entry + "\n")
    assert error in str(caught.value)
