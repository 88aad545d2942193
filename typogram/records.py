"""A user's records: public stats and the race history, read from the tables the workers keep.

Rules
-----
1. Stats are built from ``user_stats`` (tests that count, time typed,
   average and best WPM), ``personal_bests`` (one per category, parsed back
   into mode, length, language and options), ``race_results`` (played, won,
   finished), the rating (``typogram.ratings``: read-through, with its rank
   among rated users), ``challenge_streaks`` and the newest unflagged
   ``test_results`` (the WPM-over-time series). Flagged results count
   nowhere here.
2. Stats and the newest page of race history are cached (``keys.user_stats``,
   ``keys.user_races``) stamped with ``keys.user_records_version`` as read
   *before* the build. Every worker that changes one of those tables gives
   the version a fresh token after its commit (``changed``), so an entry
   built earlier, also one whose build raced the commit, no longer matches
   and the next read rebuilds it. The version outlives any entry built under
   it (twice the TTL), so an expired version cannot revive a stale entry.
   A rank moves with other players' races: it is at most one TTL old.
3. Race history is keyset-paged on ``(created_at, race id)``, newest first,
   and always of the user the caller's token names: no parameter selects
   another user, and a cursor only says where to continue.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from sqlalchemy import and_, case, func, or_, select

from typogram import challenges, keys
from typogram.db.database import Database
from typogram.db.schema import (
    challenge_streaks,
    personal_bests,
    race_results,
    races,
    rating_history,
    test_results,
    user_stats,
)
from typogram.ports import Cache
from typogram.race_records import result_id
from typogram.ratings import Ratings
from typogram.results import decode_cursor, encode_cursor
from typogram.texts import TextError, TextSpec

TREND_POINTS = 50


async def changed(cache: Cache, user_ids: Iterable[str], *, ttl_s: float) -> None:
    """Rule 2, for writers: after a commit, the users' cached records are stale."""
    users = sorted(set(user_ids))
    if users:
        token = uuid.uuid4().hex.encode()
        versions = {keys.user_records_version(user): token for user in users}
        await cache.write_batch({}, versions, ttl=2 * ttl_s)


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


