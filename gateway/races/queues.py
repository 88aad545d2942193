"""Match queues: where tickets wait for ``matchmaking.policy.match``, in memory or in Redis.

One queue per (difficulty, lang) (``keys.race_queue``): a sorted set of ticket
ids by enqueue time, each ticket's JSON in one hash (``keys.race_queue_tickets``).
A player is in one place at a time, kept by a marker (``keys.race_player``):
``q:<ticket>`` while queued, ``r:<race>`` while racing. Every call that
changes more than one key is atomic -- a Lua script on Redis, a stretch of
code with no ``await`` in memory -- so several gateway nodes may match from
the same queues:

* ``enqueue`` refuses (returns the marker) a player already queued or racing;
* ``take`` removes a matched group's tickets all or none and marks each
  player ``r:<race>``; a node that lost the race to another matcher gets False;
* ``claim`` marks a player in a private race unless they are elsewhere;
* ``release`` frees a player from a race that is over (only that race).

The Redis scripts touch keys they read from ticket JSON, so they assume one
Redis (not Cluster). Markers expire (``ttl_s``) so a crashed node cannot pin
a player forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, Self

import orjson

from matchmaking.policy import MatchTicket
from typogram import keys
from typogram.adapters.redis_endpoint import RedisEndpoint


@dataclass(frozen=True, slots=True)
class QueuedTicket:
    """A ticket as stored: the policy's view plus who to tell (name, the player's node)."""

    ticket: MatchTicket
    name: str
    node: str

    @property
    def queue(self) -> str:
        return keys.race_queue(self.ticket.difficulty, self.ticket.lang)

    def encode(self, prefix: str = "") -> bytes:
        t = self.ticket
        return orjson.dumps(
            {
                "id": t.ticket_id,
                "user": t.user_id,
                "rating": t.rating,
                "difficulty": t.difficulty,
                "lang": t.lang,
                "at": t.enqueued_at_ms,
                "guest": t.guest,
                "name": self.name,
                "node": self.node,
                "q": prefix + self.queue,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> QueuedTicket:
        doc: dict[str, Any] = orjson.loads(raw)
        ticket = MatchTicket(
            ticket_id=str(doc["id"]),
            user_id=str(doc["user"]),
            rating=float(doc["rating"]),
            difficulty=str(doc["difficulty"]),
            lang=str(doc["lang"]),
            enqueued_at_ms=int(doc["at"]),
            guest=bool(doc["guest"]),
        )
        return cls(ticket, str(doc["name"]), str(doc["node"]))


class MatchQueue(Protocol):
    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...

    async def enqueue(self, entry: QueuedTicket, ttl_s: float) -> str | None:
        """Queue a ticket; ``None`` when queued, else the marker of where the player is."""
        ...

    async def cancel(self, user_id: str, ticket_id: str) -> bool: ...
    async def queues(self) -> list[str]: ...
    async def tickets(self, queue: str) -> list[QueuedTicket]: ...
    async def take(
        self, queue: str, entries: list[QueuedTicket], race_id: str, ttl_s: float
    ) -> bool:
        """Remove every ticket of a group and mark its players in ``race_id``; all or none."""
        ...

    async def claim(self, user_id: str, race_id: str, ttl_s: float) -> str | None:
        """Mark a player in ``race_id``; ``None`` if done, else where they already are."""
        ...

    async def where(self, user_id: str) -> str | None: ...
    async def release(self, user_id: str, race_id: str) -> None: ...


# -- in memory ------------------------------------------------------------------


class MemoryMatchQueue:
    """The embedded adapter: no awaits inside a change, so each call is atomic."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._queues: dict[str, dict[str, QueuedTicket]] = {}
        self._players: dict[str, tuple[str, float]] = {}  # user -> (marker, expires)
        self._open = False

    async def __aenter__(self) -> Self:
        self._open = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._open = False

    def _marker(self, user_id: str) -> str | None:
        found = self._players.get(user_id)
        if found is None:
            return None
        if found[1] <= self._clock():
            del self._players[user_id]
            return None
        return found[0]

    def _mark(self, user_id: str, marker: str, ttl_s: float) -> None:
        self._players[user_id] = (marker, self._clock() + ttl_s)

    async def enqueue(self, entry: QueuedTicket, ttl_s: float) -> str | None:
        user = entry.ticket.user_id
        current = self._marker(user)
        if current is not None:
            return current
        self._mark(user, "q:" + entry.ticket.ticket_id, ttl_s)
        self._queues.setdefault(entry.queue, {})[entry.ticket.ticket_id] = entry
        return None

    async def cancel(self, user_id: str, ticket_id: str) -> bool:
        for name, queue in self._queues.items():
            entry = queue.get(ticket_id)
            if entry is not None and entry.ticket.user_id == user_id:
                del queue[ticket_id]
                if not queue:
                    del self._queues[name]
                if self._marker(user_id) == "q:" + ticket_id:
                    del self._players[user_id]
                return True
        return False

    async def queues(self) -> list[str]:
        return sorted(self._queues)

    async def tickets(self, queue: str) -> list[QueuedTicket]:
        return list(self._queues.get(queue, {}).values())

    async def take(
        self, queue: str, entries: list[QueuedTicket], race_id: str, ttl_s: float
    ) -> bool:
        waiting = self._queues.get(queue, {})
        if any(e.ticket.ticket_id not in waiting for e in entries):
            return False
        for entry in entries:
            del waiting[entry.ticket.ticket_id]
            self._mark(entry.ticket.user_id, "r:" + race_id, ttl_s)
        if not waiting:
            self._queues.pop(queue, None)
        return True

    async def claim(self, user_id: str, race_id: str, ttl_s: float) -> str | None:
        current = self._marker(user_id)
        if current is not None and current != "r:" + race_id:
            return current
        self._mark(user_id, "r:" + race_id, ttl_s)
        return None

    async def where(self, user_id: str) -> str | None:
        return self._marker(user_id)

    async def release(self, user_id: str, race_id: str) -> None:
        if self._marker(user_id) == "r:" + race_id:
            del self._players[user_id]


