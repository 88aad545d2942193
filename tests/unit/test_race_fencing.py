"""Race state writes fenced by the owner's lease: an owner whose lease lapsed and was
taken by another node can no longer overwrite the new owner's ``race:{id}:state``.

Two nodes on one in-memory cache, its clock driven by the test: node A's lease
lapses (a stalled loop), node B adopts the race and starts it, then A wakes up
with its stale lobby copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import pytest

from gateway.races import store as race_store
from gateway.races.engine import RaceEngine
from gateway.races.messages import Join, Start
from gateway.races.store import RaceStore
from rooms import race
from rooms.race_state import Phase, RaceState, decode
from tests.conftest import Clock, make_settings
from tests.race_engines import two_engines
from typogram import keys
from typogram.adapters.memory_cache import MemoryCache
from typogram.adapters.memory_events import InProcessEventLog
from typogram.adapters.memory_pubsub import MemoryPubSub
from typogram.adapters.memory_scripts import MemoryFencedWrites

LEASE_S = 3.0


class Lost:
    """Records the races a store gives up."""

    def __init__(self) -> None:
        self.races: list[str] = []

    def given_up(self, race_id: str) -> None:
        self.races.append(race_id)


def lobby(race_id: str = "r1") -> RaceState:
    state = RaceState(race_id, "abc def", 1, "easy", "en")
    state, _ = race.handle(state, race.Join("ada", "Ada"), 0)
    state, _ = race.handle(state, race.Join("bob", "Bob"), 0)
    return state


async def stored(cache: MemoryCache, race_id: str = "r1") -> RaceState:
    raw = await cache.get(keys.race_state(race_id))
    assert raw is not None
    return decode(raw)


async def ada_in_a_race_on(node: RaceEngine) -> None:
    """Race ``r1`` created on ``node``, with ada joined (written: acknowledged)."""
    await node.create(RaceState("r1", "abc def", 1, "easy", "en"), [])
    await node.apply("r1", Join("ada", "Ada"))


async def test_an_owner_whose_lease_was_taken_writes_nothing_more() -> None:
    clock = Clock()
    async with MemoryCache(clock=clock) as cache:
        lost = Lost()
        fences = MemoryFencedWrites(cache)
        old = RaceStore(
            cache,
            fences=fences,
            node_id="a",
            state_ttl_s=60,
            lease_s=LEASE_S,
            clock=clock,
            lost=lost,
        )
        new = RaceStore(
            cache, fences=fences, node_id="b", state_ttl_s=60, lease_s=LEASE_S, clock=clock
        )
        state = lobby()
        assert await cache.set_if_absent(keys.race_owner("r1"), b"a", ttl=LEASE_S)
        assert await old.write_now(state)

        clock.now += LEASE_S + 0.1  # a's loop stalled: its lease lapsed
        assert await cache.set_if_absent(keys.race_owner("r1"), b"b", ttl=LEASE_S)
        started, _ = race.handle(state, race.Start(None), 0)
        assert await new.write_now(started)

        # a wakes up: its write-behind batch, a single write and its renewal all miss.
        changed, _ = race.handle(state, race.Join("cy", "Cy"), 0)
        old.mark("r1")
        clock.now += race_store.WRITE_EVERY_S
        assert await old.flush({"r1": changed}) == 0 and len(old) == 0
        assert await old.write_now(changed) is False
        assert await old.release(changed) is False
        assert await old.renew(["r1"]) == ["r1"]
        assert lost.races == ["r1", "r1", "r1", "r1"] and old.lost == 4

        assert (await stored(cache)).phase is Phase.COUNTDOWN
        assert await cache.get(keys.race_owner("r1")) == b"b"
        left = await cache.ttl(keys.race_owner("r1"))
        assert left is not None and left <= LEASE_S  # not extended by a's renewal
        assert await new.renew(["r1"]) == []


async def test_a_lapsed_lease_nobody_took_is_not_renewed() -> None:
    clock = Clock()
    async with MemoryCache(clock=clock) as cache:
        fences = MemoryFencedWrites(cache)
        store = RaceStore(
            cache, fences=fences, node_id="a", state_ttl_s=60, lease_s=LEASE_S, clock=clock
        )
        assert await cache.set_if_absent(keys.race_owner("r1"), b"a", ttl=LEASE_S)
        assert await cache.set_if_absent(keys.race_owner("r2"), b"a", ttl=LEASE_S)
        clock.now += LEASE_S / 3
        assert await store.renew(["r1"]) == []
        clock.now += LEASE_S * 2 / 3 + 0.1  # r2 lapsed; r1 was renewed and still holds
        assert await store.renew(["r1", "r2"]) == ["r2"]
        assert await cache.get(keys.race_owner("r2")) is None  # left for adoption
        assert await cache.get(keys.race_owner("r1")) == b"a"


@pytest.fixture
async def two_nodes() -> AsyncIterator[tuple[Clock, MemoryCache, RaceEngine, RaceEngine]]:
    clock = Clock()
    async with two_engines(clock, lease_s=LEASE_S) as nodes:
        yield clock, nodes.cache, nodes.a, nodes.b


async def test_a_deposed_owner_cannot_put_a_started_race_back_in_the_lobby(
    two_nodes: tuple[Clock, MemoryCache, RaceEngine, RaceEngine],
) -> None:
    clock, cache, a, b = two_nodes
    await ada_in_a_race_on(a)
    assert a.owns("r1")

    clock.now += LEASE_S + 0.1  # a stalls past its lease; b adopts the race and starts it
    await b.apply("r1", Start())
    assert b.owns("r1") and (await stored(cache)).phase is Phase.COUNTDOWN

    serving = asyncio.create_task(b.run())  # b's inbox answers what a forwards
    try:
        # a still holds its lobby copy: the join is refused by the fence, a drops the
        # race, and the command goes to b, which applies it to the started race.
        replies = await asyncio.wait_for(a.apply("r1", Join("cy", "Cy")), 5)
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
    final = await stored(cache)
    assert final.phase is Phase.COUNTDOWN and list(final.racers) == ["ada", "cy"]
    assert [kind for kind, _ in replies] == ["race.joined"]
    assert not a.owns("r1") and a.statistics()["races_lost"] == 1
    assert await cache.get(keys.race_owner("r1")) == b"b"


class FailingOnce(MemoryFencedWrites):
    """Its first lease renewal fails, as Redis calls do under overload."""

    def __init__(self, cache: MemoryCache) -> None:
        super().__init__(cache)
        self.renewals: list[tuple[float, bool]] = []  # (loop time, succeeded)
        self.retried = asyncio.Event()

    async def write_held(
        self,
        holder: bytes,
        writes: Mapping[str, tuple[str, bytes] | None],
        *,
        ttl: float | None = None,
        lease_ttl: float | None = None,
        release: bool = False,
        witnesses: Mapping[str, str] | None = None,
    ) -> list[str]:
        if lease_ttl is not None:
            failed = not self.renewals
            self.renewals.append((asyncio.get_running_loop().time(), not failed))
            if not failed:
                self.retried.set()
            else:
                raise ConnectionError("Redis is not answering")
        return await super().write_held(
            holder, writes, ttl=ttl, lease_ttl=lease_ttl, release=release, witnesses=witnesses
        )


async def test_a_failed_renewal_is_retried_well_within_the_period() -> None:
    clock = Clock()
    settings = make_settings(race_lease_s=LEASE_S)
    period = LEASE_S / 3
    async with (
        MemoryCache(clock=clock) as cache,
        MemoryPubSub() as pubsub,
        InProcessEventLog() as events,
    ):
        fences = FailingOnce(cache)
        engine = RaceEngine(
            settings,
            node_id="a",
            cache=cache,
            fences=fences,
            pubsub=pubsub,
            events=events,
            clock=clock,
        )
        await engine.start()
        await engine.create(lobby(), [])
        running = asyncio.create_task(engine.run())
        try:
            await asyncio.wait_for(fences.retried.wait(), period * 3)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await engine.stop(release=False)
    (failed_at, ok1), (retried_at, ok2) = fences.renewals[:2]
    assert not ok1 and ok2
    assert retried_at - failed_at < period / 2  # not a whole period later


async def redis_restarted(cache: MemoryCache, clock: Clock, before: bytes) -> None:
    """Redis came back after a crash: its last write of ``r1``'s state gone with it
    (the stored state is ``before`` again) and the lease expired while it was down."""
    await cache.set(keys.race_state("r1"), before, ttl=60)
    await cache.delete(keys.race_owner("r1"))
    clock.now += LEASE_S + 0.1


async def test_an_owner_retakes_a_lease_that_lapsed_with_nobody_writing_since() -> None:
    clock = Clock()
    async with MemoryCache(clock=clock) as cache:
        lost = Lost()
        store = RaceStore(
            cache,
            fences=MemoryFencedWrites(cache),
            node_id="a",
            state_ttl_s=60,
            lease_s=LEASE_S,
            clock=clock,
            lost=lost,
        )
        assert await cache.set_if_absent(keys.race_owner("r1"), b"a", ttl=LEASE_S)
        first = lobby()
        assert await store.write_now(first)
        before = await cache.get(keys.race_state("r1"))
        assert before is not None
        acknowledged, _ = race.handle(first, race.Join("cy", "Cy"), 0)
        assert await store.write_now(acknowledged)
        await redis_restarted(cache, clock, before)

        assert await store.renew(["r1"]) == []  # kept, not given up
        assert await cache.get(keys.race_owner("r1")) == b"a" and store.retaken == 1
        assert not lost.races
        assert await store.flush({"r1": acknowledged}) == 1  # written again at once
        assert list((await stored(cache)).racers) == ["ada", "bob", "cy"]

        # The write paths retake too: a write that finds the lease lapsed lands.
        await redis_restarted(cache, clock, before)
        later, _ = race.handle(acknowledged, race.Join("dee", "Dee"), 0)
        assert await store.write_now(later)
        assert list((await stored(cache)).racers) == ["ada", "bob", "cy", "dee"]
        assert store.retaken == 2 and not lost.races


async def test_a_race_another_node_wrote_last_is_left_to_it_for_a_grace(
    two_nodes: tuple[Clock, MemoryCache, RaceEngine, RaceEngine],
) -> None:
    clock, cache, a, b = two_nodes
    await ada_in_a_race_on(a)
    before = await cache.get(keys.race_state("r1"))
    assert before is not None
    await a.apply("r1", Join("bob", "Bob"))  # acknowledged: written before its reply
    await redis_restarted(cache, clock, before)

    serving = asyncio.create_task(a.run())  # a's inbox answers what b forwards
    try:
        # b's request finds no lease, and a as the last writer: it waits for a, which
        # retakes the race on its next renewal, and the join goes to a.
        joining = asyncio.create_task(b.apply("r1", Join("cy", "Cy")))
        await asyncio.sleep(race_store.WRITE_EVERY_S)
        assert not joining.done() and not b.owns("r1")
        await a.renew_leases()
        replies = await asyncio.wait_for(joining, 5)
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
    assert [kind for kind, _ in replies] == ["race.joined"]
    assert a.owns("r1") and not b.owns("r1")
    assert a.statistics()["races_retaken"] == 1 and a.statistics()["races_lost"] == 0
    assert list((await stored(cache)).racers) == ["ada", "bob", "cy"]  # bob's join kept


async def test_a_race_whose_last_writer_is_gone_is_adopted_after_the_grace(
    two_nodes: tuple[Clock, MemoryCache, RaceEngine, RaceEngine],
) -> None:
    clock, cache, a, b = two_nodes
    await ada_in_a_race_on(a)
    clock.now += LEASE_S + 0.1  # a died: its lease lapsed

    await b.scan()
    assert not b.owns("r1")  # a wrote it last: left to a for the grace
    clock.now += b.retake_grace / 2
    await b.scan()
    assert not b.owns("r1")
    clock.now += b.retake_grace / 2
    await b.scan()
    assert b.owns("r1")
    assert await cache.get(keys.race_owner("r1")) == b"b"
    assert await cache.get(keys.race_writer("r1")) == b"b"  # b's adoption wrote it


async def test_a_request_adopts_a_dead_writers_race_after_the_grace(
    two_nodes: tuple[Clock, MemoryCache, RaceEngine, RaceEngine],
) -> None:
    clock, cache, a, b = two_nodes
    await ada_in_a_race_on(a)
    clock.now += LEASE_S + 0.1  # a died: its lease lapsed
    loop = asyncio.get_running_loop()
    began = loop.time()
    replies = await asyncio.wait_for(b.apply("r1", Join("cy", "Cy")), 5)
    assert loop.time() - began >= b.retake_grace - 0.05
    assert [kind for kind, _ in replies] == ["race.joined"] and b.owns("r1")
    assert list((await stored(cache)).racers) == ["ada", "cy"]
