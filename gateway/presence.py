"""Presence in the cache: ``user:{id}:presence`` holds a status with a TTL.

The TTL is a few heartbeats long and every connected session refreshes it
each heartbeat, so a node that dies takes its users offline by itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from typogram import keys
from typogram.ports import Cache

OFFLINE = "offline"


class Presence:
    def __init__(self, cache: Cache, ttl_s: float) -> None:
        self._cache = cache
        self._ttl = ttl_s

    async def set(self, user_id: str, status: str) -> None:
        """Set (or refresh) a user's status; call again before the TTL runs out."""
        await self._cache.set(keys.user_presence(user_id), status.encode(), ttl=self._ttl)

    async def clear(self, user_id: str) -> None:
        await self._cache.delete(keys.user_presence(user_id))

    async def query(self, user_ids: Iterable[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for user_id in dict.fromkeys(user_ids):
            raw = await self._cache.get(keys.user_presence(user_id))
            out[user_id] = raw.decode() if raw else OFFLINE
        return out