# -- Redis ------------------------------------------------------------------------

_ENQUEUE = """
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], 'q:' .. ARGV[1], 'PX', ARGV[4])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('SADD', KEYS[4], KEYS[3])
return false
"""

_CANCEL = """
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return 0 end
local t = cjson.decode(raw)
if t['user'] ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', t['q'], ARGV[1])
if redis.call('GET', KEYS[1]) == 'q:' .. ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS: queue, tickets hash, queues set, then one player marker per ticket (ARGV[3..] order).
_TAKE = """
local n = #ARGV - 2
for i = 1, n do
  if not redis.call('ZSCORE', KEYS[1], ARGV[i + 2]) then return 0 end
end
for i = 1, n do
  redis.call('ZREM', KEYS[1], ARGV[i + 2])
  redis.call('HDEL', KEYS[2], ARGV[i + 2])
  redis.call('SET', KEYS[i + 3], 'r:' .. ARGV[1], 'PX', ARGV[2])
end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], KEYS[1]) end
return 1
"""

_CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= 'r:' .. ARGV[1] then return cur end
redis.call('SET', KEYS[1], 'r:' .. ARGV[1], 'PX', ARGV[2])
return false
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == 'r:' .. ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisMatchQueue:
    """The distributed adapter: one client, keys under the deployment's ``prefix``."""

    def __init__(
        self, endpoint: RedisEndpoint | str, prefix: str = "", timeout_s: float = 5.0
    ) -> None:
        self._endpoint = RedisEndpoint(endpoint) if isinstance(endpoint, str) else endpoint
        self._prefix = prefix
        self._timeout = timeout_s
        self._client: Any = None
        self._scripts: dict[str, Any] = {}

    async def __aenter__(self) -> Self:
        # With Sentinel, a pool that finds the master again after a failover.
        self._client = self._endpoint.client(
            socket_timeout=self._timeout, socket_connect_timeout=self._timeout
        )
        await self._client.ping()
        for name, body in (
            ("enqueue", _ENQUEUE),
            ("cancel", _CANCEL),
            ("take", _TAKE),
            ("claim", _CLAIM),
            ("release", _RELEASE),
        ):
            self._scripts[name] = self._client.register_script(body)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await self._endpoint.aclose()

    def _k(self, key: str) -> str:
        return self._prefix + key

    def _redis(self) -> Any:
        if self._client is None:
            raise RuntimeError("the match queue is closed")
        return self._client

    async def enqueue(self, entry: QueuedTicket, ttl_s: float) -> str | None:
        self._redis()
        t = entry.ticket
        found = await self._scripts["enqueue"](
            keys=[
                self._k(keys.race_player(t.user_id)),
                self._k(keys.race_queue_tickets()),
                self._k(entry.queue),
                self._k(keys.race_queues()),
            ],
            args=[t.ticket_id, entry.encode(self._prefix), t.enqueued_at_ms, int(ttl_s * 1000)],
        )
        return None if found is None else _text(found)

    async def cancel(self, user_id: str, ticket_id: str) -> bool:
        self._redis()
        done = await self._scripts["cancel"](
            keys=[self._k(keys.race_player(user_id)), self._k(keys.race_queue_tickets())],
            args=[ticket_id, user_id],
        )
        return bool(done)

    async def queues(self) -> list[str]:
        names = await self._redis().smembers(self._k(keys.race_queues()))
        cut = len(self._prefix)
        return sorted(_text(n)[cut:] for n in names)

    async def tickets(self, queue: str) -> list[QueuedTicket]:
        client = self._redis()
        ids = await client.zrange(self._k(queue), 0, -1)
        if not ids:
            return []
        raws = await client.hmget(self._k(keys.race_queue_tickets()), ids)
        return [QueuedTicket.decode(raw) for raw in raws if raw is not None]

    async def take(
        self, queue: str, entries: list[QueuedTicket], race_id: str, ttl_s: float
    ) -> bool:
        self._redis()
        done = await self._scripts["take"](
            keys=[
                self._k(queue),
                self._k(keys.race_queue_tickets()),
                self._k(keys.race_queues()),
                *(self._k(keys.race_player(e.ticket.user_id)) for e in entries),
            ],
            args=[race_id, int(ttl_s * 1000), *(e.ticket.ticket_id for e in entries)],
        )
        return bool(done)

    async def claim(self, user_id: str, race_id: str, ttl_s: float) -> str | None:
        self._redis()
        found = await self._scripts["claim"](
            keys=[self._k(keys.race_player(user_id))], args=[race_id, int(ttl_s * 1000)]
        )
        return None if found is None else _text(found)

    async def where(self, user_id: str) -> str | None:
        found = await self._redis().get(self._k(keys.race_player(user_id)))
        return None if found is None else _text(found)

    async def release(self, user_id: str, race_id: str) -> None:
        self._redis()
        await self._scripts["release"](keys=[self._k(keys.race_player(user_id))], args=[race_id])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
