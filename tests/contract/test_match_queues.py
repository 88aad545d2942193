"""One contract for the ``MatchQueues`` port (rules in ``typogram.match_queues``), run on
``MemoryMatchQueues`` and on a real Redis.

On Redis several adapters stand for several gateway nodes matching from the same
queues; in memory one process holds one adapter, shared by its concurrent callers.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import pytest
import redis.asyncio

from matchmaking.policy import MatchPolicy, match
from typogram.adapters.memory_queues import MemoryMatchQueues
from typogram.adapters.redis import RedisCache
from typogram.adapters.redis_queues import RedisMatchQueues
from typogram.match_queues import MatchQueues, MatchTicket, QueuedTicket

TTL_S = 30.0
Make = Callable[[], AbstractAsyncContextManager[MatchQueues]]


def entry(
    ticket: str,
    user: str,
    *,
    difficulty: str = "medium",
    lang: str = "en",
    rating: float = 1500.0,
    at: int = 1_000,
    guest: bool = False,
) -> QueuedTicket:
    return QueuedTicket(
        MatchTicket(ticket, user, rating, difficulty, lang, at, guest), name=user, node="n1"
    )


@asynccontextmanager
async def _over_a_cache(url: str, prefix: str) -> AsyncIterator[MatchQueues]:
    """A node's queues on Redis: over its own ``RedisCache``, whose connection they use."""
    async with RedisCache(url, prefix=prefix) as cache, RedisMatchQueues(cache) as queues:
        yield queues


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def make_queues(request: pytest.FixtureRequest, unique_prefix: str) -> AsyncIterator[Make]:
    """Opens adapters of the parametrized kind (``async with make_queues() as queues``),
    all on one key prefix."""
    if request.param == "memory":
        yield MemoryMatchQueues
        return
    url = request.getfixturevalue("redis_url")
    yield lambda: _over_a_cache(url, unique_prefix)
    await _delete_keys(url, unique_prefix)


@pytest.fixture
async def nodes(make_queues: Make) -> AsyncIterator[list[MatchQueues]]:
    """Three handles on one set of queues: three Redis clients, or one memory adapter
    (one process holds one, shared by its concurrent callers)."""
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(make_queues())
        if isinstance(first, MemoryMatchQueues):
            yield [first, first, first]
            return
        yield [first, *[await stack.enter_async_context(make_queues()) for _ in range(2)]]


