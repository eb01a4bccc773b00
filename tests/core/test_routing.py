"""Choosing a channel: routes serving a destination, priority, sticky channel, health."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from empathic.core.routing import Destination, NoRoute, Reach, Route, candidates, choose, next_after

US_TXN = Destination(Reach.SMS, "US", "fixed_line_or_mobile", "orders", "transactional")
ROUTES = [
    Route("eu-carrier", countries=frozenset({"DE", "FR"})),
    Route("us-backup", countries=frozenset({"US", "CA"}), priority=2),
    Route("us-main", countries=frozenset({"US", "CA"}), priority=1),
    Route("us-marketing", countries=frozenset({"US"}), topics=frozenset({"marketing"})),
    Route("mail", reach=Reach.EMAIL),
]


def test_serving_routes_in_priority_order() -> None:
    assert [r.channel for r in candidates(ROUTES, US_TXN)] == ["us-main", "us-backup"]
    assert choose(ROUTES, US_TXN) == "us-main"


def test_topic_names_and_kinds_select_routes() -> None:
    promo = Destination(Reach.SMS, "US", None, "deals", "marketing")
    assert choose(ROUTES, promo) == "us-marketing"  # priority 0 beats us-main
    named = [Route("otp-only", topics=frozenset({"login-codes"})), Route("rest", priority=5)]
    assert choose(named, Destination(Reach.SMS, "US", None, "login-codes", "otp")) == "otp-only"
    assert choose(named, Destination(Reach.SMS, "US", None, "orders", "transactional")) == "rest"


def test_number_types_and_reach() -> None:
    routes = [Route("mobile-only", number_types=frozenset({"mobile"})), Route("mail", reach=Reach.EMAIL)]
    assert choose(routes, Destination(Reach.SMS, "GB", "mobile", "t", "transactional")) == "mobile-only"
    with pytest.raises(NoRoute, match="GB"):
        choose(routes, Destination(Reach.SMS, "GB", "fixed_line", "t", "transactional"))
    assert choose(routes, Destination(Reach.EMAIL, None, None, "t", "transactional")) == "mail"


def test_sticky_wins_only_when_serving_and_up() -> None:
    assert choose(ROUTES, US_TXN, sticky="us-backup") == "us-backup"
    assert choose(ROUTES, US_TXN, sticky="eu-carrier") == "us-main"  # does not serve the US
    assert choose(ROUTES, US_TXN, sticky="us-backup", down={"us-backup"}) == "us-main"


def test_down_channels_are_skipped_but_a_queue_waits_when_all_are_down() -> None:
    assert choose(ROUTES, US_TXN, down={"us-main"}) == "us-backup"
    assert choose(ROUTES, US_TXN, down={"us-main", "us-backup"}) == "us-main"
    assert next_after(ROUTES, US_TXN, "us-main", down={"us-main"}) == "us-backup"
    assert next_after(ROUTES, US_TXN, "us-main", down={"us-main", "us-backup"}) is None


names = st.sampled_from(["a", "b", "c", "d"])
routes_st = st.lists(
    st.builds(
        Route,
        channel=names,
        countries=st.frozensets(st.sampled_from(["US", "DE"]), max_size=2),
        topics=st.frozensets(st.sampled_from(["marketing", "orders"]), max_size=2),
        priority=st.integers(0, 3),
    ),
    max_size=6,
)
dest_st = st.builds(
    Destination,
    reach=st.just(Reach.SMS),
    country=st.sampled_from(["US", "DE", None]),
    number_type=st.none(),
    topic=st.sampled_from(["orders", "deals"]),
    kind=st.sampled_from(["transactional", "marketing"]),
)


@given(routes_st, dest_st, st.none() | names, st.sets(names))
def test_choice_always_serves_the_destination(routes: list[Route], dest: Destination, sticky: str | None, down: set[str]) -> None:
    serving = candidates(routes, dest)
    try:
        chosen = choose(routes, dest, sticky=sticky, down=down)
    except NoRoute:
        assert serving == []
        return
    assert chosen in {r.channel for r in serving}
    up = [r.channel for r in serving if r.channel not in down]
    if up:
        assert chosen not in down  # never a down channel while one that serves is up
        if sticky in up:
            assert chosen == sticky
        else:
            assert chosen == up[0]
    assert [r.priority for r in serving] == sorted(r.priority for r in serving)
