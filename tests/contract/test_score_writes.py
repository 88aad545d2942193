"""``typogram.leaderboards.ScoreWrites`` on both adapters, over the cache whose keys it
writes: leaderboard writes in one round trip.

Each write raises a member's score (never lowers it), keeps the set's expiry
and counts the raises in a version counter, which the top-1000 view of
``typogram.leaderboards`` compares against.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.contract.test_cache import cache, make_cache  # noqa: F401  (fixtures)
from typogram.adapters.memory import MemoryCache
from typogram.adapters.memory_scripts import MemoryScoreWrites
from typogram.adapters.redis import RedisCache
from typogram.adapters.redis_scripts import RedisScoreWrites
from typogram.leaderboards import ScoreRaise, ScoreWrites
from typogram.ports import Cache


@pytest.fixture
def boards(cache: Cache) -> ScoreWrites:  # noqa: F811
    """The score writes over the parametrized ``cache``."""
    if isinstance(cache, MemoryCache):
        return MemoryScoreWrites(cache)
    assert isinstance(cache, RedisCache)
    return RedisScoreWrites(cache)


async def test_raises_only_upwards_and_counts_each_raise(
    cache: Cache,  # noqa: F811
    boards: ScoreWrites,
) -> None:
    await cache.zadd("board", {"ann": 100.0})
    raised = await boards.raise_scores(
        [
            ScoreRaise("board", "ann", 90.0, "board:v"),  # lower: kept at 100
            ScoreRaise("board", "bob", 70.0, "board:v"),  # new member
            ScoreRaise("board", "ann", 120.0, "board:v"),  # higher
            ScoreRaise("board", "ann", 120.0, "board:v"),  # the same again: no change
            ScoreRaise("other", "ann", 5.0, "other:v"),
        ]
    )
    assert raised == [False, True, True, False, True]
    assert await cache.zrevrange("board", 0, -1) == [("ann", 120.0), ("bob", 70.0)]
    assert await cache.get("board:v") == b"2"
    assert await cache.get("other:v") == b"1"
    assert await cache.ttl("board") is None  # no ttl given: no expiry
    assert await cache.ttl("board:v") is None
    assert await boards.raise_scores([]) == []


async def test_ttl_goes_to_the_set_every_time_and_to_a_new_counter(
    cache: Cache,  # noqa: F811
    boards: ScoreWrites,
) -> None:
    await cache.incr("daily:v", 1, ttl=500)  # an older counter keeps its own expiry
    assert await boards.raise_scores([ScoreRaise("daily", "ann", 1.0, "daily:v", ttl=30)]) == [True]
    for key, expected in (("daily", 30), ("daily:v", 500)):
        left = await cache.ttl(key)
        assert left is not None and expected - 1 < left <= expected
    # A write that does not raise still renews the set's expiry.
    assert await boards.raise_scores([ScoreRaise("daily", "ann", 0.5, "daily:v", ttl=90)]) == [
        False
    ]
    left = await cache.ttl("daily")
    assert left is not None and 89 < left <= 90
    assert await cache.get("daily:v") == b"2"
    await boards.raise_scores([ScoreRaise("weekly", "ann", 1.0, "weekly:v", ttl=60)])
    left = await cache.ttl("weekly:v")
    assert left is not None and 59 < left <= 60


@pytest.mark.parametrize(
    "bad",
    [
        ScoreRaise("board", "bob", math.nan, "board:v"),
        ScoreRaise("board", "bob", 1.0, "board:v", ttl=0),
        ScoreRaise("board", "bob", 1.0, "board:v", ttl=-5),
    ],
)
async def test_a_bad_write_raises_and_stores_nothing(
    cache: Cache,  # noqa: F811
    boards: ScoreWrites,
    bad: ScoreRaise,
) -> None:
    good = ScoreRaise("board", "ann", 1.0, "board:v")
    with pytest.raises(ValueError):
        await boards.raise_scores([good, bad])
    assert await cache.zscore("board", "ann") is None
    assert await cache.get("board:v") is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]), st.sampled_from(["ann", "bob", "cat"]), st.integers(0, 5)
        ),
        max_size=25,
    )
)
async def test_same_as_zadd_only_greater_one_by_one(writes: list[tuple[str, str, int]]) -> None:
    """The batch equals zscore + zadd(only_greater) + incr per write, in order."""
    async with MemoryCache() as batch, MemoryCache() as single:
        raises = [ScoreRaise(k, m, float(s), k + ":v") for k, m, s in writes]
        got = await MemoryScoreWrites(batch).raise_scores(raises)
        expected = []
        for key, member, score in writes:
            before = await single.zscore(key, member)
            await single.zadd(key, {member: float(score)}, only_greater=True)
            up = before is None or score > before
            if up:
                await single.incr(key + ":v")
            expected.append(up)
        assert got == expected
        for key in ("a", "b", "a:v", "b:v"):
            if key.endswith(":v"):
                assert await batch.get(key) == await single.get(key)
            else:
                assert await batch.zrevrange(key, 0, -1) == await single.zrevrange(key, 0, -1)
