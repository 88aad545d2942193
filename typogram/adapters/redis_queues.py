"""The ``MatchQueues`` port on Redis (rules in ``typogram.match_queues``).

A queue is a sorted set of ticket ids by enqueue time (``keys.race_queue``),
every ticket's JSON sits in one hash (``keys.race_queue_tickets``), the
queues that may hold tickets in one set (``keys.race_queues``) and each
player's marker in its own key (``keys.race_player``). Every change of more
than one key is one Lua script, so several gateway nodes may match from the
same queues. The scripts touch keys they read from ticket JSON, so they
assume one Redis (not Cluster). Connection, Sentinel and key prefix are the
platform's (``_RedisAdapter``): redis-py's client runs the scripts and loads
them again if Redis forgot them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final, Self

from redis.commands.core import AsyncScript

from typogram import keys
from typogram.adapters.redis import _RedisAdapter
from typogram.match_queues import (
    QueuedTicket,
    check_entry,
    check_group,
    check_id,
    check_ttl,
)

log = logging.getLogger(__name__)

# KEYS: marker, tickets hash, queue, queues set. ARGV: ticket id, its JSON, enqueue time, PX.
_ENQUEUE: Final = """
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], 'q:' .. ARGV[1], 'PX', ARGV[4])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('SADD', KEYS[4], KEYS[3])
return false
"""

# KEYS: marker, tickets hash, queues set. ARGV: ticket id, user id. The queue comes from
# the ticket; an emptied queue leaves the queues set.
_CANCEL: Final = """
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return 0 end
local t = cjson.decode(raw)
if t['user'] ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', t['q'], ARGV[1])
if redis.call('ZCARD', t['q']) == 0 then redis.call('SREM', KEYS[3], t['q']) end
if redis.call('GET', KEYS[1]) == 'q:' .. ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS: queue, tickets hash, queues set, then one player marker per ticket (ARGV[3..] order).
# ARGV: race id, PX, ticket ids. All or none: every ticket still queued and every marker
# absent (lapsed) or naming that very ticket.
_TAKE: Final = """
local n = #ARGV - 2
for i = 1, n do
  if not redis.call('ZSCORE', KEYS[1], ARGV[i + 2]) then return 0 end
  local cur = redis.call('GET', KEYS[i + 3])
  if cur and cur ~= 'q:' .. ARGV[i + 2] then return 0 end
end
for i = 1, n do
  redis.call('ZREM', KEYS[1], ARGV[i + 2])
  redis.call('HDEL', KEYS[2], ARGV[i + 2])
  redis.call('SET', KEYS[i + 3], 'r:' .. ARGV[1], 'PX', ARGV[2])
end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], KEYS[1]) end
return 1
"""

_CLAIM: Final = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= 'r:' .. ARGV[1] then return cur end
redis.call('SET', KEYS[1], 'r:' .. ARGV[1], 'PX', ARGV[2])
return false
"""

_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == 'r:' .. ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _ms(ttl_s: float) -> int:
    check_ttl(ttl_s)
    return max(1, round(ttl_s * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisMatchQueues(_RedisAdapter):
    """The distributed adapter: keys under the deployment's ``prefix``."""

    def _setup(self) -> None:
        self._scripts: dict[str, AsyncScript] = {}
        self._enqueued = self._taken = self._refused = 0

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        for name, body in (
            ("enqueue", _ENQUEUE),
            ("cancel", _CANCEL),
            ("take", _TAKE),
            ("claim", _CLAIM),
            ("release", _RELEASE),
        ):
            self._scripts[name] = self._redis().register_script(body)
        return self

    def _k(self, key: str) -> str:
        return self._prefix + key

    def _script(self, name: str) -> AsyncScript:
        self._redis()  # raises once closed
        return self._scripts[name]

    async def enqueue(self, entry: QueuedTicket, ttl_s: float) -> str | None:
        check_entry(entry)
        t = entry.ticket
        found = await self._script("enqueue")(
            keys=[
                self._k(keys.race_player(t.user_id)),
                self._k(keys.race_queue_tickets()),
                self._k(entry.queue),
                self._k(keys.race_queues()),
            ],
            args=[t.ticket_id, entry.encode(self._prefix), t.enqueued_at_ms, _ms(ttl_s)],
        )
        if found is not None:
            return _text(found)
        self._enqueued += 1
        return None

    async def cancel(self, user_id: str, ticket_id: str) -> bool:
        done = await self._script("cancel")(
            keys=[
                self._k(keys.race_player(user_id)),
                self._k(keys.race_queue_tickets()),
                self._k(keys.race_queues()),
            ],
            args=[ticket_id, user_id],
        )
        return bool(done)

    async def queues(self) -> list[str]:
        names = await self._redis().smembers(self._k(keys.race_queues()))
        cut = len(self._prefix)
        return sorted(_text(n)[cut:] for n in names)

    async def tickets(self, queue: str) -> list[QueuedTicket]:
        client: Any = self._redis()  # replies are bytes (no ``decode_responses``)
        ids: list[bytes] = await client.zrange(self._k(queue), 0, -1)  # by time, then id
        if not ids:
            return []
        raws = await client.hmget(self._k(keys.race_queue_tickets()), ids)
        out: list[QueuedTicket] = []
        for raw in raws:
            if raw is None:  # taken or cancelled between the two reads
                continue
            try:
                out.append(QueuedTicket.decode(raw))
            except ValueError as exc:
                log.warning("skipping a ticket in %s: %s", queue, exc)
        return out

    async def take(
        self, queue: str, entries: Sequence[QueuedTicket], race_id: str, ttl_s: float
    ) -> bool:
        check_group(queue, entries)
        check_id("race id", race_id)
        args: list[Any] = [race_id, _ms(ttl_s), *(e.ticket.ticket_id for e in entries)]
        done = await self._script("take")(
            keys=[
                self._k(queue),
                self._k(keys.race_queue_tickets()),
                self._k(keys.race_queues()),
                *(self._k(keys.race_player(e.ticket.user_id)) for e in entries),
            ],
            args=args,
        )
        if not done:
            self._refused += 1
            return False
        self._taken += 1
        return True

    async def claim(self, user_id: str, race_id: str, ttl_s: float) -> str | None:
        check_id("user id", user_id)
        check_id("race id", race_id)
        found = await self._script("claim")(
            keys=[self._k(keys.race_player(user_id))], args=[race_id, _ms(ttl_s)]
        )
        return None if found is None else _text(found)

    async def where(self, user_id: str) -> str | None:
        found = await self._redis().get(self._k(keys.race_player(user_id)))
        return None if found is None else _text(found)

    async def release(self, user_id: str, race_id: str) -> None:
        await self._script("release")(keys=[self._k(keys.race_player(user_id))], args=[race_id])

    def statistics(self) -> dict[str, float]:
        return {"enqueued": self._enqueued, "taken": self._taken, "take_refused": self._refused}