async def _delete_keys(url: str, prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(url)
    async for key in client.scan_iter(match=f"{prefix}*"):
        await client.delete(key)
    await client.aclose()


@pytest.fixture
def queues(nodes: list[MatchQueues]) -> MatchQueues:
    return nodes[0]


async def _everything(queues: MatchQueues) -> list[tuple[str, list[QueuedTicket]]]:
    return [(name, await queues.tickets(name)) for name in await queues.queues()]


# -- enqueue and read back ---------------------------------------------------------------


async def test_a_ticket_reads_back_as_stored(queues: MatchQueues) -> None:
    stored = entry("t1", "ada", rating=1523.456789, at=1_700_000_000_123, guest=True)
    assert await queues.enqueue(stored, TTL_S) is None
    assert await queues.queues() == [stored.queue] == ["race:matchmaking:medium:en"]
    assert await queues.tickets(stored.queue) == [stored]
    assert await queues.where("ada") == "q:t1"
    assert await queues.tickets("race:matchmaking:hard:de") == []
    await queues.ping()


async def test_tickets_come_oldest_first_ties_by_id(queues: MatchQueues) -> None:
    for ticket, user, at in (("t3", "cy", 300), ("t2", "bob", 100), ("t1", "ada", 100)):
        await queues.enqueue(entry(ticket, user, at=at), TTL_S)
    assert [e.ticket.ticket_id for e in await queues.tickets(entry("x", "x").queue)] == [
        "t1",
        "t2",
        "t3",
    ]


async def test_widening_inputs_round_trip_so_the_policy_decides_the_same(
    queues: MatchQueues,
) -> None:
    """The window widens with the time waited: the rating and the enqueue time must come
    back exactly, or a group forms on one node and not on another."""
    policy = MatchPolicy(max_players=3, initial_window=10, widen_per_s=25, max_wait_ms=2_000)
    rng = random.Random(7)
    originals = [
        entry(f"t{n}", f"u{n}", rating=1500 + rng.uniform(-80, 80), at=rng.randrange(0, 5_000))
        for n in range(9)
    ]
    for e in originals:
        await queues.enqueue(e, TTL_S)
    read = await queues.tickets(originals[0].queue)
    assert sorted(read, key=lambda e: e.ticket.ticket_id) == sorted(
        originals, key=lambda e: e.ticket.ticket_id
    )
    for now in (1_000, 4_000, 9_000):
        for e in read:
            original = next(o for o in originals if o.ticket.ticket_id == e.ticket.ticket_id)
            assert policy.window(e.ticket, now) == policy.window(original.ticket, now)
        assert match([e.ticket for e in read], now, policy) == match(
            [o.ticket for o in originals], now, policy
        )


# -- one place at a time -----------------------------------------------------------------


async def test_a_player_is_queued_once_in_any_mode(queues: MatchQueues) -> None:
    assert await queues.enqueue(entry("t1", "ada"), TTL_S) is None
    assert await queues.enqueue(entry("t2", "ada"), TTL_S) == "q:t1"  # same queue
    assert await queues.enqueue(entry("t3", "ada", difficulty="hard", lang="de"), TTL_S) == "q:t1"
    assert await queues.queues() == ["race:matchmaking:medium:en"]
    assert [e.ticket.ticket_id for e in await queues.tickets(entry("x", "x").queue)] == ["t1"]


async def test_cancel_only_the_players_own_ticket(queues: MatchQueues) -> None:
    await queues.enqueue(entry("t1", "ada"), TTL_S)
    assert await queues.cancel("bob", "t1") is False  # not bob's ticket
    assert await queues.cancel("ada", "t9") is False  # no such ticket
    assert await queues.where("ada") == "q:t1"
    assert await queues.cancel("ada", "t1") is True
    assert await queues.cancel("ada", "t1") is False  # once
    assert await queues.where("ada") is None
    assert await queues.queues() == []
    assert await queues.enqueue(entry("t2", "ada"), TTL_S) is None  # free to queue again


async def test_a_group_is_taken_all_or_none(queues: MatchQueues) -> None:
    ada, bob = entry("t1", "ada"), entry("t2", "bob")
    for e in (ada, bob):
        await queues.enqueue(e, TTL_S)
    await queues.cancel("bob", "t2")
    assert await queues.take(ada.queue, [ada, bob], "r1", TTL_S) is False
    assert await queues.where("ada") == "q:t1"  # untouched
    assert await queues.tickets(ada.queue) == [ada]
    await queues.enqueue(bob, TTL_S)
    assert await queues.take(ada.queue, [ada, bob], "r1", TTL_S) is True
    assert (await queues.where("ada"), await queues.where("bob")) == ("r:r1", "r:r1")
    assert await queues.queues() == []  # an emptied queue leaves the work list
    assert await queues.take(ada.queue, [ada, bob], "r2", TTL_S) is False  # taken already
    assert await queues.enqueue(entry("t3", "ada"), TTL_S) == "r:r1"  # racing: not queued


async def test_a_cancelled_ticket_is_not_taken_and_a_taken_one_not_cancelled(
    queues: MatchQueues,
) -> None:
    ada, bob, cy = entry("t1", "ada"), entry("t2", "bob"), entry("t3", "cy")
    for e in (ada, bob, cy):
        await queues.enqueue(e, TTL_S)
    assert await queues.take(ada.queue, [ada, bob], "r1", TTL_S)
    assert await queues.cancel("ada", "t1") is False  # matched first: stays in the race
    assert await queues.where("ada") == "r:r1"
    assert await queues.cancel("cy", "t3")
    assert await queues.take(ada.queue, [cy], "r2", TTL_S) is False
    assert await queues.where("cy") is None


async def test_a_taken_ticket_names_its_race_to_its_own_player_only(queues: MatchQueues) -> None:
    """A cancel that comes after the take finds no ticket; the take left its race behind,
    for the ticket's own player: anyone else (or any other ticket) learns nothing."""
    ada, bob, cy = entry("t1", "ada"), entry("t2", "bob"), entry("t3", "cy")
    for e in (ada, bob, cy):
        await queues.enqueue(e, TTL_S)
    assert await queues.matched("ada", "t1") is None  # still queued
    assert await queues.take(ada.queue, [ada, bob], "r1", TTL_S)
    assert await queues.cancel("ada", "t1") is False
    assert (await queues.matched("ada", "t1"), await queues.matched("bob", "t2")) == ("r1", "r1")
    assert await queues.matched("bob", "t1") is None  # another player's ticket
    assert await queues.matched("cy", "t1") is None
    assert await queues.matched("ada", "t9") is None  # no such ticket
    assert await queues.cancel("cy", "t3")
    assert await queues.matched("cy", "t3") is None  # cancelled, not matched
    await queues.release("ada", "r1")  # the race ended: the ticket's race is still its race
    assert await queues.matched("ada", "t1") == "r1"


async def test_a_taken_tickets_race_is_kept_for_the_takes_ttl(queues: MatchQueues) -> None:
    ada, bob = entry("t1", "ada"), entry("t2", "bob")
    for e in (ada, bob):
        await queues.enqueue(e, TTL_S)
    assert await queues.take(ada.queue, [ada, bob], "r1", 0.2)
    assert await queues.matched("ada", "t1") == "r1"
    await asyncio.sleep(0.35)
    assert (await queues.matched("ada", "t1"), await queues.matched("bob", "t2")) == (None, None)


async def test_a_lapsed_marker_does_not_put_a_player_in_two_races(queues: MatchQueues) -> None:
    """Ada's marker lapsed while her ticket still waits; she queues in another mode. Only
    the queue her marker names may take her."""
    first = entry("t1", "ada")
    await queues.enqueue(first, 0.2)
    await asyncio.sleep(0.35)
    assert await queues.where("ada") is None
    second = entry("t2", "ada", difficulty="hard", lang="de")
    assert await queues.enqueue(second, TTL_S) is None
    bob, cy = entry("t3", "bob"), entry("t4", "cy", difficulty="hard", lang="de")
    for e in (bob, cy):
        await queues.enqueue(e, TTL_S)
    assert await queues.take(first.queue, [first, bob], "r1", TTL_S) is False
    assert await queues.where("bob") == "q:t3"
    assert await queues.take(second.queue, [second, cy], "r2", TTL_S) is True
    assert await queues.where("ada") == "r:r2"
    # With nobody else claiming her, a lapsed marker alone does not block a take.
    dan = entry("t5", "dan")
    await queues.enqueue(dan, 0.2)
    await asyncio.sleep(0.35)
    assert await queues.take(dan.queue, [dan, bob], "r3", TTL_S) is True
    assert await queues.where("dan") == "r:r3"


async def test_claim_and_release_only_for_that_race(queues: MatchQueues) -> None:
    assert await queues.claim("ada", "r1", TTL_S) is None
    assert await queues.claim("ada", "r1", TTL_S) is None  # the same race: fine
    assert await queues.claim("ada", "r2", TTL_S) == "r:r1"
    assert await queues.enqueue(entry("t1", "ada"), TTL_S) == "r:r1"
    await queues.release("ada", "r2")  # not that race: still in r1
    assert await queues.where("ada") == "r:r1"
    await queues.release("ada", "r1")
    assert await queues.where("ada") is None
    await queues.enqueue(entry("t2", "bob"), TTL_S)
    assert await queues.claim("bob", "r3", TTL_S) == "q:t2"  # queued: not in a private race


async def test_markers_expire(queues: MatchQueues) -> None:
    await queues.claim("ada", "r1", 0.2)
    await queues.enqueue(entry("t1", "bob"), 0.2)
    await asyncio.sleep(0.35)  # a crashed node cannot pin a player forever
    assert (await queues.where("ada"), await queues.where("bob")) == (None, None)


# -- concurrent matchers -----------------------------------------------------------------


async def test_concurrent_matchers_never_take_a_player_twice(nodes: list[MatchQueues]) -> None:
    players = [entry(f"t{n}", f"u{n}", at=n) for n in range(12)]
    for e in players:
        await nodes[n_of(e) % 3].enqueue(e, TTL_S)
    rng = random.Random(3)
    attempts = [(f"r{n}", rng.sample(players, rng.randint(2, 4)), nodes[n % 3]) for n in range(40)]
    won = await asyncio.gather(
        *(node.take(players[0].queue, group, race, TTL_S) for race, group, node in attempts)
    )
    taken: dict[str, str] = {}
    for (race, group, _), ok in zip(attempts, won, strict=True):
        if ok:
            for e in group:
                assert e.ticket.user_id not in taken, "a player taken into two races"
                taken[e.ticket.user_id] = race
    assert taken, "some group must win"
    left = {e.ticket.user_id for e in await nodes[1].tickets(players[0].queue)}
    assert left == {e.ticket.user_id for e in players} - set(taken)
    for user, race in taken.items():
        assert await nodes[2].where(user) == "r:" + race


def n_of(e: QueuedTicket) -> int:
    return int(e.ticket.ticket_id[1:])


async def test_concurrent_enqueues_of_one_player_store_one_ticket(
    nodes: list[MatchQueues],
) -> None:
    modes = [("medium", "en"), ("hard", "en"), ("easy", "de"), ("medium", "en")] * 2
    answers = await asyncio.gather(
        *(
            nodes[n % 3].enqueue(entry(f"t{n}", "ada", difficulty=d, lang=lang), TTL_S)
            for n, (d, lang) in enumerate(modes)
        )
    )
    assert answers.count(None) == 1
    stored = [e for _, tickets in await _everything(nodes[0]) for e in tickets]
    assert len(stored) == 1
    assert {a for a in answers if a is not None} == {"q:" + stored[0].ticket.ticket_id}


async def test_cancel_racing_a_take_one_of_them_wins(nodes: list[MatchQueues]) -> None:
    for round_ in range(10):
        ada, bob = entry(f"a{round_}", f"ada{round_}"), entry(f"b{round_}", f"bob{round_}")
        for e in (ada, bob):
            await nodes[0].enqueue(e, TTL_S)
        took, cancelled = await asyncio.gather(
            nodes[1].take(ada.queue, [ada, bob], f"r{round_}", TTL_S),
            nodes[2].cancel(ada.ticket.user_id, ada.ticket.ticket_id),
        )
        assert took != cancelled
        where = await nodes[0].where(ada.ticket.user_id)
        assert where == (f"r:r{round_}" if took else None)
        # The loser of the two learns which: the take leaves its race, a cancel nothing.
        found = await nodes[2].matched(ada.ticket.user_id, ada.ticket.ticket_id)
        assert found == (f"r{round_}" if took else None)
        if not took:
            await nodes[0].cancel(bob.ticket.user_id, bob.ticket.ticket_id)


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [0, -1.0, math.nan, math.inf])
async def test_a_bad_ttl_raises_and_changes_nothing(queues: MatchQueues, ttl: float) -> None:
    ada, bob = entry("t1", "ada"), entry("t2", "bob")
    await queues.enqueue(ada, TTL_S)
    await queues.enqueue(bob, TTL_S)
    with pytest.raises(ValueError, match="ttl"):
        await queues.enqueue(entry("t3", "cy"), ttl)
    with pytest.raises(ValueError, match="ttl"):
        await queues.take(ada.queue, [ada, bob], "r1", ttl)
    with pytest.raises(ValueError, match="ttl"):
        await queues.claim("dan", "r1", ttl)
    assert await queues.tickets(ada.queue) == [ada, bob]
    assert [await queues.where(u) for u in ("ada", "cy", "dan")] == ["q:t1", None, None]


