"""Ids, the message lifecycle table and the token bucket."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from empathic.core.ids import _base32, first_id, made_at_ms, new_id
from empathic.core.messages import ALLOWED, FINAL, Status, can_move
from empathic.core.ratelimit import TokenBucket


@given(st.lists(st.integers(min_value=0, max_value=2**48 - 1), min_size=2, max_size=20))
def test_ids_sort_by_time(instants: list[int]) -> None:
    ids = [new_id("msg", at_ms=ms) for ms in instants]
    ordered = [i for _, i in sorted(zip(instants, ids))]
    for earlier, later in zip(ordered, ordered[1:]):
        if earlier[4:14] != later[4:14]:  # same millisecond: random part decides
            assert earlier < later


CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@given(st.integers(min_value=0, max_value=2**140), st.integers(min_value=1, max_value=30))
def test_base32_writes_five_bits_a_character_most_significant_first(value: int, length: int) -> None:
    text = _base32(value, length)
    assert len(text) == length
    assert sum(CROCKFORD.index(c) << (5 * i) for i, c in enumerate(reversed(text))) == value % (1 << (5 * length))


@given(st.integers(min_value=0, max_value=2**48 - 1))
def test_an_id_holds_its_millisecond(ms: int) -> None:
    made = new_id("msg", at_ms=ms)
    assert made_at_ms(made) == ms
    assert first_id("msg", ms) <= made and made_at_ms(first_id("msg", ms)) == ms


def test_ids_are_unique_and_prefixed() -> None:
    ids = {new_id("msg") for _ in range(10_000)}
    assert len(ids) == 10_000 and all(i.startswith("msg_") and len(i) == 30 for i in ids)


def test_final_statuses_never_move_except_late_good_news() -> None:
    for status in FINAL:
        allowed = ALLOWED[status]
        assert allowed <= {Status.DELIVERED, Status.UNDELIVERED}, status
    assert not can_move(Status.DELIVERED, Status.UNDELIVERED)
    assert can_move(Status.UNDELIVERED, Status.DELIVERED)
    assert not can_move(Status.QUEUED, Status.SENT)  # never skips the hand-off
    assert set(ALLOWED) == set(Status)


@given(st.floats(min_value=1, max_value=10_000), st.lists(st.floats(min_value=0, max_value=5), max_size=50))
def test_bucket_never_grants_more_than_rate_allows(rate: float, gaps: list[float]) -> None:
    bucket = TokenBucket(rate=rate, burst=rate)
    now = 0.0
    granted = 0
    for gap in gaps:
        now += gap
        n = bucket.available(now)
        bucket.take(n, now)
        granted += n
    assert granted <= rate + rate * now + 1e-6


def test_bucket_wait_for() -> None:
    bucket = TokenBucket(rate=10, burst=10)
    bucket.take(10, 0.0)
    assert bucket.available(0.0) == 0
    assert abs(bucket.wait_for(5, 0.0) - 0.5) < 1e-9
    assert bucket.available(0.5) == 5


def test_ids_made_in_one_millisecond_still_increase() -> None:
    ids = [new_id("msg", at_ms=1_700_000_000_000) for _ in range(1000)]
    assert ids == sorted(ids) and len(set(ids)) == 1000


def test_ambiguous_number_has_no_guessed_timezone() -> None:
    from empathic.core.phones import timezone_for

    assert timezone_for("+18005550100") is None  # toll-free: 40+ zones
    assert timezone_for("+14155550100") == "America/Los_Angeles"
