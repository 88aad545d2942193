"""A typist's history, as the anti-cheat history rules see it (``typogram.anticheat``
rules 6 and 9).

Rules:

1. Every accepted result adds one to ``keys.user_history_count`` (90 days
   after the last): a solo result at acceptance (``typogram.results``), a
   rated race finish once its race is recorded (``workers.races``), and a
   flagged one of either when staff approve it (``typogram.reviews``).
2. The yardstick is the user's best WPM over every category of
   ``keys.user_bests``, race finishes included (member ``RACES_BEST``),
   once at least ``min_results`` accepted results stand behind it: a
   newcomer's first slow test is no yardstick for the next.
3. ``rhythm`` is the user's rhythm profile (``typogram.rhythm``), folded from
   their accepted solo results; ``typogram.anticheat`` compares a result with
   it once it holds enough of them.
4. Until then the user is a newcomer, and a newcomer's result may not take
   the record: the caller names the board the result would reach, and
   ``record`` is that board's all-time top WPM (``None`` for an established
   user, or a board nobody is on yet).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from typogram import boards, keys
from typogram.ports import Cache
from typogram.rhythm import Profile, decode

# How long the count lasts without a new accepted result.
HISTORY_TTL_S = 90 * 24 * 3600
# The member of ``keys.user_bests`` that holds the user's best race WPM.
RACES_BEST = "~races"


@dataclass(frozen=True, slots=True)
class History:
    best: float | None = None  # rule 2
    record: float | None = None  # rule 4
    rhythm: Profile | None = None  # rule 3


async def history_of(
    cache: Cache, user_id: str, min_results: int, *, board: str | None = None, now_ms: int = 0
) -> History:
    """Rules 2-4 in one round trip (``board`` at ``now_ms``: whose record a newcomer
    may not take)."""
    bests = cache.zrevrange(keys.user_bests(user_id), 0, 0)
    counted = cache.get(keys.user_history_count(user_id))
    profile = cache.get(keys.user_rhythm(user_id))
    record: list[tuple[str, float]] = []
    if board is None:
        top, count, raw = await asyncio.gather(bests, counted, profile)
    else:
        alltime = keys.leaderboard(board, boards.period("alltime", now_ms).name)
        top, count, raw, record = await asyncio.gather(
            bests, counted, profile, cache.zrevrange(alltime, 0, 0)
        )
    rhythm = decode(raw)
    if count is not None and int(count) >= min_results:
        return History(best=top[0][1] if top and top[0][1] > 0 else None, rhythm=rhythm)
    if record:
        return History(record=boards.decode(record[0][1])[0], rhythm=rhythm)
    return History(rhythm=rhythm)


async def add(cache: Cache, user_id: str) -> None:
    """Rule 1: one more accepted result."""
    await cache.incr(keys.user_history_count(user_id), ttl=HISTORY_TTL_S)


async def remember_rhythm(cache: Cache, user_id: str, profile: bytes) -> None:
    """Rule 3: the profile with an accepted result folded in (``Submission.rhythm``).
    Two results of one user accepted at the same moment may keep only one of them:
    a profile is a statistic, one result more or less does not move it."""
    await cache.set(keys.user_rhythm(user_id), profile, ttl=HISTORY_TTL_S)