async def test_bad_groups_raise_and_change_nothing(queues: MatchQueues) -> None:
    ada, bob = entry("t1", "ada"), entry("t2", "bob")
    other = entry("t3", "cy", lang="de")
    for e in (ada, bob, other):
        await queues.enqueue(e, TTL_S)
    before = await _everything(queues)
    ada_again = entry("t9", "ada")
    for group, reason in (
        ([], "at least one"),
        ([ada, ada], "ticket appears twice"),
        ([ada, ada_again], "player appears twice"),
        ([ada, other], "not in queue"),
    ):
        with pytest.raises(ValueError, match=reason):
            await queues.take(ada.queue, group, "r1", TTL_S)
    with pytest.raises(ValueError, match="race id"):
        await queues.take(ada.queue, [ada, bob], "", TTL_S)
    assert await _everything(queues) == before
    assert await queues.where("ada") == "q:t1"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (entry("", "ada"), "ticket id"),
        (entry("t1", ""), "user id"),
        (entry("t1", "ada", lang="en:x"), "lang"),
        (entry("t1", "ada", difficulty=""), "difficulty"),
        (entry("t1", "ada", rating=math.nan), "rating"),
        (entry("t1", "ada", rating=math.inf), "rating"),
    ],
)
async def test_a_bad_ticket_is_refused(queues: MatchQueues, bad: QueuedTicket, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        await queues.enqueue(bad, TTL_S)
    assert await queues.queues() == []
    assert await queues.where("ada") is None


async def test_use_after_close_raises(make_queues: Make) -> None:
    async with make_queues() as fresh:
        await fresh.ping()
    with pytest.raises(RuntimeError):
        await fresh.enqueue(entry("t1", "ada"), TTL_S)
    with pytest.raises(RuntimeError):
        await fresh.where("ada")
    with pytest.raises(RuntimeError):
        await fresh.matched("ada", "t1")
