"""``typogram.fencing.FencedWrites`` on both adapters, over the cache whose keys it
writes: writes and renewals fenced by a lease.

Race owners write ``race:{id}:state`` and renew ``race:{id}:owner`` through it,
so a node whose lease another node took can neither overwrite the new owner's
state nor bring its own lease back.
"""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from tests.contract.test_cache import CacheFactory, cache, make_cache  # noqa: F401  (fixtures)
from typogram.adapters.memory import MemoryCache
from typogram.adapters.memory_scripts import MemoryFencedWrites
from typogram.adapters.redis import RedisCache
from typogram.adapters.redis_scripts import _WRITE_HELD, RedisFencedWrites
from typogram.fencing import FencedWrites
from typogram.ports import Cache


@pytest.fixture
def fences(cache: Cache) -> FencedWrites:  # noqa: F811
    """The fenced writes over the parametrized ``cache``."""
    if isinstance(cache, MemoryCache):
        return MemoryFencedWrites(cache)
    assert isinstance(cache, RedisCache)
    return RedisFencedWrites(cache)


async def test_writes_land_only_under_a_lease_held_by_the_writer(
    cache: Cache,  # noqa: F811
    fences: FencedWrites,
) -> None:
    await cache.set("a:owner", b"n1", ttl=10)
    await cache.set("b:owner", b"n2", ttl=10)  # taken by another node
    await cache.set("b:state", b"new owner's")
    writes = {
        "a:owner": ("a:state", b"a1"),
        "b:owner": ("b:state", b"stale"),
        "c:owner": ("c:state", b"c1"),  # lapsed: no lease at all
    }
    assert await fences.write_held(b"n1", writes, ttl=30) == ["b:owner", "c:owner"]
    assert await cache.get("a:state") == b"a1"
    assert await cache.get("b:state") == b"new owner's"
    assert await cache.get("c:state") is None
    left = await cache.ttl("a:state")
    assert left is not None and 29 < left <= 30
    assert await cache.get("c:owner") is None  # never created


async def test_without_ttl_a_write_keeps_no_expiry_and_leases_keep_theirs(
    cache: Cache,  # noqa: F811
    fences: FencedWrites,
) -> None:
    await cache.set("a:owner", b"n1", ttl=10)
    await cache.set("a:state", b"old", ttl=5)
    assert await fences.write_held(b"n1", {"a:owner": ("a:state", b"new")}) == []
    assert await cache.get("a:state") == b"new"
    assert await cache.ttl("a:state") is None  # as a plain ``set``
    left = await cache.ttl("a:owner")
    assert left is not None and 9 < left <= 10
    assert await fences.write_held(b"n1", {}) == []


async def test_renewal_extends_only_leases_still_held(cache: Cache, fences: FencedWrites) -> None:  # noqa: F811
    await cache.set("a:owner", b"n1", ttl=1)
    await cache.set("b:owner", b"n2", ttl=1)
    lost = await fences.write_held(
        b"n1", dict.fromkeys(["a:owner", "b:owner", "c:owner"]), lease_ttl=20
    )
    assert lost == ["b:owner", "c:owner"]
    a, b = await cache.ttl("a:owner"), await cache.ttl("b:owner")
    assert a is not None and 19 < a <= 20
    assert b is not None and b <= 1  # the other node's lease is untouched
    assert await cache.get("b:owner") == b"n2"
    assert await cache.get("c:owner") is None  # a lapsed lease is not brought back


async def test_a_lapsed_lease_fences_its_writes(cache: Cache, fences: FencedWrites) -> None:  # noqa: F811
    await cache.set("a:owner", b"n1", ttl=0.1)
    await asyncio.sleep(0.2)
    assert await cache.set_if_absent("a:owner", b"n2", ttl=10)  # adopted elsewhere
    await cache.set("a:state", b"adopter's")
    assert await fences.write_held(b"n1", {"a:owner": ("a:state", b"stale")}, ttl=30) == ["a:owner"]
    assert await fences.write_held(b"n1", {"a:owner": None}, lease_ttl=10) == ["a:owner"]
    assert await cache.get("a:state") == b"adopter's"
    assert await cache.get("a:owner") == b"n2"


async def test_release_writes_then_deletes_only_held_leases(
    cache: Cache,  # noqa: F811
    fences: FencedWrites,
) -> None:
    await cache.set("a:owner", b"n1", ttl=10)
    await cache.set("b:owner", b"n2", ttl=10)
    writes = {"a:owner": ("a:state", b"final"), "b:owner": ("b:state", b"final")}
    assert await fences.write_held(b"n1", writes, ttl=30, release=True) == ["b:owner"]
    assert await cache.get("a:state") == b"final"
    assert await cache.get("a:owner") is None
    assert await cache.get("b:owner") == b"n2"
    assert await cache.get("b:state") is None


async def test_bad_arguments_raise_and_change_nothing(cache: Cache, fences: FencedWrites) -> None:  # noqa: F811
    await cache.set("a:owner", b"n1", ttl=10)
    writes = {"a:owner": ("a:state", b"v")}
    with pytest.raises(ValueError):
        await fences.write_held(b"n1", writes, lease_ttl=5, release=True)
    with pytest.raises(ValueError):
        await fences.write_held(b"n1", writes, ttl=0)
    assert await cache.get("a:state") is None


