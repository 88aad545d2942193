"""The ``Cache`` port's pieces that result submission relies on, on both adapters:
``zadd`` reporting what changed (personal bests) and ``incr_each`` (rate limits)."""

from __future__ import annotations

import asyncio

from tests.contract.test_cache import cache, make_cache  # noqa: F401  (fixtures)
from typogram.ports import Cache


async def test_zadd_counts_added_and_changed_members(cache: Cache) -> None:  # noqa: F811
    bests = "user:u:bests"
    assert await cache.zadd(bests, {"words-25-en": 80.0, "~seeded": 0.0}, only_greater=True) == 2
    assert await cache.zadd(bests, {"words-25-en": 70.0, "~seeded": 0.0}, only_greater=True) == 0
    assert await cache.zadd(bests, {"words-25-en": 80.0}, only_greater=True) == 0  # a tie
    assert await cache.zadd(bests, {"words-25-en": 81.5, "~seeded": 0.0}, only_greater=True) == 1
    assert await cache.zadd(bests, {"words-25-en": 10.0}) == 1  # without the flag: lowered
    assert await cache.zadd(bests, {}) == 0
    assert await cache.zscore(bests, "words-25-en") == 10.0


async def test_zadd_only_greater_lets_one_of_many_concurrent_raises_win(
    cache: Cache,  # noqa: F811
) -> None:
    await cache.zadd("b", {"c": 50.0})
    same = await asyncio.gather(
        *(cache.zadd("b", {"c": 51.0}, only_greater=True) for _ in range(9))
    )
    assert sum(same) == 1  # one of nine equal results is the new best
    mixed = await asyncio.gather(
        *(cache.zadd("b", {"c": 51.0 + i % 3}, only_greater=True) for i in range(9))
    )
    # 52 and 53 raise once each at most, in whatever order they arrive; 51 never.
    assert 1 <= sum(mixed) <= 2 and await cache.zscore("b", "c") == 53.0


async def test_incr_each_counts_every_key_and_sets_the_ttl_once(
    cache: Cache,  # noqa: F811
) -> None:
    assert await cache.incr_each(["ip:1", "user:1"], ttl=60) == [1, 1]
    assert await cache.incr_each(["ip:1", "user:1"], ttl=5) == [2, 2]
    assert await cache.incr_each(["ip:1"], ttl=60) == [3]
    assert await cache.incr_each([], ttl=60) == []
    left = await cache.ttl("ip:1")
    assert left is not None and 5 < left <= 60  # kept from the creating call
    counts = await asyncio.gather(*(cache.incr_each(["shared"], ttl=60) for _ in range(20)))
    assert sorted(c[0] for c in counts) == list(range(1, 21))
