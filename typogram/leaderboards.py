"""Leaderboards on the cache's sorted sets, with a cached top-1000 view.

Rules (naming, periods and the score encoding are in ``typogram.boards``):

1. ``record_many`` keeps each user's best per board and period (only ever
   raised, ``ScoreWrites.raise_scores``): replays and slower results change
   nothing. A daily or weekly set gets its expiry on every write.
2. When a write raised a user's score, the board's version counter
   (``keys.leaderboard_version``) goes up.
3. ``top`` serves from the top-1000 view (``keys.leaderboard_view``, TTL
   ``VIEW_TTL_S``). The view remembers the version it was built from; a view
   whose board has moved on is rebuilt on read (lazy invalidation) — but at
   most once per ``VIEW_MIN_AGE_S``, so a hot board costs one rebuild a
   second, not one per request.
4. Names come from ``users`` in one query per view; a user without a row
   (deleted) is shown with an empty name.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import orjson
from sqlalchemy import select

from typogram import boards, keys
from typogram.db.database import Database
from typogram.db.schema import users
from typogram.ports import Cache

VIEW_SIZE = 1000
VIEW_TTL_S = 300
VIEW_MIN_AGE_S = 1.0
NEIGHBOURS = 5


@dataclass(frozen=True, slots=True)
class ScoreRaise:
    """One write of ``ScoreWrites.raise_scores``: raise ``member`` to ``score`` in sorted
    set ``key`` and count it in ``counter`` when it went up; ``ttl`` (seconds, ``None``: no
    expiry) is given to ``key`` on every write and to ``counter`` when it is created."""

    key: str
    member: str
    score: float
    counter: str
    ttl: float | None = None


class ScoreWrites(Protocol):
    """The boards' one write (rules 1-2), on the keys of the ``Cache`` it is built over:
    ``typogram.adapters.memory_scripts.MemoryScoreWrites`` and
    ``typogram.adapters.redis_scripts.RedisScoreWrites`` (one Lua script);
    ``tests/contract/test_score_writes.py`` runs one suite against both."""

    async def raise_scores(self, writes: Sequence[ScoreRaise]) -> list[bool]:
        """For each write in order, as one atomic step: ``zadd(key, {member: score},
        only_greater=True)``, ``expire(key, ttl)`` when ``ttl`` is given and, when the
        member was added or its score went up, ``incr(counter, 1, ttl)``. All in one
        round trip; returns per write whether the score went up."""
        ...


class Score(NamedTuple):
    """A user's WPM reached at ``at_ms``, for one board and period."""

    board: str
    period: str
    user_id: str
    wpm: float
    at_ms: int


class Leaderboards:
    def __init__(self, db: Database, cache: Cache, writes: ScoreWrites) -> None:
        self.db = db
        self.cache = cache
        self.writes = writes

    async def record_many(self, scores: Sequence[Score]) -> list[bool]:
        """Rules 1-2 for each score, in one round trip; returns per score whether the
        user's score on that board went up."""
        return await self.writes.raise_scores([_raise(score) for score in scores])

    async def top(self, board: str, period: str, limit: int) -> list[dict[str, Any]]:
        """Rule 3: the first ``limit`` (<= VIEW_SIZE) entries, best first."""
        view_key = keys.leaderboard_view(board, period)
        version = await self._version(board, period)
        raw = await self.cache.get(view_key)
        now = time.time()
        if raw is not None:
            view = orjson.loads(raw)
            fresh = view["version"] == version or now - view["built_at"] < VIEW_MIN_AGE_S
            if fresh:
                entries: list[dict[str, Any]] = view["entries"][:limit]
                return entries
        rows = await self.cache.zrevrange(keys.leaderboard(board, period), 0, VIEW_SIZE - 1)
        built = await self._entries(rows, first_rank=1)
        doc = {"version": version, "built_at": now, "entries": built}
        await self.cache.set(view_key, orjson.dumps(doc), ttl=VIEW_TTL_S)
        return built[:limit]

    async def around(
        self, board: str, period: str, user_id: str
    ) -> tuple[int | None, list[dict[str, Any]]]:
        """The user's rank (1-based, None when absent) and the entries around it."""
        key = keys.leaderboard(board, period)
        rank = await self.cache.zrevrank(key, user_id)
        if rank is None:
            return None, []
        start = max(0, rank - NEIGHBOURS)
        rows = await self.cache.zrevrange(key, start, rank + NEIGHBOURS)
        return rank + 1, await self._entries(rows, first_rank=start + 1)

    async def _version(self, board: str, period: str) -> int:
        raw = await self.cache.get(keys.leaderboard_version(board, period))
        return int(raw) if raw is not None else 0

    async def _entries(
        self, rows: Sequence[tuple[str, float]], *, first_rank: int
    ) -> list[dict[str, Any]]:
        names: dict[str, str] = {}
        ids = [member for member, _ in rows]
        if ids:
            async with self.db.read() as conn:
                found = await conn.execute(
                    select(users.c.id, users.c.username).where(users.c.id.in_(ids))
                )
                names = {row.id: row.username for row in found}
        entries = []
        for offset, (member, score) in enumerate(rows):
            wpm, at_ms = boards.decode(score)
            entries.append(
                {
                    "rank": first_rank + offset,
                    "user_id": member,
                    "username": names.get(member, ""),
                    "wpm": wpm,
                    "at": at_ms,
                }
            )
        return entries


def result_scores(data: Mapping[str, Any], *, approved: bool = False) -> list[Score]:
    """The board entries a ``result.accepted`` event raises: its board in every period
    (``boards.periods``), none for an unranked result or a test without a board
    (``ranked`` absent: an event older than the field, ranked), nor for a flagged
    one unless staff ``approved`` it."""
    board = data.get("category")
    if not board or data.get("ranked") is False or (data.get("flagged") and not approved):
        return []
    user, wpm, at = str(data["user_id"]), float(data["wpm"]), int(data["created_at"])
    return [Score(str(board), p.name, user, wpm, at) for p in boards.periods(at)]


def _raise(score: Score) -> ScoreRaise:
    return ScoreRaise(
        keys.leaderboard(score.board, score.period),
        score.user_id,
        boards.encode(score.wpm, score.at_ms),
        keys.leaderboard_version(score.board, score.period),
        _expiry(score.period, score.at_ms),
    )


def _expiry(period: str, at_ms: int) -> float | None:
    """Seconds until a daily/weekly set may go; None for alltime."""
    window = period.split("-", 1)[0]
    expires_at = boards.period(window, at_ms).expires_at_s
    if expires_at is None:
        return None
    return max(60.0, expires_at - time.time())
