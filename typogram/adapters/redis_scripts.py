"""The features' scripts on Redis: fenced writes, the push log, score raises.

Each class is the Redis adapter of one feature's port, built over a
``RedisCache``: its scripts run through that cache's pipelined connection
(``RedisCache.run_script``, loaded again if Redis forgot them) on the same
prefixed keys. Each call is one Lua script, so one atomic step; the embedded
twins are in ``typogram.adapters.memory_scripts``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from typogram.adapters.redis import RedisCache, RedisPubSub, ttl_ms
from typogram.fencing import check_witnesses
from typogram.leaderboards import ScoreRaise
from typogram.ports import PubSub
from typogram.push_log import check_append, publish_numbered

# Writes fenced by leases (one atomic script). KEYS[1..ARGV[4]] are leases, then one value
# key per lease flagged '1' in ARGV[5+i], then (ARGV[5] == '1') one witness key per lease;
# the values follow the flags. For each lease that holds ARGV[1]: SET its value key (PX
# ARGV[2] unless 0) and its witness to ARGV[1] (the same way), then PEXPIRE the lease by
# ARGV[3] (> 0), DEL it (< 0) or leave it (0). Returns 1 (held) or 0 (not held) per lease.
_WRITE_HELD: Final = """
local n, px, lease = tonumber(ARGV[4]), tonumber(ARGV[2]), tonumber(ARGV[3])
local witnessed = ARGV[5] == '1'
local held, k, v = {}, n, 5 + n
local w = k
for i = 1, n do if ARGV[5 + i] == '1' then w = w + 1 end end
for i = 1, n do
  local write = ARGV[5 + i] == '1'
  if write then k = k + 1; v = v + 1 end
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    if write then
      if px > 0 then redis.call('SET', KEYS[k], ARGV[v], 'PX', px)
      else redis.call('SET', KEYS[k], ARGV[v]) end
      if witnessed then
        if px > 0 then redis.call('SET', KEYS[w + i], ARGV[1], 'PX', px)
        else redis.call('SET', KEYS[w + i], ARGV[1]) end
      end
    end
    if lease > 0 then redis.call('PEXPIRE', KEYS[i], lease)
    elseif lease < 0 then redis.call('DEL', KEYS[i]) end
    held[i] = 1
  else
    held[i] = 0
  end
end
return held
"""

# Leases retaken (one atomic script): KEYS are n leases then their n witnesses. Each lease
# that is missing while its witness holds ARGV[1] is SET to ARGV[1] with PX ARGV[2].
# Returns 1 (retaken) or 0 per lease.
_RETAKE: Final = """
local n, retaken = #KEYS / 2, {}
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 0 and redis.call('GET', KEYS[n + i]) == ARGV[1] then
    redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
    retaken[i] = 1
  else
    retaken[i] = 0
  end
end
return retaken
"""


class RedisFencedWrites:
    """``typogram.fencing.FencedWrites`` on a ``RedisCache``."""

    def __init__(self, cache: RedisCache) -> None:
        self._cache = cache
        self._prefix = cache.prefix

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
        if release and lease_ttl is not None:
            raise ValueError("release and lease_ttl exclude each other")
        check_witnesses(writes, witnesses)
        px = 0 if ttl is None else ttl_ms(ttl)
        lease = -1 if release else 0 if lease_ttl is None else ttl_ms(lease_ttl)
        if not writes:
            return []
        leases = list(writes)
        keys: list[Any] = [self._prefix + name for name in leases]
        flags: list[Any] = []
        values: list[Any] = []
        for write in writes.values():
            flags.append(b"0" if write is None else b"1")
            if write is not None:
                keys.append(self._prefix + write[0])
                values.append(write[1])
        if witnesses is not None:
            keys += [self._prefix + witnesses[name] for name in leases]
        witnessed = b"0" if witnesses is None else b"1"
        args: list[Any] = [holder, px, lease, len(leases), witnessed, *flags, *values]
        replies = await self._cache.run_script(_WRITE_HELD, keys, args)
        return [name for name, held in zip(leases, replies, strict=True) if not int(held)]

    async def retake(
        self, holder: bytes, witnesses: Mapping[str, str], *, lease_ttl: float
    ) -> list[str]:
        if not witnesses:
            return []
        leases = list(witnesses)
        keys = [self._prefix + name for name in leases]
        keys += [self._prefix + witnesses[name] for name in leases]
        replies = await self._cache.run_script(_RETAKE, keys, [holder, ttl_ms(lease_ttl)])
        return [name for name, back in zip(leases, replies, strict=True) if int(back)]


# INCR a counter, append "<n> value" to a list kept to ARGV[2] items, expire both; with a
# third key also append "<n> ARGV[4]" to that list kept to ARGV[5] items; with a channel in
# ARGV[6] also PUBLISH the value numbered there (``protocol.numbered_payload``: n and the
# send time ARGV[7] spliced in front of its fields). One atomic script: publications leave
# in number order.
_APPEND_NUMBERED: Final = """
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('RPUSH', KEYS[2], n .. ' ' .. ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if KEYS[3] then
  redis.call('RPUSH', KEYS[3], n .. ' ' .. ARGV[4])
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[5]), -1)
end
if ARGV[6] and ARGV[6] ~= '' then
  local fields = string.sub(ARGV[1], 2)
  redis.call('PUBLISH', ARGV[6], '{"n":' .. n .. ',"p":' .. ARGV[7] .. ',' .. fields)
