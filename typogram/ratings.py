"""Race ratings as stored: ``user_ratings`` is the record, ``keys.user_rating`` a cache.

Rules
-----
1. The table is the record. The ``races`` worker writes a race's ratings in
   the transaction that stores its results (``workers.races``); nothing else
   writes them.
2. Every read goes through ``Ratings.get``: a cache hit answers; a miss
   reads the table on the primary and fills the cache. An unrated user is
   cached as such, so queueing up does not cost a query each time.
3. A fill never overwrites (``set_if_absent``); the writer, after its
   commit, always does (``remember``). A fill that read the table before a
   commit can therefore not bury the committed value, and a flushed or
   expired cache is refilled from the table on the next read.
4. ``display`` is ``mu - 3 sigma``, at least 0: what profiles show, and
   what ranks order by (stored beside mu and sigma, indexed).
5. A rank is 1 + the rated players with a higher ``display``. Counting them
   in SQL scans everyone above (≈ 0.4 s for a median player among a million),
   so the count comes in two parts: the players in higher buckets of
   ``RANK_BUCKET`` points, from a histogram of the whole table cached for
   ``rank_histogram_s`` (``keys.rating_histogram``), plus an exact count of
   those above within the player's own bucket (a short index range). A rank
   may therefore miss the players who changed buckets since the histogram
   was built; a stale histogram is rebuilt by one process (a short lock)
   while the others keep using it: the ``races`` workers do it on a schedule,
   a reader only when they have not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Integer, cast, func, select

from typogram import keys
from typogram.db.database import Database
from typogram.db.schema import user_ratings
from typogram.ports import Cache
from typogram.tokens import GUEST_PREFIX

_UNRATED = b'{"unrated":true}'
RANK_BUCKET = 10.0  # display points per histogram bucket
HISTOGRAM_KEEP_S = 3600.0  # a stale histogram is still used (and rebuilt) for this long
HISTOGRAM_LOCK_S = 30.0


def display_of(mu: float, sigma: float) -> float:
    """Rule 4: a conservative estimate that rises as certainty does."""
    return max(mu - 3 * sigma, 0.0)


@dataclass(frozen=True, slots=True)
class StoredRating:
    mu: float
    sigma: float
    races: int
    updated_at: int

    @property
    def display(self) -> float:
        return display_of(self.mu, self.sigma)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "mu": self.mu,
                "sigma": self.sigma,
                "races": self.races,
                "updated_at": self.updated_at,
                "display": self.display,
            }
        )


def decode(raw: bytes) -> StoredRating | None:
    """A cached entry; ``None`` for the unrated marker. Raises ``ValueError`` on garbage."""
    try:
        doc: dict[str, Any] = orjson.loads(raw)
        if doc.get("unrated"):
            return None
        return StoredRating(
            float(doc["mu"]),
            float(doc["sigma"]),
            int(doc.get("races", 0)),
            int(doc.get("updated_at", 0)),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a cached rating: {exc}") from exc


class Ratings:
    """Rules 2-3. Callers treat ``None`` as the starting rating (1500)."""

    def __init__(
        self, db: Database, cache: Cache, *, ttl_s: float, rank_histogram_s: float = 60.0
    ) -> None:
        self._db = db
        self._cache = cache
        self._ttl_s = ttl_s
        self._histogram_s = rank_histogram_s
        self.hits = self.misses = self.histograms = 0

    async def get(self, user_id: str) -> StoredRating | None:
        if user_id.startswith(GUEST_PREFIX):
            return None  # guests are never rated
        key = keys.user_rating(user_id)
        raw = await self._cache.get(key)
        if raw is not None:
            try:
                found = decode(raw)
            except ValueError:
                pass  # a foreign blob: read the table and let the writer's next set fix it
            else:
                self.hits += 1
                return found
        self.misses += 1
        stored = (await self.read([user_id])).get(user_id)
        await self._cache.set_if_absent(
            key, stored.encode() if stored else _UNRATED, ttl=self._ttl_s
        )
        return stored

    async def read(self, user_ids: Iterable[str]) -> dict[str, StoredRating]:
        """The table's rows for these users (primary: read-your-writes), no cache."""
        wanted = sorted(set(user_ids))
        if not wanted:
            return {}
        t = user_ratings
        async with self._db.read(primary=True) as conn:
            rows = await conn.execute(
                select(t.c.user_id, t.c.mu, t.c.sigma, t.c.races, t.c.updated_at).where(
                    t.c.user_id.in_(wanted)
                )
            )
            return {
                r.user_id: StoredRating(float(r.mu), float(r.sigma), int(r.races), r.updated_at)
                for r in rows
            }

    async def remember(self, ratings: Mapping[str, StoredRating]) -> None:
        """After a commit (rule 3): the committed values replace whatever is cached."""
        for user_id, rating in ratings.items():
            await self._cache.set(keys.user_rating(user_id), rating.encode(), ttl=self._ttl_s)

    async def rank(self, rating: StoredRating, *, now_ms: int) -> int:
        """Rule 5: 1 + the rated users with a higher ``display`` (ties share a rank)."""
        bucket = int(rating.display // RANK_BUCKET)
        histogram = await self._histogram(now_ms)
        above = sum(count for b, count in histogram.items() if b > bucket)
        t = user_ratings
        async with self._db.read() as conn:
            near = await conn.execute(
                select(func.count())
                .select_from(t)
                .where(t.c.display > rating.display, t.c.display < (bucket + 1) * RANK_BUCKET)
            )
            return 1 + above + int(near.scalar_one())

    async def refresh_histogram(self, now_ms: int) -> None:
        """Rebuild the histogram when it is due (the ``races`` workers call this on a
        schedule, so a reader seldom has to)."""
        await self._histogram(now_ms)

    async def _histogram(self, now_ms: int) -> dict[int, int]:
        key = keys.rating_histogram()
        raw = await self._cache.get(key)
        if raw is not None:
            doc = orjson.loads(raw)
            fresh = now_ms - int(doc["built_at"]) < self._histogram_s * 1000
            lock = key + ":lock"
            if fresh or not await self._cache.set_if_absent(lock, b"1", HISTOGRAM_LOCK_S):
                return {int(b): int(n) for b, n in doc["buckets"].items()}
        t = user_ratings
        bucket = (
            func.floor(t.c.display / RANK_BUCKET)
            if self._db.dialect == "mysql"
            else cast(t.c.display / RANK_BUCKET, Integer)  # display >= 0: truncation is floor
        ).label("b")
        async with self._db.read() as conn:
            rows = await conn.execute(select(bucket, func.count()).group_by(bucket))
            buckets = {int(b): int(n) for b, n in rows}
        self.histograms += 1
        doc = {"built_at": now_ms, "buckets": {str(b): n for b, n in buckets.items()}}
        await self._cache.set(key, orjson.dumps(doc), ttl=HISTOGRAM_KEEP_S)
        await self._cache.delete(key + ":lock")
        return buckets

    async def rated_users(self) -> int:
        async with self._db.read() as conn:
            found = await conn.execute(select(func.count()).select_from(user_ratings))
            return int(found.scalar_one())

    def statistics(self) -> dict[str, float]:
        return {"hits": self.hits, "misses": self.misses, "histograms": self.histograms}
