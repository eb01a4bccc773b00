"""Leases (store/leases.py) and the duties held under them (engine/duties.py), on both
backends: one holder at a time, renewal, expiry and takeover, release at stop, the fence."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from empathic.engine.duties import FRESH, Duties, Duty, new_owner
from empathic.store import leases
from empathic.store.db import Database

T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)
TTL = timedelta(seconds=10)


async def test_one_holder_renewal_expiry_and_release(database: Database) -> None:
    async with database.transaction() as conn:
        assert await leases.take(conn, "channel:carrier", "a", T0, TTL)
        assert not await leases.take(conn, "channel:carrier", "b", T0 + timedelta(seconds=5), TTL)
        assert await leases.take(conn, "channel:carrier", "a", T0 + timedelta(seconds=9), TTL)  # renewed to 19 s
        assert not await leases.take(conn, "channel:carrier", "b", T0 + timedelta(seconds=15), TTL)
        assert await leases.holds(conn, "channel:carrier", "a", T0 + timedelta(seconds=18))
        assert not await leases.holds(conn, "channel:carrier", "a", T0 + timedelta(seconds=19))  # ran out
        assert await leases.take(conn, "channel:carrier", "b", T0 + timedelta(seconds=19), TTL)  # taken over
        assert not await leases.holds(conn, "channel:carrier", "a", T0 + timedelta(seconds=20))
        await leases.release(conn, "channel:carrier", "a")  # not a's any more: nothing happens
        assert await leases.held(conn, T0 + timedelta(seconds=20)) == {"channel:carrier": "b"}
        await leases.release(conn, "channel:carrier", "b")
        assert await leases.held(conn, T0 + timedelta(seconds=20)) == {}


async def test_a_token_is_kept_by_renewals_and_new_at_every_other_take(database: Database) -> None:
    """The fencing token: the same while its owner renews in time; new when another takes
    the lease, when its owner takes it back after it ran out, and after a release (a
    deleted lease taken again never repeats a token)."""
    name = "channel:carrier"
    async with database.transaction() as conn:
        first = await leases.take(conn, name, "a", T0, TTL)
        assert first and await leases.take(conn, name, "a", T0 + timedelta(seconds=9), TTL) == first
        assert await leases.holds(conn, name, "a", T0 + timedelta(seconds=10), token=first)
        assert not await leases.holds(conn, name, "a", T0 + timedelta(seconds=10), token="not-" + first)
        again = await leases.take(conn, name, "a", T0 + timedelta(seconds=19), TTL)  # ran out at 19 s
        assert again and again != first
        assert not await leases.holds(conn, name, "a", T0 + timedelta(seconds=20), token=first)
        other = await leases.take(conn, name, "b", T0 + timedelta(seconds=29), TTL)
        assert other not in (None, first, again)
        back = await leases.take(conn, name, "a", T0 + timedelta(seconds=39), TTL)  # b let it lapse
        assert back not in (None, first, again, other)
        await leases.release(conn, name, "a")
        fresh = await leases.take(conn, name, "a", T0 + timedelta(seconds=40), TTL)
        assert fresh not in (None, first, again, other, back)
        assert (await leases.current(conn, name)).token == fresh


async def test_racing_workers_never_both_win(database: Database) -> None:
    async def race(owner: str) -> bool:
        async with database.transaction() as conn:
            return await leases.take(conn, "loops", owner, T0, TTL) is not None

    wins = await asyncio.gather(*(race(f"w{i}") for i in range(8)))
    assert sum(wins) == 1


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


async def test_duties_are_taken_over_when_a_worker_stops_renewing(database: Database) -> None:
    clock = Clock()
    running: dict[str, set[str]] = {"a": set(), "b": set()}

    def duties(worker: str) -> list[Duty]:
        async def start(name: str) -> None:
            running[worker].add(name)

        async def stop(name: str) -> None:
            running[worker].discard(name)

        return [Duty(n, lambda n=n: start(n), lambda n=n: stop(n)) for n in ("channel:carrier", "loops")]

    a = Duties(database, clock, new_owner(), duties("a"), ttl=10)
    b = Duties(database, clock, new_owner(), duties("b"), ttl=10)
    await a._pass()  # noqa: SLF001 - one renewal round each, driven by the test's clock
    await b._pass()  # noqa: SLF001
    assert running == {"a": {"channel:carrier", "loops"}, "b": set()}
    async with database.transaction() as conn:
        assert await a.still_mine(conn, "channel:carrier") and not await b.still_mine(conn, "channel:carrier")

    clock.at += timedelta(seconds=11)  # a stopped renewing (killed): its leases ran out
    await b._pass()  # noqa: SLF001
    assert running["b"] == {"channel:carrier", "loops"}
    async with database.transaction() as conn:
        assert not await a.still_mine(conn, "channel:carrier")  # a's claims are fenced off
    await a._pass()  # noqa: SLF001 - a comes back: it learns it lost them, and stops them
    assert running["a"] == set()

    await b.stop()  # a clean stop hands everything over at once
    assert running["b"] == set()
    await a._pass()  # noqa: SLF001
    assert running["a"] == {"channel:carrier", "loops"}
    await a.stop()


async def test_a_worker_cut_off_from_the_database_stops_before_its_leases_run_out(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    running: set[str] = set()

    async def start() -> None:
        running.add("loops")

    async def stop() -> None:
        running.discard("loops")

    worker = Duties(database, Clock(), new_owner(), [Duty("loops", start, stop)], ttl=10)
    await worker._pass()  # noqa: SLF001
    assert running == {"loops"} and worker.fresh("loops")

    async def unreachable(*args: object, **kwargs: object) -> bool:
        raise OSError("connection refused")

    monkeypatch.setattr(leases, "take", unreachable)
    await worker._pass()  # noqa: SLF001 - renewed a moment ago: keeps its duties
    assert running == {"loops"}
    worker._renewed_at -= 7  # noqa: SLF001 - 7 s without a renewal: no longer fresh for acts
    assert not worker.fresh("loops")
    await worker._pass()  # noqa: SLF001 - still in time (8 s is the limit): kept
    assert running == {"loops"}
    worker._renewed_at -= 2  # noqa: SLF001 - 9 s: another could have it in a second
    await worker._pass()  # noqa: SLF001
    assert running == set() and worker.held == set()


async def test_a_lease_renewed_only_after_it_ran_out_starts_its_duty_afresh(database: Database) -> None:
    """A renewal that reaches the database after the lease ran out (the pass itself waited
    that long for a connection) may follow another worker's turn, and fences meanwhile left
    work to "the new holder". We are that holder: the duty is stopped and started again,
    so a channel reconciles what was left."""
    events: list[str] = []

    async def start() -> None:
        events.append("start")

    async def stop() -> None:
        events.append("stop")

    worker = Duties(database, Clock(), new_owner(), [Duty("channel:carrier", start, stop)], ttl=10)
    await worker._pass()  # noqa: SLF001
    await worker._pass()  # noqa: SLF001 - renewed in time: nothing restarts
    assert events == ["start"]
    worker._renewed_at -= 11  # noqa: SLF001 - the last renewal was longer ago than ttl
    await worker._pass()  # noqa: SLF001
    assert events == ["start", "stop", "start"] and worker.held == {"channel:carrier"}


async def test_a_grant_that_came_too_late_starts_nothing_until_renewed(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass that took longer than the share of ttl a lease is trusted for (the worker
    paused inside the take, with the time it writes read before the pause) may have been
    granted a lease that already ran out and is another's: its duty is not started on that
    grant, but at the next renewal, if the lease is still ours then."""
    events: list[str] = []

    async def start() -> None:
        events.append("start")

    worker = Duties(database, Clock(), new_owner(), [Duty("channel:carrier", start, _nothing)], ttl=0.5)
    real = worker._take  # noqa: SLF001

    async def slow(conn: object) -> object:
        result = await real(conn)
        await asyncio.sleep(0.5 * FRESH + 0.05)
        return result

    monkeypatch.setattr(worker, "_take", slow)
    await worker._pass()  # noqa: SLF001
    assert events == [] and worker.held == set()
    monkeypatch.setattr(worker, "_take", real)
    await worker._pass()  # noqa: SLF001 - renewed in time (the test's clock stands still)
    assert events == ["start"] and worker.held == {"channel:carrier"}


