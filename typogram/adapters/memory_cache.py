"""Embedded ``Cache`` adapter: a bounded dict with Redis types and TTLs.

Bounded by ``max_keys``; not thread-safe: call it from the event loop that
entered it.
"""

from __future__ import annotations

import heapq
import math
import time
from bisect import bisect_left, insort
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Self, TypeVar

from typogram.adapters.embedded import _Embedded
from typogram.settings import Settings

DEFAULT_MAX_KEYS = 100_000
# Stale expiry rows (a key set again with a TTL leaves its old row) allowed beyond
# twice the number of keys before the heap is rebuilt.
STALE_ROWS_SLACK = 1024
_T = TypeVar("_T")


def _span(length: int, start: int, stop: int) -> range:
    """Redis ``LRANGE``/``ZRANGE`` indices (inclusive, negative from the end) as a range."""
    if start < 0:
        start = max(length + start, 0)
    if stop < 0:
        stop += length
    return range(start, min(stop, length - 1) + 1)


def check_ttl(ttl: float | None) -> None:
    if ttl is not None and not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")


class _SortedSet:
    """Members ordered by (score, member), as Redis orders ties: bytewise by member."""

    __slots__ = ("order", "scores")

    def __init__(self) -> None:
        self.scores: dict[str, float] = {}
        self.order: list[tuple[float, str]] = []

    def add(self, member: str, score: float, only_greater: bool) -> bool:
        if math.isnan(score):
            raise ValueError(f"score for {member!r} is not a number")
        old = self.scores.get(member)
        if old is not None:
            if score == old or (only_greater and score < old):
                return False
            del self.order[bisect_left(self.order, (old, member))]
        self.scores[member] = score
        insort(self.order, (score, member))
        return True

    def remove(self, member: str) -> bool:
        score = self.scores.pop(member, None)
        if score is None:
            return False
        del self.order[bisect_left(self.order, (score, member))]
        return True

    def revrank(self, member: str) -> int | None:
        score = self.scores.get(member)
        if score is None:
            return None
        return len(self.order) - 1 - bisect_left(self.order, (score, member))

    def revrange(self, start: int, stop: int) -> list[tuple[str, float]]:
        last = len(self.order) - 1
        return [
            (self.order[last - i][1], self.order[last - i][0]) for i in _span(last + 1, start, stop)
        ]


@dataclass(slots=True)
class _Entry:
    value: bytes | list[bytes] | _SortedSet
    expires_at: float | None = None


