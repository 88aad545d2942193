"""Write-behind of owned races: one write per dirty race, at most every ``WRITE_EVERY_S``."""

from __future__ import annotations

from gateway.races import store as race_store
from rooms import race
from rooms.race_state import RaceState, decode
from tests.conftest import Clock
from tests.race_engines import store_n1
from typogram import keys
from typogram.adapters.memory_cache import MemoryCache


async def test_a_dirty_race_is_written_at_most_every_write_every_s() -> None:
    clock = Clock()
    state = RaceState("r1", "abc", 1, "easy", "en")
    state, _ = race.handle(state, race.Join("ada", "Ada"), 0)
    owned = {"r1": state}
    async with MemoryCache() as cache:
        store = store_n1(cache, clock)
        await cache.set(keys.race_owner("r1"), b"n1", ttl=60)  # writes need the lease
        store.mark("r1")
        assert await store.flush(owned) == 1 and len(store) == 0

        owned["r1"], _ = race.handle(state, race.Join("bob", "Bob"), 0)
        store.mark("r1")
        clock.now += race_store.WRITE_EVERY_S / 2
        assert await store.flush(owned) == 0 and len(store) == 1  # too soon: still dirty
        stored = await cache.get(keys.race_state("r1"))
        assert stored is not None and list(decode(stored).racers) == ["ada"]

        clock.now += race_store.WRITE_EVERY_S / 2
        assert await store.flush(owned) == 1 and len(store) == 0
        stored = await cache.get(keys.race_state("r1"))
        assert stored is not None and list(decode(stored).racers) == ["ada", "bob"]
        assert await store.flush(owned) == 0  # nothing dirty


async def test_write_now_counts_as_the_last_write() -> None:
    clock = Clock()
    state = RaceState("r1", "abc", 1, "easy", "en")
    async with MemoryCache() as cache:
        store = store_n1(cache, clock)
        await cache.set(keys.race_owner("r1"), b"n1", ttl=60)  # writes need the lease
        await store.write_now(state)
        changed, _ = race.handle(state, race.Join("ada", "Ada"), 0)
        store.mark("r1")
        assert await store.flush({"r1": changed}) == 0
        clock.now += race_store.WRITE_EVERY_S
        assert await store.flush({"r1": changed}) == 1