end
return n
"""


class RedisPushLog:
    """``typogram.push_log.PushLog`` on a ``RedisCache``: with a ``RedisPubSub`` on the
    same server and prefix the PUBLISH is part of the script."""

    def __init__(self, cache: RedisCache) -> None:
        self._cache = cache
        self._prefix = cache.prefix

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
        check_append(max_len, ttl, also)
        keys: list[Any] = [self._prefix + counter, self._prefix + key]
        args: list[Any] = [value, max_len, ttl_ms(ttl)]
        if also is not None:
            keys.append(self._prefix + also[0])
            args += [also[1], also[2]]
        elsewhere = None
        if publish is not None:
            pubsub, channel = publish
            if isinstance(pubsub, RedisPubSub) and pubsub.shares_server(self._cache):
                args += [*((b"", 1) if also is None else ()), pubsub.published_by_script(channel)]
                args.append(b"%.6f" % time.time())
            else:  # another server or adapter: publish after the atomic step
                elsewhere = publish
        number = int(await self._cache.run_script(_APPEND_NUMBERED, keys, args))
        if elsewhere is not None:
            await publish_numbered(elsewhere, number, value)
        return number


# Leaderboard writes (``ScoreWrites.raise_scores``), one atomic script. Per write i: KEYS[2i-1]
# the sorted set, KEYS[2i] its counter; ARGV[3i-2] the member, ARGV[3i-1] the score,
# ARGV[3i] the expiry in ms (0: none). ZADD GT CH; PEXPIRE the set; when the score went up,
# INCR the counter (PEXPIRE it when this created it). Returns 1 (went up) or 0 per write.
_RAISE_SCORES: Final = """
local raised = {}
for i = 1, #KEYS / 2 do
  local board, counter = KEYS[2 * i - 1], KEYS[2 * i]
  local px = tonumber(ARGV[3 * i])
  local up = redis.call('ZADD', board, 'GT', 'CH', ARGV[3 * i - 1], ARGV[3 * i - 2])
  if px > 0 then redis.call('PEXPIRE', board, px) end
  if up == 1 then
    if redis.call('INCR', counter) == 1 and px > 0 then redis.call('PEXPIRE', counter, px) end
  end
  raised[i] = up
end
return raised
"""


class RedisScoreWrites:
    """``typogram.leaderboards.ScoreWrites`` on a ``RedisCache``."""

    def __init__(self, cache: RedisCache) -> None:
        self._cache = cache
        self._prefix = cache.prefix

    async def raise_scores(self, writes: Sequence[ScoreRaise]) -> list[bool]:
        if not writes:
            return []
        keys: list[Any] = []
        args: list[Any] = []
        for write in writes:  # all checked first: a bad write stores nothing
            if math.isnan(write.score):
                raise ValueError(f"score for {write.member!r} is not a number")
            keys += (self._prefix + write.key, self._prefix + write.counter)
            px = 0 if write.ttl is None else ttl_ms(write.ttl)
            args += (write.member, repr(float(write.score)), px)
        return [bool(int(up)) for up in await self._cache.run_script(_RAISE_SCORES, keys, args)]