class MemoryCache(_Embedded):
    """The ``Cache`` port in a dict: TTLs on a monotonic clock, at most ``max_keys`` keys.

    A write that would exceed ``max_keys`` first drops expired keys, then the
    oldest ones (by creation or last ``set``). Expiry times wait in a heap
    that a key re-set with a TTL leaves a stale row in; it is rebuilt (and
    expired keys dropped) once it holds more than twice as many rows as there
    are keys, so keys rewritten on a timer (presence, session records) do not
    grow it while their number stays put. Values keep Redis types: a key holds bytes
    (counters included, as decimal text), a list or a sorted set, and using it
    as another type raises ``TypeError`` as Redis answers ``WRONGTYPE``.
    """

    def __init__(
        self, max_keys: int = DEFAULT_MAX_KEYS, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._max_keys = max_keys
        self._clock = clock
        self._data: dict[str, _Entry] = {}  # oldest first: eviction order
        self._expiry: list[tuple[float, str]] = []  # heap; stale rows skipped on pop
        self._hits = self._misses = self._evictions = self._expirations = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        del settings  # nothing to configure yet; kept for symmetry with RedisCache
        return cls()

    def _release(self) -> None:
        self._data.clear()
        self._expiry.clear()

    def flush(self) -> None:
        """Forget every key, as ``FLUSHDB`` does to Redis: what survives must be stored."""
        self._release()

    # -- storage helpers ------------------------------------------------------

    def _purge_expired(self, now: float) -> None:
        heap = self._expiry
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            entry = self._data.get(key)
            if entry is not None and entry.expires_at is not None and entry.expires_at <= now:
                del self._data[key]
                self._expirations += 1
        # Re-set keys leave stale heap rows; rebuild before they outnumber live keys.
        if len(heap) > 2 * len(self._data) + STALE_ROWS_SLACK:
            self._expiry = [(e.expires_at, k) for k, e in self._data.items() if e.expires_at]
            heapq.heapify(self._expiry)

    def _live(self, key: str) -> _Entry | None:
        entry = self._data.get(key)
        if entry is not None and entry.expires_at is not None and entry.expires_at <= self._clock():
            del self._data[key]
            self._expirations += 1
            return None
        return entry

    def _set_expiry(self, key: str, entry: _Entry, ttl: float | None) -> None:
        entry.expires_at = None if ttl is None else self._clock() + ttl
        if entry.expires_at is not None:
            heap = self._expiry
            heapq.heappush(heap, (entry.expires_at, key))
            # Every new expiry of a key leaves its old row behind (a session's mark, a
            # room's push log: many times a second). Prune here, not only when the cache
            # is full, or the heap grows without bound while the keys stay few.
            if len(heap) > 2 * len(self._data) + STALE_ROWS_SLACK:
                self._purge_expired(self._clock())

    def _write(self, key: str, entry: _Entry) -> None:
        """Store ``entry`` as the newest key, evicting to stay within ``max_keys``."""
        self._data.pop(key, None)
        if len(self._data) >= self._max_keys:
            self._purge_expired(self._clock())
            while len(self._data) >= self._max_keys:
                del self._data[next(iter(self._data))]
                self._evictions += 1
        self._data[key] = entry

    def _typed(self, key: str, kind: type[_T]) -> _T | None:
        entry = self._live(key)
        if entry is None:
            return None
        if not isinstance(entry.value, kind):
            raise TypeError(f"WRONGTYPE: {key!r} does not hold a {kind.__name__}")
        return entry.value

    # -- the port -------------------------------------------------------------

    # For the features' scripts (``typogram.adapters.memory_scripts``), which act on this
    # store in one step: synchronous, so nothing runs in between.

    def peek(self, key: str) -> bytes | None:
        """``get`` without counting a hit or a miss."""
        self._check()
        return self._typed(key, bytes)

    def check_type(self, key: str, kind: type[bytes | list[bytes]]) -> None:
        """Raise ``TypeError`` (Redis: ``WRONGTYPE``) when ``key`` holds another type."""
        self._check()
        self._typed(key, kind)

    def expire_now(self, key: str, ttl: float) -> None:
        """``expire`` of a key known to exist (just written), without a suspension."""
        self._set_expiry(key, self._data[key], ttl)

    async def get(self, key: str) -> bytes | None:
        self._check()
        value = self._typed(key, bytes)
        if value is None:
            self._misses += 1
        else:
            self._hits += 1
        return value

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._check()
        check_ttl(ttl)
        entry = _Entry(bytes(value))
        self._set_expiry(key, entry, ttl)
        self._write(key, entry)

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        self._check()
        if self._live(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, *keys: str) -> int:
        self._check()
        removed = 0
        for key in keys:
            if self._live(key) is not None:
                del self._data[key]
                removed += 1
        return removed

    async def ttl(self, key: str) -> float | None:
        self._check()
        entry = self._live(key)
        if entry is None or entry.expires_at is None:
            return None
        return max(entry.expires_at - self._clock(), 0.0)

    async def incr_each(self, keys: Sequence[str], ttl: float) -> list[int]:
        return [await self.incr(key, 1, ttl) for key in keys]

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        self._check()
        check_ttl(ttl)
        entry = self._live(key)
        if entry is None:
            entry = _Entry(b"0")
            self._set_expiry(key, entry, ttl)
            self._write(key, entry)
        if not isinstance(entry.value, bytes):
            raise TypeError(f"WRONGTYPE: {key!r} does not hold a counter")
        try:
            total = int(entry.value) + amount
        except ValueError:
            raise ValueError(f"{key!r} does not hold an integer") from None
        entry.value = str(total).encode()
        return total

    async def list_push(
        self, key: str, value: bytes, max_len: int, ttl: float | None = None
    ) -> None:
        self._check()
        check_ttl(ttl)
        if max_len < 1:
            raise ValueError("max_len must be at least 1")
        items = self._typed(key, list)
        if items is None:
            items = []
            self._write(key, _Entry(items))
        items.append(bytes(value))
        if len(items) > max_len:
            del items[: len(items) - max_len]
        if ttl is not None:
            self._set_expiry(key, self._data[key], ttl)

    async def list_range(self, key: str, start: int = 0, stop: int = -1) -> list[bytes]:
        self._check()
        items = self._typed(key, list)
        if items is None:
            return []
        return [items[i] for i in _span(len(items), start, stop)]

    async def list_remove(self, key: str, value: bytes) -> int:
        self._check()
        items = self._typed(key, list)
        if items is None:
            return 0
        kept = [item for item in items if item != value]
        removed = len(items) - len(kept)
        items[:] = kept
        if not items:
            self._data.pop(key, None)
        return removed

    async def write_batch(
        self,
        lists: Mapping[str, tuple[Sequence[bytes], int]],
        values: Mapping[str, bytes],
        ttl: float,
    ) -> None:
        self._check()
        check_ttl(ttl)
        for key, (items, max_len) in lists.items():
            for item in items:
                await self.list_push(key, item, max_len)
            if key in self._data:
                self._set_expiry(key, self._data[key], ttl)
        for key, value in values.items():
            await self.set(key, value, ttl)

    async def zadd(
        self, key: str, scores: Mapping[str, float], *, only_greater: bool = False
    ) -> int:
        self._check()
        if not scores:
            return 0
        zset = self._typed(key, _SortedSet)
        if zset is None:
            zset = _SortedSet()
            self._write(key, _Entry(zset))
        return sum(zset.add(member, float(score), only_greater) for member, score in scores.items())

    async def zscore(self, key: str, member: str) -> float | None:
        self._check()
        zset = self._typed(key, _SortedSet)
        return None if zset is None else zset.scores.get(member)

    async def zrevrank(self, key: str, member: str) -> int | None:
        self._check()
        zset = self._typed(key, _SortedSet)
        return None if zset is None else zset.revrank(member)

    async def zrevrange(self, key: str, start: int, stop: int) -> list[tuple[str, float]]:
        self._check()
        zset = self._typed(key, _SortedSet)
        return [] if zset is None else zset.revrange(start, stop)

    async def zrem(self, key: str, *members: str) -> int:
        self._check()
        zset = self._typed(key, _SortedSet)
        if zset is None:
            return 0
        removed = sum(zset.remove(member) for member in members)
        if not zset.scores:  # Redis deletes an emptied sorted set
            del self._data[key]
        return removed

    async def expire(self, key: str, ttl: float) -> bool:
        self._check()
        entry = self._live(key)
        if entry is None:
            return False
        if ttl <= 0:  # Redis deletes a key given a non-positive expiry
            del self._data[key]
        else:
            self._set_expiry(key, entry, ttl)
        return True

    def statistics(self) -> dict[str, float]:
        lookups = self._hits + self._misses
        return {
            "hits": self._hits,
            "misses": self._misses,
            "hit_rate": self._hits / lookups if lookups else 0.0,
            "keys": len(self._data),
            "max_keys": self._max_keys,
            "evictions": self._evictions,
            "expirations": self._expirations,
            "expiry_rows": len(self._expiry),  # live keys' expiries and stale rows
        }
