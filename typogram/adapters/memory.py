"""Embedded adapters: cache, pub/sub and event log inside one process.

``typogram serve`` and the unit tests run on these. They keep the contracts
of ``typogram.ports`` with Redis and Kafka semantics (``tests/contract``
runs one suite against both), and every structure is bounded: the cache by
``max_keys``, each event-log consumer group by ``queue_size``.

They are not thread-safe: call them from the event loop that entered them.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
from bisect import bisect_left, insort
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Self, TypeVar

from typogram.ports import Event, Listener
from typogram.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_MAX_KEYS = 100_000
_T = TypeVar("_T")


def _span(length: int, start: int, stop: int) -> range:
    """Redis ``LRANGE``/``ZRANGE`` indices (inclusive, negative from the end) as a range."""
    if start < 0:
        start = max(length + start, 0)
    if stop < 0:
        stop += length
    return range(start, min(stop, length - 1) + 1)


def _check_ttl(ttl: float | None) -> None:
    if ttl is not None and not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")


class _Embedded:
    """Lifecycle shared by the embedded adapters: enter once, refuse use after exit."""

    _state = "new"

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError(f"{type(self).__name__} can be entered once")
        self._state = "open"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._state = "closed"
        self._release()

    def _release(self) -> None:
        """Drop what the adapter holds; called once on exit."""

    def _check(self) -> None:
        if self._state != "open":
            what = "closed" if self._state == "closed" else "not entered yet"
            raise RuntimeError(f"{type(self).__name__} is {what}")

    async def ping(self) -> None:
        self._check()


class _SortedSet:
    """Members ordered by (score, member), as Redis orders ties: bytewise by member."""

    __slots__ = ("order", "scores")

    def __init__(self) -> None:
        self.scores: dict[str, float] = {}
        self.order: list[tuple[float, str]] = []

    def add(self, member: str, score: float, only_greater: bool) -> None:
        if math.isnan(score):
            raise ValueError(f"score for {member!r} is not a number")
        old = self.scores.get(member)
        if old is not None:
            if score == old or (only_greater and score < old):
                return
            del self.order[bisect_left(self.order, (old, member))]
        self.scores[member] = score
        insort(self.order, (score, member))

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
    oldest ones (by creation or last ``set``). Values keep Redis types: a key holds bytes
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
        if len(heap) > 2 * len(self._data) + 1024:
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
            heapq.heappush(self._expiry, (entry.expires_at, key))

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
        _check_ttl(ttl)
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

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        self._check()
        _check_ttl(ttl)
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
        _check_ttl(ttl)
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

    async def zadd(
        self, key: str, scores: Mapping[str, float], *, only_greater: bool = False
    ) -> None:
        self._check()
        if not scores:
            return
        zset = self._typed(key, _SortedSet)
        if zset is None:
            zset = _SortedSet()
            self._write(key, _Entry(zset))
        for member, score in scores.items():
            zset.add(member, float(score), only_greater)

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
        }


class MemoryPubSub(_Embedded):
    """The ``PubSub`` port inside one process.

    ``publish`` calls each listener of the channel directly, before it
    returns, in subscription order. A listener that raises is logged and
    counted; the others still run. The same listener subscribed twice counts
    twice and must be unsubscribed twice.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        self._published = self._delivered = self._listener_errors = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        del settings
        return cls()

    def _release(self) -> None:
        self._listeners.clear()

    async def publish(self, channel: str, message: bytes) -> None:
        self._check()
        self._deliver(channel, message)

    async def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> None:
        self._check()
        for channel, message in messages:
            self._deliver(channel, message)

    def _deliver(self, channel: str, message: bytes) -> None:
        self._published += 1
        # A snapshot: a listener may (un)subscribe others while we iterate.
        for listener in tuple(self._listeners.get(channel, ())):
            try:
                listener(channel, message)
            except Exception:
                self._listener_errors += 1
                log.exception("pub/sub listener failed", extra={"channel": channel})
            else:
                self._delivered += 1

    async def subscribe(self, channel: str, listener: Listener) -> None:
        self._check()
        self._listeners.setdefault(channel, []).append(listener)

    async def unsubscribe(self, channel: str, listener: Listener) -> None:
        """Remove one registration of ``listener``; unknown listeners are ignored."""
        self._check()
        listeners = self._listeners.get(channel)
        if listeners and listener in listeners:
            listeners.remove(listener)
            if not listeners:
                del self._listeners[channel]

    def statistics(self) -> dict[str, float]:
        return {
            "channels": len(self._listeners),
            "listeners": sum(len(v) for v in self._listeners.values()),
            "published": self._published,
            "delivered": self._delivered,
            "listener_errors": self._listener_errors,
        }