class Records:
    def __init__(
        self, db: Database, cache: Cache, ratings: Ratings, *, ttl_s: float, recent: int
    ) -> None:
        self._db = db
        self._cache = cache
        self._ratings = ratings
        self.ttl_s = ttl_s
        self.recent = recent

    async def changed(self, user_ids: Iterable[str]) -> None:
        await changed(self._cache, user_ids, ttl_s=self.ttl_s)

    async def _stamped(self, key: str, user_id: str, build: Callable[[], Awaitable[Any]]) -> Any:
        cached, token = await asyncio.gather(
            self._cache.get(key), self._cache.get(keys.user_records_version(user_id))
        )
        version = (token or b"").decode()
        if cached is not None:
            entry = orjson.loads(cached)
            if isinstance(entry, dict) and entry.get("v") == version:
                return entry["doc"]
        doc = await build()
        await self._cache.set(key, orjson.dumps({"v": version, "doc": doc}), ttl=self.ttl_s)
        return doc

    # -- stats ------------------------------------------------------------------------------

    async def stats(self, user_id: str) -> dict[str, Any]:
        """Rule 1, cached by rule 2."""
        doc: dict[str, Any] = await self._stamped(
            keys.user_stats(user_id), user_id, lambda: self._build_stats(user_id)
        )
        return doc

    async def _build_stats(self, user_id: str) -> dict[str, Any]:
        rr, ts = race_results, test_results
        # The primary: a rebuild follows a worker's commit, which a replica may not have yet.
        async with self._db.read(primary=True) as conn:
            totals = (
                await conn.execute(select(user_stats).where(user_stats.c.user_id == user_id))
            ).first()
            bests = await conn.execute(
                select(personal_bests)
                .where(personal_bests.c.user_id == user_id)
                .order_by(personal_bests.c.category)
            )
            best_rows = bests.all()
            raced = (
                await conn.execute(
                    select(
                        func.count(),
                        func.coalesce(func.sum(rr.c.finished), 0),
                        func.coalesce(
                            func.sum(case((and_(rr.c.place == 1, rr.c.finished == 1), 1), else_=0)),
                            0,
                        ),
                    ).where(rr.c.user_id == user_id)
                )
            ).one()
            streak_row = (
                await conn.execute(
                    select(challenge_streaks).where(challenge_streaks.c.user_id == user_id)
                )
            ).first()
            trend = await conn.execute(
                select(ts.c.created_at, ts.c.wpm, ts.c.accuracy)
                .where(ts.c.user_id == user_id, ts.c.flagged == 0)
                .order_by(ts.c.created_at.desc(), ts.c.id.desc())
                .limit(TREND_POINTS)
            )
            points = trend.all()
        now = int(time.time() * 1000)
        rating = await self._ratings.get(user_id)
        rank = await self._ratings.rank(rating, now_ms=now) if rating is not None else None
        tests = int(totals.tests) if totals is not None else 0
        today = challenges.date_of(now)
        streak = None
        if streak_row is not None:
            streak = challenges.Streak(streak_row.last_date, streak_row.current, streak_row.best)
        return {
            "user_id": user_id,
            "tests": tests,
            "time_typed_ms": int(totals.total_time_ms) if totals is not None else 0,
            "average_wpm": _r(totals.wpm_sum / tests) if totals is not None and tests else None,
            "average_accuracy": (
                _r(totals.accuracy_sum / tests) if totals is not None and tests else None
            ),
            "best_wpm": _r(totals.best_wpm) if totals is not None and tests else None,
            "personal_bests": [pb for row in best_rows if (pb := _best(row)) is not None],
            "races": {
                "played": int(raced[0]),
                "finished": int(raced[1]),
                "won": int(raced[2]),
            },
            "rating": None
            if rating is None
            else {
                "rating": round(rating.display, 1),
                "mu": round(rating.mu, 2),
                "sigma": round(rating.sigma, 2),
                "races": rating.races,
                "rank": rank,
                "updated_at": rating.updated_at,
            },
            "challenge_streak": {
                "current": challenges.current(streak, today) if streak else 0,
                "best": streak.best if streak else 0,
                "last_date": streak.last_date if streak else None,
            },
            "wpm_trend": [
                {"at": p.created_at, "wpm": _r(p.wpm), "accuracy": _r(p.accuracy)}
                for p in reversed(points)
            ],
        }

    # -- race history -------------------------------------------------------------------------

    async def races_page(
        self, user_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Rule 3: newest first; the page and the cursor of the next one (``None`` at the end).
        Raises ``AppError`` (400) for a cursor this module did not write."""
        after = decode_cursor(cursor) if cursor is not None else None
        if after is None and limit <= self.recent:
            newest: list[dict[str, Any]] = await self._stamped(
                keys.user_races(user_id),
                user_id,
                lambda: self._query(user_id, self.recent + 1, None),
            )
            rows = newest[: limit + 1]
        else:
            rows = await self._query(user_id, limit + 1, after)
        page = rows[:limit]
        more = len(rows) > limit
        following = encode_cursor(page[-1]["at"], page[-1]["race"]) if more and page else None
        return page, following

    async def _query(
        self, user_id: str, limit: int, after: tuple[int, str] | None
    ) -> list[dict[str, Any]]:
        rr, h = race_results, rating_history
        where = [rr.c.user_id == user_id]
        if after is not None:
            created_at, race_id = after
            where.append(
                or_(
                    rr.c.created_at < created_at,
                    and_(rr.c.created_at == created_at, rr.c.id < result_id(race_id, user_id)),
                )
            )
        statement = (
            select(
                rr.c.race_id,
                rr.c.created_at,
                rr.c.place,
                rr.c.finished,
                rr.c.wpm,
                rr.c.accuracy,
                rr.c.time_ms,
                rr.c.tournament_id,
                rr.c.difficulty,
                rr.c.lang,
                races.c.text,
                races.c.custom,
                races.c.players,
                h.c.display_before,
                h.c.display_after,
            )
            .select_from(
                rr.outerjoin(races, races.c.id == rr.c.race_id).outerjoin(
                    h, and_(h.c.user_id == rr.c.user_id, h.c.race_id == rr.c.race_id)
                )
            )
            .where(*where)
            .order_by(rr.c.created_at.desc(), rr.c.id.desc())
            .limit(limit)
        )
        async with self._db.read(primary=True) as conn:
            rows = (await conn.execute(statement)).all()
        return [
            {
                "race": r.race_id,
                "at": r.created_at,
                "text": r.text,
                "custom": bool(r.custom),
                "difficulty": r.difficulty,
                "lang": r.lang,
                "players": r.players,
                "place": r.place,
                "finished": bool(r.finished),
                "wpm": _r(r.wpm),
                "accuracy": _r(r.accuracy),
                "time_ms": r.time_ms,
                "tournament": r.tournament_id,
                "rated": r.display_before is not None,
                "rating_before": None if r.display_before is None else round(r.display_before, 1),
                "rating_after": None if r.display_after is None else round(r.display_after, 1),
            }
            for r in rows
        ]


def _best(row: Any) -> dict[str, Any] | None:
    try:
        spec = TextSpec.from_category(row.category)
    except TextError:
        return None  # a category this version does not know: left out, not guessed
    return {
        "category": row.category,
        "mode": spec.mode,
        "length": spec.size,
        "lang": spec.lang,
        "punctuation": spec.punctuation,
        "numbers": spec.numbers,
        "difficulty": spec.difficulty,
        "wpm": _r(row.wpm),
        "accuracy": _r(row.accuracy),
        "achieved_at": row.achieved_at,
    }
