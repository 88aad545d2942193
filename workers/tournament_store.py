"""``tournament:{id}:state`` and ``tournament:{id}:rankings`` in the cache, changed safely.

REST (joins) and the ``tournaments`` worker (race scores) both change a
tournament's state: ``change`` does read-modify-write under a short lock
key (``set_if_absent`` with a TTL), stores the new state and the current
top rankings, and publishes every ``Broadcast`` effect on the tournament's
channel (``keys.channel_tournament``) for the gateways' watchers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Final

import orjson

from rooms import tournament
from typogram import keys
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.ports import Cache, PubSub
from typogram.protocol import push_payload

LOCK_TTL_S: Final = 5.0
LOCK_WAIT_S: Final = 5.0
KEEP_AFTER_END_S: Final = 7 * 24 * 3600

Change = Callable[[tournament.TournamentState], tournament.Step]


def _lock(tournament_id: str) -> str:
    return keys.tournament_state(tournament_id) + ":lock"


async def load(cache: Cache, tournament_id: str) -> tournament.TournamentState | None:
    raw = await cache.get(keys.tournament_state(tournament_id))
    return tournament.decode(raw) if raw is not None else None


async def save(cache: Cache, state: tournament.TournamentState, now_ms: int) -> None:
    ttl = max(60.0, (state.ends_at_ms + state.grace_ms - now_ms) / 1000 + KEEP_AFTER_END_S)
    await cache.set(keys.tournament_state(state.tournament_id), tournament.encode(state), ttl)
    top = orjson.dumps(tournament.rankings(state))
    await cache.set(keys.tournament_rankings(state.tournament_id), top, ttl)


async def change(
    cache: Cache, pubsub: PubSub, tournament_id: str, step: Change, now_ms: int
) -> list[tournament.Effect]:
    """Apply ``step`` to the stored state under the lock; raises ``AppError``."""
    token = uuid.uuid4().hex.encode()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LOCK_WAIT_S
    while not await cache.set_if_absent(_lock(tournament_id), token, LOCK_TTL_S):
        if loop.time() > deadline:
            raise AppError(ErrorCode.UNAVAILABLE, "the tournament is busy; retry")
        await asyncio.sleep(0.02)
    try:
        state = await load(cache, tournament_id)
        if state is None:
            raise AppError(ErrorCode.NOT_FOUND, f"no tournament {tournament_id}")
        new, effects = step(state)
        if new is not state:
            await save(cache, new, now_ms)
    finally:
        if await cache.get(_lock(tournament_id)) == token:
            await cache.delete(_lock(tournament_id))
    channel = keys.channel_tournament(tournament_id)
    for effect in effects:
        if isinstance(effect, tournament.Broadcast):
            await pubsub.publish(channel, push_payload(effect.type, effect.data))
    return effects