_Message = tuple[str, bytes]


class _Group:
    """One consumer group's backlog: a deque bounded by the log's ``queue_size``.

    Two events instead of an ``asyncio.Queue`` so that closing the log can wake
    every waiting publisher and consumer at once.
    """

    __slots__ = ("backlog", "readable", "writable")

    def __init__(self) -> None:
        self.backlog: deque[_Message] = deque()
        self.readable = asyncio.Event()  # backlog not empty, or the log closed
        self.writable = asyncio.Event()  # backlog below its limit, or the log closed
        self.writable.set()


class InProcessEventLog(_Embedded):
    """The ``EventLog`` port inside one process: one bounded backlog per consumer group.

    Choices, since there is no broker:

    * An event goes to every group registered for its topic. A group is
      registered by its first ``consume`` and stays registered after that
      consumer stops, as a Kafka group keeps its offsets: a restarted
      consumer gets what was published meanwhile.
    * Events for a topic that no group has registered yet are dropped and
      counted (``dropped``): start consumers before producers.
    * When a group's backlog holds ``queue_size`` events, ``publish`` waits
      (back-pressure) until a consumer of that group takes one.
    * Consumers of one group share its backlog (competing consumers).
      Delivery is in publication order, which covers Kafka's per-key order.
    * Nothing survives the process: this log is for one-process deployments.
    """

    def __init__(self, queue_size: int = 10_000) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._queue_size = queue_size
        self._groups: dict[str, _Group] = {}
        self._routes: dict[str, set[str]] = defaultdict(set)  # topic -> groups
        self._published: dict[str, int] = defaultdict(int)
        self._consumed = self._dropped = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(queue_size=settings.event_queue_size)

    def _release(self) -> None:
        """Waiting ``publish`` and running ``consume`` calls wake up and raise ``RuntimeError``."""
        for group in self._groups.values():
            group.backlog.clear()  # unread events are lost with the process anyway
            group.readable.set()
            group.writable.set()

    async def publish(self, topic: str, event: Event) -> None:
        await self.publish_raw(topic, event.encode(), key=event.key)

    async def publish_raw(self, topic: str, value: bytes, key: str | None = None) -> None:
        self._check()
        del key  # one backlog per group keeps every key in publication order
        names = self._routes.get(topic)
        self._published[topic] += 1
        if not names:
            self._dropped += 1
            return
        for name in tuple(names):
            group = self._groups[name]
            while True:
                self._check()  # also after waiting: closed meanwhile, the event is lost
                if len(group.backlog) < self._queue_size:
                    break
                group.writable.clear()
                await group.writable.wait()
            group.backlog.append((topic, value))
            group.readable.set()

    async def consume(
        self,
        group: str,
        topics: Sequence[str],
        handler: Callable[[str, bytes], Awaitable[None]],
    ) -> None:
        """Hand each event of ``topics`` to ``handler``; runs until cancelled.

        An event counts as committed once ``handler`` returns. If ``handler``
        raises (or is cancelled) the event goes back to the front of the
        group's backlog and the error propagates, so the next consumer of the
        group receives it first. Raises ``RuntimeError`` when the log closes.
        """
        self._check()
        state = self._groups.get(group)
        if state is None:
            state = self._groups[group] = _Group()
        for topic in topics:
            self._routes[topic].add(group)
        while True:
            while not state.backlog:
                self._check()
                state.readable.clear()
                await state.readable.wait()
            message = state.backlog.popleft()
            state.writable.set()
            try:
                await handler(*message)
            except BaseException:
                state.backlog.appendleft(message)  # not committed: replay it
                state.readable.set()
                raise
            self._consumed += 1

    def statistics(self) -> dict[str, float]:
        stats: dict[str, float] = {
            "published": sum(self._published.values()),
            "consumed": self._consumed,
            "dropped": self._dropped,
            "groups": len(self._groups),
            "queued": sum(len(g.backlog) for g in self._groups.values()),
        }
        for topic, count in self._published.items():
            stats[f"published.{topic}"] = count
        return stats
