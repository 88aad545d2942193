"""The features' scripts on the embedded cache: fenced writes, the push log, score raises.

Each class is the embedded adapter of one feature's port, built over a
``MemoryCache`` and acting on its keys through its methods. None of those
methods suspends, so a call here is one atomic step, as the Redis script of
``typogram.adapters.redis_scripts`` is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from typogram.adapters.memory_cache import MemoryCache, check_ttl
from typogram.fencing import check_witnesses
from typogram.leaderboards import ScoreRaise
from typogram.ports import PubSub
from typogram.push_log import check_append, publish_numbered


class MemoryFencedWrites:
    """``typogram.fencing.FencedWrites`` on a ``MemoryCache``."""

    def __init__(self, cache: MemoryCache) -> None:
        self._cache = cache

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
        cache = self._cache
        await cache.ping()  # raises once closed
        check_ttl(ttl)
        check_ttl(lease_ttl)
        if release and lease_ttl is not None:
            raise ValueError("release and lease_ttl exclude each other")
        check_witnesses(writes, witnesses)
        lost: list[str] = []
        for lease, write in writes.items():  # no suspension: one atomic step, as the script
            if cache.peek(lease) != holder:
                lost.append(lease)
                continue
            if write is not None:
                await cache.set(write[0], write[1], ttl)
                if witnesses is not None:
                    await cache.set(witnesses[lease], holder, ttl)
            if release:
                await cache.delete(lease)
            elif lease_ttl is not None:
                await cache.expire(lease, lease_ttl)
        return lost

    async def retake(
        self, holder: bytes, witnesses: Mapping[str, str], *, lease_ttl: float
    ) -> list[str]:
        cache = self._cache
        await cache.ping()
        check_ttl(lease_ttl)
        retaken: list[str] = []
        for lease, witness in witnesses.items():  # no suspension: one atomic step
            if cache.peek(lease) is None and cache.peek(witness) == holder:
                await cache.set(lease, holder, lease_ttl)
                retaken.append(lease)
        return retaken


class MemoryPushLog:
    """``typogram.push_log.PushLog`` on a ``MemoryCache``; publications follow the step
    (``publish_numbered``), still in number order since nothing suspends in between."""

    def __init__(self, cache: MemoryCache) -> None:
        self._cache = cache

    async def append_numbered(
        self,
        counter: str,
        key: str,
        value: bytes,
        max_len: int,
        ttl: float,
        *,
        also: tuple[str, bytes, int] | None = None,
        publish: tuple[PubSub, str] | None = None,
    ) -> int:
        cache = self._cache
        check_append(max_len, ttl, also)
        if also is not None:
            cache.check_type(also[0], list)  # WRONGTYPE before anything changes
        number = await cache.incr(counter)
        cache.expire_now(counter, ttl)
        await cache.list_push(key, b"%d %b" % (number, value), max_len, ttl)
        if also is not None:
            await cache.list_push(also[0], b"%d %b" % (number, also[1]), also[2])
        if publish is not None:  # nothing suspended since the count: in number order
            await publish_numbered(publish, number, value)
        return number


class MemoryScoreWrites:
    """``typogram.leaderboards.ScoreWrites`` on a ``MemoryCache``."""

    def __init__(self, cache: MemoryCache) -> None:
        self._cache = cache

    async def raise_scores(self, writes: Sequence[ScoreRaise]) -> list[bool]:
        cache = self._cache
        await cache.ping()  # raises once closed
        for write in writes:  # all checked first: a bad write stores nothing, as on Redis
            check_ttl(write.ttl)
            if math.isnan(write.score):
                raise ValueError(f"score for {write.member!r} is not a number")
        raised = []
        for write in writes:  # none of these awaits suspends: one atomic step
            up = await cache.zadd(write.key, {write.member: write.score}, only_greater=True) == 1
            if write.ttl is not None:
                await cache.expire(write.key, write.ttl)
            if up:
                await cache.incr(write.counter, 1, write.ttl)
            raised.append(up)
        return raised
