"""``tournaments.store.CachedTournaments``: what a gateway built without a store reads."""

from __future__ import annotations

from rooms import tournament
from tournaments.store import CachedTournaments
from typogram import keys
from typogram.adapters.memory_cache import MemoryCache


async def test_a_cached_state_is_read_back_and_a_miss_is_none() -> None:
    state = tournament.TournamentState("t1", "Spring cup", 1_000, 2_000, 3_000)
    async with MemoryCache() as cache:
        source = CachedTournaments(cache)
        assert await source.load("t1") is None
        await cache.set(keys.tournament_state("t1"), tournament.encode(state), 60)
        assert await source.load("t1") == state
        assert await source.load("t2") is None
