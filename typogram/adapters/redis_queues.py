"""The ``MatchQueues`` port on Redis (rules in ``typogram.match_queues``).

A queue is a sorted set of ticket ids by enqueue time (``keys.race_queue``),
every ticket's JSON sits in one hash (``keys.race_queue_tickets``), the
queues that may hold tickets in one set (``keys.race_queues``), each
player's marker in its own key (``keys.race_player``) and each taken
ticket's player and race in its own key for the take's TTL
(``keys.race_ticket``). Every call is one Lua
script, so several gateway nodes may match from the same queues; a read that
spans keys (a queue's tickets) is one consistent step too. The scripts touch
keys they read from ticket JSON, so they assume one Redis (not Cluster).

Built over the platform's ``RedisCache``, as the features' script ports are
(``typogram.adapters.redis_scripts``): the scripts go through the cache's
pipelined connection (``RedisCache.run_script``, loaded again if Redis forgot
them), on its server, Sentinel set and key prefix, so the queues open no
connection of their own. None of the scripts blocks (no ``BLPOP`` or the
like), so sharing that connection holds up no other command.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final, Self

from typogram import keys
from typogram.adapters.redis import RedisCache
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

# KEYS: queue, tickets hash, queues set, then one player marker per ticket, then one
# outcome key per ticket (both in ARGV[3..] order). ARGV: race id, PX, ticket ids. All or
# none: every ticket still queued and every marker absent (lapsed) or naming that very
# ticket. Each outcome keeps the stored ticket's player and the race (rule 3a).
_TAKE: Final = """
local n = #ARGV - 2
for i = 1, n do
  if not redis.call('ZSCORE', KEYS[1], ARGV[i + 2]) then return 0 end
  local cur = redis.call('GET', KEYS[i + 3])
  if cur and cur ~= 'q:' .. ARGV[i + 2] then return 0 end
end
for i = 1, n do
  local raw = redis.call('HGET', KEYS[2], ARGV[i + 2])
  if raw then
    local user = cjson.decode(raw)['user']
    local outcome = cjson.encode({user = user, race = ARGV[1]})
    redis.call('SET', KEYS[i + 3 + n], outcome, 'PX', ARGV[2])
  end
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

# Reads, each one script through the cache's connection. KEYS: the queues set.
_QUEUES: Final = "return redis.call('SMEMBERS', KEYS[1])"

# KEYS: queue, tickets hash. The queue's tickets' JSON, by time then id, in one step.
_TICKETS: Final = """
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local raw = redis.call('HGET', KEYS[2], id)
  if raw then out[#out + 1] = raw end
end
return out
"""

# KEYS: a player's marker.
_WHERE: Final = "return redis.call('GET', KEYS[1])"

# KEYS: a ticket's outcome. ARGV: the asking user. The race, to the ticket's player only.
_MATCHED: Final = """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local outcome = cjson.decode(raw)
if outcome['user'] ~= ARGV[1] then return false end
return outcome['race']
"""

# No keys: the path every call takes (the cache's connection, a script) answers.
_PING: Final = "return 1"


def _ms(ttl_s: float) -> int:
    check_ttl(ttl_s)
    return max(1, round(ttl_s * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisMatchQueues:
    """The distributed adapter over a ``RedisCache``, with keys under the cache's prefix.
    Enter it after the cache and leave it before the cache closes."""

    def __init__(self, cache: RedisCache) -> None:
        self._cache = cache
        self._prefix = cache.prefix
        self._state = "new"
        self._enqueued = self._taken = self._refused = 0

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError("RedisMatchQueues can be entered once")
        self._state = "open"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._state = "closed"

    def _k(self, key: str) -> str:
        return self._prefix + key

    async def _run(self, body: str, keys: list[Any], args: list[Any]) -> Any:
        if self._state != "open":
            what = "closed" if self._state == "closed" else "not entered yet"
            raise RuntimeError(f"RedisMatchQueues is {what}")
        return await self._cache.run_script(body, keys, args)

    async def ping(self) -> None:
        """A script through the cache's connection, as every call here is (``/ready``)."""
        await self._run(_PING, [], [])

    async def enqueue(self, entry: QueuedTicket, ttl_s: float) -> str | None:
        check_entry(entry)
        t = entry.ticket
        found = await self._run(
            _ENQUEUE,
            [
                self._k(keys.race_player(t.user_id)),
                self._k(keys.race_queue_tickets()),
                self._k(entry.queue),
                self._k(keys.race_queues()),
            ],
            [t.ticket_id, entry.encode(self._prefix), t.enqueued_at_ms, _ms(ttl_s)],
        )
        if found is not None:
            return _text(found)
        self._enqueued += 1
        return None

    async def cancel(self, user_id: str, ticket_id: str) -> bool:
        done = await self._run(
            _CANCEL,
            [
                self._k(keys.race_player(user_id)),
                self._k(keys.race_queue_tickets()),
                self._k(keys.race_queues()),
            ],
            [ticket_id, user_id],
        )
        return bool(done)

    async def queues(self) -> list[str]:
        names = await self._run(_QUEUES, [self._k(keys.race_queues())], [])
        cut = len(self._prefix)
        return sorted(_text(n)[cut:] for n in names)

    async def tickets(self, queue: str) -> list[QueuedTicket]:
        raws = await self._run(_TICKETS, [self._k(queue), self._k(keys.race_queue_tickets())], [])
        out: list[QueuedTicket] = []
        for raw in raws:
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
        done = await self._run(
            _TAKE,
            [
                self._k(queue),
                self._k(keys.race_queue_tickets()),
                self._k(keys.race_queues()),
                *(self._k(keys.race_player(e.ticket.user_id)) for e in entries),
                *(self._k(keys.race_ticket(e.ticket.ticket_id)) for e in entries),
            ],
            args,
        )
        if not done:
            self._refused += 1
            return False
        self._taken += 1
        return True

    async def claim(self, user_id: str, race_id: str, ttl_s: float) -> str | None:
        check_id("user id", user_id)
        check_id("race id", race_id)
        found = await self._run(_CLAIM, [self._k(keys.race_player(user_id))], [race_id, _ms(ttl_s)])
        return None if found is None else _text(found)

    async def where(self, user_id: str) -> str | None:
        found = await self._run(_WHERE, [self._k(keys.race_player(user_id))], [])
        return None if found is None else _text(found)

    async def matched(self, user_id: str, ticket_id: str) -> str | None:
        found = await self._run(_MATCHED, [self._k(keys.race_ticket(ticket_id))], [user_id])
        return None if found is None else _text(found)

    async def release(self, user_id: str, race_id: str) -> None:
        await self._run(_RELEASE, [self._k(keys.race_player(user_id))], [race_id])

    def statistics(self) -> dict[str, float]:
        return {"enqueued": self._enqueued, "taken": self._taken, "take_refused": self._refused}