async def test_a_check_and_its_write_are_one_step(cache: Cache, fences: FencedWrites) -> None:  # noqa: F811
    # Concurrent owners, one holding the lease: only the holder's writes land, whatever
    # the interleaving of the batches (Redis batches them in one round trip).
    await cache.set("a:owner", b"n2", ttl=10)
    results = await asyncio.gather(
        *(
            fences.write_held(f"n{i % 3}".encode(), {"a:owner": ("a:state", b"n%d" % (i % 3))})
            for i in range(12)
        )
    )
    assert sum(not lost for lost in results) == 4
    assert await cache.get("a:state") == b"n2"


async def test_a_witnessed_write_names_its_writer_as_long_as_the_value_lives(
    cache: Cache,  # noqa: F811
    fences: FencedWrites,
) -> None:
    await cache.set("a:owner", b"n1", ttl=10)
    await cache.set("b:owner", b"n2", ttl=10)
    writes = {"a:owner": ("a:state", b"a1"), "b:owner": ("b:state", b"stale"), "c:owner": None}
    witnesses = {"a:owner": "a:writer", "b:owner": "b:writer", "c:owner": "c:writer"}
    lost = await fences.write_held(b"n1", writes, ttl=30, witnesses=witnesses)
    assert lost == ["b:owner", "c:owner"]
    assert await cache.get("a:writer") == b"n1"
    left = await cache.ttl("a:writer")
    assert left is not None and 29 < left <= 30  # as long as the value
    assert await cache.get("b:writer") is None  # nothing written there
    assert await cache.get("c:writer") is None
    # A renewal or a lease-only entry writes no witness.
    await cache.set("c:owner", b"n1", ttl=10)
    assert await fences.write_held(b"n1", {"c:owner": None}, witnesses=witnesses) == []
    assert await cache.get("c:writer") is None
    with pytest.raises(ValueError):  # every lease written needs its witness
        await fences.write_held(b"n1", writes, witnesses={"a:owner": "a:writer"})


async def test_a_lapsed_lease_comes_back_only_to_the_last_writer(
    cache: Cache,  # noqa: F811
    fences: FencedWrites,
) -> None:
    witnesses = {f"{r}:owner": f"{r}:writer" for r in "abcde"}
    for race in "abcde":
        await cache.set(f"{race}:owner", b"n1", ttl=10)
        writes = {f"{race}:owner": (f"{race}:state", b"n1's")}
        assert await fences.write_held(b"n1", writes, witnesses=witnesses) == []
    await cache.delete("a:owner")  # lapsed (a restart, a stall), nobody came since
    await cache.delete("b:owner")  # lapsed, then adopted by n2 and written by it
    assert await cache.set_if_absent("b:owner", b"n2", ttl=10)
    assert (
        await fences.write_held(b"n2", {"b:owner": ("b:state", b"n2's")}, witnesses=witnesses) == []
    )
    await cache.delete("b:owner")  # ... and n2's lease lapsed too
    await cache.delete("c:owner")  # lapsed and adopted by n2, which has not written yet
    assert await cache.set_if_absent("c:owner", b"n2", ttl=10)
    await cache.delete("d:owner")
    await cache.delete("d:writer")  # no witness left: nobody can tell, nothing retaken
    # e: still held by n1

    retaken = await fences.retake(b"n1", witnesses, lease_ttl=5)
    assert retaken == ["a:owner"]
    assert await cache.get("a:owner") == b"n1"
    left = await cache.ttl("a:owner")
    assert left is not None and 4 < left <= 5
    assert await cache.get("b:owner") is None  # n2 wrote last: not n1's to take
    assert await cache.get("c:owner") == b"n2"
    assert await cache.get("d:owner") is None
    assert await cache.ttl("e:owner") is not None
    assert await fences.retake(b"n2", {"b:owner": "b:writer"}, lease_ttl=5) == ["b:owner"]
    assert await fences.retake(b"n1", {}, lease_ttl=5) == []


async def test_redis_loads_the_script_again_when_redis_lost_it(
    cache: Cache,  # noqa: F811
    fences: FencedWrites,
) -> None:
    if not isinstance(cache, RedisCache):
        pytest.skip("Redis only: scripts cached by SHA")
    assert await fences.write_held(b"n1", {"a:owner": None}) == ["a:owner"]  # loaded
    script = cache._scripts[_WRITE_HELD]
    script.sha = "0" * 40  # as after SCRIPT FLUSH or a restart: EVALSHA answers NOSCRIPT
    await cache.set("a:owner", b"n1", ttl=10)
    assert await fences.write_held(b"n1", {"a:owner": ("a:state", b"v"), "b:owner": None}) == [
        "b:owner"
    ]
    assert await cache.get("a:state") == b"v"


async def test_use_after_close_raises(make_cache: CacheFactory) -> None:  # noqa: F811
    async with make_cache() as closing:
        fenced = (
            MemoryFencedWrites(closing)
            if isinstance(closing, MemoryCache)
            else RedisFencedWrites(cast(RedisCache, closing))
        )
    with pytest.raises(RuntimeError):
        await fenced.write_held(b"n1", {"a:owner": None})