async def test_a_worker_that_takes_its_lease_back_fences_off_what_it_began_before(database: Database) -> None:
    """a pauses past its lease; b takes the duty over (reconciling a's batch), then stalls
    and lets it lapse; a resumes and takes the lease back. The lease is a's again, but under
    a new token: a's run from before the pause, while it stops, fails both the fence and
    `fresh` (its batch claimed before the pause is b's reconciled one now, and must not
    reach the carrier), and the duty starts again under the new token."""
    clock = Clock()
    name = "channel:carrier"
    seen: list[tuple[str, bool, bool]] = []
    a: Duties

    async def start() -> None:
        async with database.transaction() as conn:
            seen.append(("start", await a.still_mine(conn, name), a.fresh(name)))

    async def stop() -> None:  # where the old run's last batches would be handed over or given back
        async with database.transaction() as conn:
            seen.append(("stop", await a.still_mine(conn, name), a.fresh(name)))

    a = Duties(database, clock, new_owner(), [Duty(name, start, stop)], ttl=10)
    b = Duties(database, clock, new_owner(), [Duty(name, _nothing, _nothing)], ttl=10)
    await a._pass()  # noqa: SLF001
    before = a.tokens[name]
    clock.at += timedelta(seconds=11)  # a paused: its lease ran out
    await b._pass()  # noqa: SLF001
    assert b.held == {name} and b.tokens[name] != before
    clock.at += timedelta(seconds=11)  # b stalled: its lease ran out too
    await a._pass()  # noqa: SLF001 - a resumes, with its old run still going
    assert seen == [("start", True, True), ("stop", False, False), ("start", True, True)]
    assert a.held == {name} and a.tokens[name] not in (before, b.tokens[name])
    async with database.transaction() as conn:
        assert not await b.still_mine(conn, name)
    await b._pass()  # noqa: SLF001 - b learns it lost the duty
    assert b.held == set()
    await a.stop()


