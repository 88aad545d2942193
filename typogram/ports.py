"""The ports: one small interface per piece of infrastructure.

Each has an embedded adapter (in memory / in process) and a distributed one
(Redis / Kafka); ``tests/contract`` runs one suite against both. Every
adapter is an async context manager: enter to connect, exit to release, and
use after exit raises ``RuntimeError``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

import orjson

from typogram.search import SearchHit, SearchIndex


@dataclass(frozen=True, slots=True)
class Event:
    """An event on the log: id, type, schema version, timestamp (epoch ms), key, data.

    ``key`` keeps one user's (or one race's) events in order on one partition.
    """

    type: str
    data: Mapping[str, Any]
    key: str | None = None
    version: int = 1
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ts: int = field(default_factory=lambda: int(time.time() * 1000))

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "type": self.type,
                "v": self.version,
                "ts": self.ts,
                "key": self.key,
                "data": self.data,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> Event:
        """Parse an encoded event; raises ``ValueError`` on anything malformed."""
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"event is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise ValueError("event is not an object")
        try:
            event_id, event_type, data = doc["id"], doc["type"], doc["data"]
            version, ts = int(doc.get("v", 1)), int(doc["ts"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"event lacks a field or has a wrong type: {exc}") from exc
        key = doc.get("key")
        if not (isinstance(event_id, str) and isinstance(event_type, str)):
            raise ValueError("event id and type must be strings")
        if not isinstance(data, dict) or not (key is None or isinstance(key, str)):
            raise ValueError("event data must be an object and key a string")
        return cls(type=event_type, data=data, key=key, version=version, id=event_id, ts=ts)


class Cache(Protocol):
    """Key/value with TTLs, counters, lists and sorted sets (Redis semantics).

    General operations only. A feature's atomic script over these keys is its own
    small port, built over the same cache: ``typogram.fencing.FencedWrites``,
    ``typogram.push_log.PushLog``, ``typogram.leaderboards.ScoreWrites``."""

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...

    async def ping(self) -> None: ...
    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...
    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool: ...
    async def delete(self, *keys: str) -> int: ...
    async def ttl(self, key: str) -> float | None:
        """Seconds left, ``None`` when the key is missing or never expires."""
        ...

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add to a counter; ``ttl`` is set when this call creates the key."""
        ...

    async def incr_each(self, keys: Sequence[str], ttl: float) -> list[int]:
        """``incr(key, 1, ttl)`` for each key, in one round trip (shared with other
        callers where the adapter can); the new values in order."""
        ...

    async def list_push(
        self, key: str, value: bytes, max_len: int, ttl: float | None = None
    ) -> None:
        """Append to a list kept to its newest ``max_len`` items."""
        ...

    async def list_range(self, key: str, start: int = 0, stop: int = -1) -> list[bytes]: ...
    async def list_remove(self, key: str, value: bytes) -> int:
        """Remove every item equal to ``value`` from a list; returns how many went."""
        ...

    async def write_batch(
        self,
        lists: Mapping[str, tuple[Sequence[bytes], int]],
        values: Mapping[str, bytes],
        ttl: float,
    ) -> None:
        """One round trip: append ``items`` to each list (kept to ``max_len``) and set each
        value; every key named expires ``ttl`` after this call. Not atomic across keys."""
        ...

    async def zadd(
        self, key: str, scores: Mapping[str, float], *, only_greater: bool = False
    ) -> int:
        """Set members' scores (``only_greater``: raise only, never lower; a new member is
        always added). Returns how many members were added or changed score."""
        ...

    async def zscore(self, key: str, member: str) -> float | None: ...
    async def zrevrank(self, key: str, member: str) -> int | None: ...
    async def zrevrange(self, key: str, start: int, stop: int) -> list[tuple[str, float]]: ...
    async def zrem(self, key: str, *members: str) -> int: ...
    async def expire(self, key: str, ttl: float) -> bool: ...
    def statistics(self) -> dict[str, float]: ...


Listener = Callable[[str, bytes], None]


class PubSub(Protocol):
    """Fan-out between processes. Listeners run on the event loop and must not block.

    Subscriptions are reference-counted per channel: the adapter subscribes
    upstream on the first listener and unsubscribes after the last.
    """

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...

    async def ping(self) -> None: ...
    async def publish(self, channel: str, message: bytes) -> None: ...
    async def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> None: ...
    async def subscribe(self, channel: str, listener: Listener) -> None: ...
    async def unsubscribe(self, channel: str, listener: Listener) -> None: ...
    def statistics(self) -> dict[str, float]: ...


EventHandler = Callable[[str, Event], Awaitable[None]]
Header = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One record read back from a topic (``EventLog.read_back``): where it sits, its key,
    value and headers. ``timestamp`` is epoch ms, set when it was published."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: str | None
    value: bytes
    headers: tuple[Header, ...] = ()


class EventLog(Protocol):
    """A partitioned, durable event log (Kafka semantics, at-least-once).

    ``consume`` runs until cancelled: it hands each event to ``handler`` and
    commits its offset only after the handler returns, so a crash replays.
    """

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...

    async def ping(self) -> None: ...
    async def publish(self, topic: str, event: Event) -> None: ...
    async def publish_raw(
        self, topic: str, value: bytes, key: str | None = None, headers: Sequence[Header] = ()
    ) -> None:
        """Publish bytes as they are (dead letters keep the original payload). ``headers``
        travel with the record for ``read_back``; ``consume`` hands over the value only."""
        ...

    async def read_back(self, topic: str, limit: int) -> list[LogRecord]:
        """The newest ``limit`` records still held for ``topic``, by partition then offset.

        Reads without a consumer group: nothing is committed and no consumer
        is disturbed. A topic that does not exist reads as empty. The
        embedded log holds history for dead-letter topics only (the newest
        ``queue_size`` records of each), which is what ``typogram dlq`` reads.
        """
        ...

    async def consume(
        self,
        group: str,
        topics: Sequence[str],
        handler: Callable[[str, bytes], Awaitable[None]],
    ) -> None: ...
    def consumer_lag(self) -> dict[tuple[str, str], int]:
        """Messages waiting for this process's consumers, per (group, topic): sampled
        (at most about once a second per consumer), never on the delivery path."""
        ...

    def statistics(self) -> dict[str, float]: ...


class Archive(Protocol):
    """Object storage for cold data (archived partitions): a local folder or S3.

    Keys are ``/``-separated paths; ``put`` overwrites; ``get`` of a missing
    key returns ``None``; ``list`` returns keys under a prefix, sorted.
    """

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...

    async def ping(self) -> None: ...
    async def put(self, key: str, data: bytes) -> None: ...
    async def get(self, key: str) -> bytes | None: ...
    async def list(self, prefix: str = "") -> list[str]: ...
    async def delete(self, key: str) -> None: ...
    def statistics(self) -> dict[str, float]: ...


class Search(Protocol):
    """Full-text search over a ``typogram.search.SearchIndex`` (rules in that module).

    ``search`` never raises for what a user typed: the query is reduced to
    terms first, and a query without terms finds nothing.
    """

    async def search(
        self, index: SearchIndex, query: str, *, limit: int, public_at: int | None = None
    ) -> list[SearchHit]:
        """The best ``limit`` matches, best first (ties by key). With ``public_at`` (epoch
        ms; the index must declare its ``visibility``), only documents public then."""
        ...

    def statistics(self) -> dict[str, float]: ...
