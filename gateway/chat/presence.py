"""Presence in the cache: ``user:{id}:presence`` holds a status with a TTL.

The TTL is a few heartbeats long and every connected session refreshes it
each heartbeat, so a node that dies takes its users offline by itself.

Who sees it: ``query`` answers a user's status only to someone who shares a
room with that user (the caller passes who does), and never for a user who
chose to appear offline (``keys.user_appear_offline``, written by the
profile setting); anyone else reads ``offline``. One's own status is always
one's own.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

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

    async def query(
        self, user_ids: Iterable[str], *, asker: str, sharing: Collection[str]
    ) -> dict[str, str]:
        """Statuses as ``asker`` may see them; ``sharing``: users in a room with it."""
        out: dict[str, str] = {}
        for user_id in dict.fromkeys(user_ids):
            out[user_id] = OFFLINE
            if user_id != asker and user_id not in sharing:
                continue
            raw = await self._cache.get(keys.user_presence(user_id))
            if not raw:
                continue
            if user_id != asker and await self._cache.get(keys.user_appear_offline(user_id)):
                continue
            out[user_id] = raw.decode()
        return out
