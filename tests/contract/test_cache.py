"""One contract for the ``Cache`` port, run on ``MemoryCache`` and on a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio

from typogram.adapters.memory import MemoryCache
from typogram.adapters.memory_cache import STALE_ROWS_SLACK
from typogram.adapters.redis import RedisCache
from typogram.errors import BackendUnavailable
from typogram.ports import Cache

CacheFactory = Callable[[], Cache]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def make_cache(
    request: pytest.FixtureRequest, unique_prefix: str
) -> AsyncIterator[CacheFactory]:
    """Builds un-entered caches of the parametrized kind, all sharing one key prefix."""
    if request.param == "memory":
        yield MemoryCache
        return
    url = request.getfixturevalue("redis_url")
    yield lambda: RedisCache(url, prefix=unique_prefix)
    # Leave the shared test database as we found it.
    client = redis.asyncio.Redis.from_url(url)
    async for key in client.scan_iter(match=f"{unique_prefix}*"):
        await client.delete(key)
    await client.aclose()


@pytest.fixture
async def cache(make_cache: CacheFactory) -> AsyncIterator[Cache]:
    async with make_cache() as entered:
        yield entered


async def test_get_set_and_overwrite(cache: Cache) -> None:
    assert await cache.get("user:1:profile") is None
    await cache.set("user:1:profile", b"v1")
    assert await cache.get("user:1:profile") == b"v1"
    await cache.set("user:1:profile", b"v2")
    assert await cache.get("user:1:profile") == b"v2"
    await cache.ping()


async def test_ttl_reports_and_set_without_ttl_clears_it(cache: Cache) -> None:
    await cache.set("k", b"v", ttl=30)
    left = await cache.ttl("k")
    assert left is not None and 29 < left <= 30
    await cache.set("k", b"v")  # a plain SET drops the expiry, as in Redis
    assert await cache.ttl("k") is None
    assert await cache.ttl("missing") is None


async def test_keys_expire(cache: Cache) -> None:
    # One short sleep covers every kind of key that can carry a TTL.
    await cache.set("plain", b"v", ttl=0.2)
    assert await cache.set_if_absent("lock", b"v", ttl=0.2)
    assert await cache.incr("counter", ttl=0.2) == 1
    await cache.list_push("history", b"m", max_len=5, ttl=0.2)
    assert await cache.expire("board", 0.2) is False  # no such key yet
    await cache.zadd("board", {"ann": 1})
    assert await cache.expire("board", 0.2) is True
    await asyncio.sleep(0.35)
    assert await cache.get("plain") is None
    assert await cache.set_if_absent("lock", b"again")
    assert await cache.incr("counter", ttl=0.2) == 1  # a fresh fixed window
    assert await cache.list_range("history") == []
    assert await cache.zscore("board", "ann") is None


async def test_set_if_absent(cache: Cache) -> None:
    assert await cache.set_if_absent("lock", b"first", ttl=10)
    assert not await cache.set_if_absent("lock", b"second", ttl=10)
    assert await cache.get("lock") == b"first"


async def test_delete_counts_existing_keys(cache: Cache) -> None:
    await cache.set("a", b"1")
    await cache.set("b", b"2")
    assert await cache.delete("a", "b", "missing") == 2
    assert await cache.get("a") is None
    assert await cache.delete() == 0
    assert await cache.delete("a") == 0


async def test_incr_sets_ttl_only_when_it_creates_the_key(cache: Cache) -> None:
    assert await cache.incr("hits", 5, ttl=100) == 5
    assert await cache.expire("hits", 50)
    assert await cache.incr("hits", -2, ttl=100) == 3
    left = await cache.ttl("hits")
    assert left is not None and left <= 50  # the second call did not reset it
    assert await cache.incr("plain") == 1
    assert await cache.ttl("plain") is None
    await cache.set("text", b"41")
    assert await cache.incr("text") == 42
    assert await cache.get("text") == b"42"  # counters are decimal text, as in Redis


async def test_non_positive_ttl_is_refused(cache: Cache) -> None:
    with pytest.raises(ValueError):
        await cache.set("k", b"v", ttl=0)
    with pytest.raises(ValueError):
        await cache.incr("k", ttl=-1)
    await cache.set("k", b"v")
    assert await cache.expire("k", 0) is True  # expire with 0 deletes, as in Redis
    assert await cache.get("k") is None


async def test_list_push_keeps_the_newest(cache: Cache) -> None:
    for n in range(5):
        await cache.list_push("room:1:history", str(n).encode(), max_len=3)
    assert await cache.list_range("room:1:history") == [b"2", b"3", b"4"]
    assert await cache.list_range("room:1:history", 0, 0) == [b"2"]
    assert await cache.list_range("room:1:history", -2, -1) == [b"3", b"4"]
    assert await cache.list_range("room:1:history", 5, 10) == []
    assert await cache.list_range("missing") == []
    await cache.list_push("room:1:history", b"5", max_len=3, ttl=60)
    left = await cache.ttl("room:1:history")
    assert left is not None and 59 < left <= 60


async def test_list_remove_takes_out_every_equal_item(cache: Cache) -> None:
    for item in (b"a", b"b", b"a", b"c"):
        await cache.list_push("room:1:history", item, max_len=10)
    assert await cache.list_remove("room:1:history", b"a") == 2
    assert await cache.list_range("room:1:history") == [b"b", b"c"]
    assert await cache.list_remove("room:1:history", b"zz") == 0
    assert await cache.list_remove("missing", b"a") == 0
    await cache.list_remove("room:1:history", b"b")
    await cache.list_remove("room:1:history", b"c")
    assert await cache.list_range("room:1:history") == []  # an emptied list is gone


async def test_sorted_set_ranks_and_ties(cache: Cache) -> None:
    board = "leaderboard:wpm:daily"
    await cache.zadd(board, {"ann": 120.5, "bob": 90, "cat": 90, "dan": 150})
    # Equal scores order by member, reversed in a reverse range (Redis rules).
    assert await cache.zrevrange(board, 0, -1) == [
        ("dan", 150.0),
        ("ann", 120.5),
        ("cat", 90.0),
        ("bob", 90.0),
    ]
    assert await cache.zrevrange(board, 0, 1) == [("dan", 150.0), ("ann", 120.5)]
    assert await cache.zrevrange(board, -2, -1) == [("cat", 90.0), ("bob", 90.0)]
    assert await cache.zrevrange(board, 10, 20) == []
    assert [await cache.zrevrank(board, m) for m in ("dan", "ann", "cat", "bob")] == [0, 1, 2, 3]
    assert await cache.zrevrank(board, "eve") is None
    assert await cache.zscore(board, "ann") == 120.5
    assert await cache.zscore(board, "eve") is None
    assert await cache.zrevrange("missing", 0, -1) == []


async def test_zadd_only_greater_keeps_personal_bests(cache: Cache) -> None:
    board = "leaderboard:wpm:alltime"
    await cache.zadd(board, {"ann": 100})
    await cache.zadd(board, {"ann": 80, "bob": 70}, only_greater=True)
    assert await cache.zscore(board, "ann") == 100  # not lowered
    assert await cache.zscore(board, "bob") == 70  # new members are still added
    await cache.zadd(board, {"ann": 110}, only_greater=True)
    assert await cache.zscore(board, "ann") == 110
    await cache.zadd(board, {"ann": 50})  # without the flag, any score wins
    assert await cache.zscore(board, "ann") == 50
    await cache.zadd(board, {})


async def test_zrem(cache: Cache) -> None:
    await cache.zadd("z", {"a": 1, "b": 2})
    assert await cache.zrem("z", "a", "missing") == 1
    assert await cache.zrevrange("z", 0, -1) == [("b", 2.0)]
    assert await cache.zrem("z") == 0
    assert await cache.zrem("z", "b") == 1
    assert await cache.zrem("gone", "b") == 0


async def test_statistics_count_get_only(cache: Cache) -> None:
    await cache.set("k", b"v")
    await cache.get("k")
    await cache.get("missing")
    await cache.set_if_absent("k", b"x")  # not a lookup for the hit rate
    stats = cache.statistics()
    assert (stats["hits"], stats["misses"], stats["hit_rate"]) == (1, 1, 0.5)
    assert all(isinstance(value, int | float) for value in stats.values())


async def test_use_after_close_raises(make_cache: CacheFactory) -> None:
    cache = make_cache()
    with pytest.raises(RuntimeError):
        await cache.get("k")  # not entered yet
    async with cache:
        await cache.set("k", b"v")
    with pytest.raises(RuntimeError):
        await cache.get("k")
    with pytest.raises(RuntimeError):
        await cache.set("k", b"v")


# -- adapter-specific -----------------------------------------------------------


async def test_memory_cache_evicts_expired_then_oldest() -> None:
    now = [0.0]
    async with MemoryCache(max_keys=3, clock=lambda: now[0]) as cache:
        await cache.set("old", b"1")
        await cache.set("short", b"2", ttl=1)
        await cache.set("mid", b"3")
        now[0] = 2.0  # "short" has expired but still takes a slot
        await cache.set("new", b"4")
        assert await cache.get("old") == b"1"  # the expired key went first
        await cache.set("newer", b"5")
        assert await cache.get("old") is None  # then the oldest
        assert [await cache.get(k) for k in ("mid", "new", "newer")] == [b"3", b"4", b"5"]
        stats = cache.statistics()
        assert stats["keys"] == 3 and stats["evictions"] == 1 and stats["expirations"] == 1


async def test_memory_cache_expiries_stay_bounded_by_its_keys() -> None:
    """A key given a new expiry many times (a session's mark) leaves no pile of rows,
    and expired keys leave without the cache filling up first."""
    now = [0.0]
    async with MemoryCache(clock=lambda: now[0]) as cache:
        for i in range(20_000):
            now[0] = i / 1000
            await cache.set(f"mark:{i % 10}", b"x", ttl=60)
            await cache.list_push("log", b"%d" % i, max_len=5, ttl=60)
            await cache.set(f"short:{i}", b"y", ttl=1)
        stats = cache.statistics()
        assert stats["expiry_rows"] <= 2 * stats["keys"] + 1024
        assert stats["keys"] <= 11 + 1000 + 1024 and stats["expirations"] > 15_000
        assert await cache.list_range("log") == [b"%d" % i for i in range(19_995, 20_000)]
        assert await cache.get("mark:3") == b"x" and await cache.get("short:19999") == b"y"


async def test_memory_cache_keys_rewritten_with_a_ttl_do_not_grow_its_expiry_heap() -> None:
    now = [0.0]
    async with MemoryCache(clock=lambda: now[0]) as cache:
        for n in range(3 * STALE_ROWS_SLACK):  # heartbeats: the same keys, again and again
            now[0] = float(n)
            await cache.set("presence:a", b"online", ttl=30)
            await cache.set("record:a", b"1", ttl=30)
            await cache.set_if_absent("record:b", b"2", ttl=30)
        stats = cache.statistics()
        assert stats["keys"] == 3
        assert stats["expiry_rows"] <= 2 * 3 + STALE_ROWS_SLACK + 1
        now[0] += 31  # every key expired: the next rebuild drops them
        for n in range(STALE_ROWS_SLACK + 8):
            await cache.set(f"late:{n % 4}", b"x", ttl=5)
        assert cache.statistics()["keys"] == 4
        assert await cache.get("presence:a") is None


async def test_memory_cache_refuses_wrong_types() -> None:
    async with MemoryCache() as cache:
        await cache.zadd("z", {"a": 1})
        with pytest.raises(TypeError):
            await cache.get("z")
        with pytest.raises(TypeError):
            await cache.list_push("z", b"x", max_len=2)
        await cache.set("text", b"abc")
        with pytest.raises(ValueError):
            await cache.incr("text")


@pytest.mark.integration
async def test_redis_prefixes_isolate_deployments(redis_url: str, unique_prefix: str) -> None:
    async with (
        RedisCache(redis_url, prefix=unique_prefix + "a:") as a,
        RedisCache(redis_url, prefix=unique_prefix + "b:") as b,
    ):
        await a.set("k", b"from a", ttl=60)
        assert await b.get("k") is None
        assert await a.get("k") == b"from a"
        await a.delete("k")


async def test_redis_unreachable_is_one_clear_error() -> None:
    cache = RedisCache("redis://:hunter2@127.0.0.1:1/0", connect_timeout_s=1)
    with pytest.raises(BackendUnavailable) as caught:
        await cache.__aenter__()
    message = str(caught.value)
    assert "Redis" in message and "127.0.0.1:1" in message and "hunter2" not in message


async def test_write_batch_appends_trims_sets_and_expires(cache: Cache) -> None:
    await cache.write_batch({"s:1:replay": ([b"a", b"b"], 3)}, {"s:1": b"v1"}, ttl=30)
    await cache.write_batch(
        {"s:1:replay": ([b"c", b"d"], 3), "s:2:replay": ([], 3)}, {"s:1": b"v2"}, ttl=20
    )
    assert await cache.list_range("s:1:replay") == [b"b", b"c", b"d"]
    assert await cache.list_range("s:2:replay") == []
    assert await cache.get("s:1") == b"v2"
    for key in ("s:1", "s:1:replay"):
        left = await cache.ttl(key)
        assert left is not None and 19 < left <= 20


async def test_write_batch_of_values_only_sets_each_with_its_expiry(cache: Cache) -> None:
    await cache.set("m:2", b"old")  # no expiry until the batch gives it one
    values = {f"m:{n}": b"\x00binary %d" % n for n in range(300)}
    await cache.write_batch({}, values, ttl=20)
    for key, value in values.items():
        assert await cache.get(key) == value
    left = await cache.ttl("m:2")
    assert left is not None and 19 < left <= 20
    await cache.write_batch({}, {}, ttl=20)  # nothing to write: no error
    with pytest.raises(ValueError):
        await cache.write_batch({}, {"m:1": b"x"}, ttl=0)