async def _nothing() -> None:
    pass


async def test_a_duty_handed_over_keeps_its_fence_while_it_stops(database: Database) -> None:
    """More workers came, so a hands a shard over: it stops the shard first (its batches
    are recorded, fenced as ever), then frees the lease. While stopping, the shard is
    still a's under its token; once stopped, no fence passes."""
    clock = Clock()
    shards = ["channel:carrier", "channel:carrier/1"]
    seen: dict[str, bool] = {}
    a: Duties

    def duty(name: str) -> Duty:
        async def stop() -> None:
            async with database.transaction() as conn:
                seen[name] = await a.still_mine(conn, name)

        return Duty(name, _nothing, stop, group="channel:carrier")

    a = Duties(database, clock, new_owner(), [duty(n) for n in shards], ttl=10)
    b = Duties(database, clock, new_owner(), [Duty(n, _nothing, _nothing, group="channel:carrier") for n in shards],
               ttl=10)
    await a._pass()  # noqa: SLF001
    await b._pass()  # noqa: SLF001 - counted: a holds one shard too many now
    await a._pass()  # noqa: SLF001
    (handed,) = seen
    assert seen == {handed: True} and handed not in a.held
    async with database.transaction() as conn:
        assert not await a.still_mine(conn, handed)
    await b._pass()  # noqa: SLF001
    assert b.held == {handed}
    await a.stop()
    await b.stop()


async def test_a_channels_shards_are_shared_out_as_workers_come_and_go(database: Database) -> None:
    """Four shards of one channel: a lone worker holds all four; when a second comes, the
    first stops two (their batches recorded) before it frees their leases, and the second
    takes them; with a third, no worker holds more than two; as they leave, the rest take
    the shards back. The single loops stay with one worker throughout."""
    clock = Clock()
    running: dict[str, set[str]] = {}
    shards = [f"channel:carrier/{k}" if k else "channel:carrier" for k in range(4)]

    def worker(label: str) -> Duties:
        running[label] = set()

        def duty(name: str, group: str | None) -> Duty:
            async def start() -> None:
                running[label].add(name)

            async def stop() -> None:
                running[label].discard(name)

            return Duty(name, start, stop, group=group)

        duties = [duty(n, "channel:carrier") for n in shards] + [duty("loops", None)]
        return Duties(database, clock, new_owner(), duties, ttl=10)

    def count(label: str) -> int:
        return len(running[label] - {"loops"})

    a = worker("a")
    await a._pass()  # noqa: SLF001
    assert count("a") == 4 and "loops" in running["a"]
    b = worker("b")
    await b._pass()  # noqa: SLF001 - all four are a's: nothing free yet
    assert count("b") == 0
    await a._pass()  # noqa: SLF001 - two workers now: a hands two over
    assert count("a") == 2
    await b._pass()  # noqa: SLF001
    assert count("b") == 2 and not running["a"] & running["b"]
    c = worker("c")
    for w in (c, a, b, c):
        await w._pass()  # noqa: SLF001
    assert sorted(count(w) for w in "abc") == [0, 2, 2]  # ceil(4 / 3) = 2 each at most
    assert set().union(*running.values()) == {*shards, "loops"}
    async with database.transaction() as conn:  # every shard has one holder, the one running it
        in_force = await leases.held(conn, clock.now())
    assert sum(1 for n in in_force if n.startswith("worker:")) == 3
    await a.stop()
    await b.stop()
    await c._pass()  # noqa: SLF001
    assert count("c") == 4 and "loops" in running["c"]
    await c.stop()
