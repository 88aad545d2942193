"""Records benchmark: what a profile's stats and race history cost, cold and cached.

Seeds ``--rated`` rated players (``user_ratings``) and one subject with
``--races`` recorded races (results, texts, rating history), ``--tests``
results and personal bests, then times, ``--repeats`` times each, through
``typogram.records.Records`` on the configured backends:

* ``stats cold``: the stats rebuilt from SQL (the version renewed first, as a
  worker's write does), including the rank: a count of the rated players
  above, which costs most for a low rating;
* ``stats cached``: served from the cache;
* ``rank (low)`` / ``rank (high)``: the rank alone, for a rating below and
  above almost everyone (``typogram.ratings`` rule 5: a cached histogram
  plus an exact count within the player's bucket);
* ``rank histogram rebuild``: the histogram's full-index scan, once per
  ``rating_rank_histogram_s`` for the whole fleet;
* ``races first page cold`` / ``cached``: the newest 20 races;
* ``races deep page``: 20 races 90 % of the way down the history (keyset).

On MariaDB + Redis (the database is created when missing and kept, so a
second run skips the seeding; ``--drop`` removes it at the end)::

    python -m bench.records --database mysql://root@127.0.0.1:3306/typogram_bench_records \\
        --redis redis://127.0.0.1:6379/14 --rated 200000 --races 1000

Without ``--database`` and ``--redis`` it runs on SQLite and the in-memory cache.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select, text

from bench.common import percentile
from typogram import keys
from typogram.db.schema import (
    personal_bests,
    race_results,
    races,
    rating_history,
    test_results,
    user_ratings,
    user_stats,
)
from typogram.platform import Platform, open_platform
from typogram.ratings import StoredRating, display_of
from typogram.records import changed
from typogram.results import encode_cursor
from typogram.settings import load

CHUNK = 5000
SUBJECT = "b" * 32
START_MS = 1_767_225_600_000  # 2026-01-01


async def _seed_ratings(platform: Platform, rated: int, rng: random.Random) -> None:
    async with platform.db.read(primary=True) as conn:
        counted = await conn.execute(select(func.count()).select_from(user_ratings))
        have = int(counted.scalar_one())
    for start in range(have, rated, CHUNK):
        rows = []
        for n in range(start, min(rated, start + CHUNK)):
            mu, sigma = rng.gauss(1500, 300), rng.uniform(80, 500)
            rows.append(
                {
                    "user_id": f"{n:032x}",
                    "mu": mu,
                    "sigma": sigma,
                    "races": rng.randint(1, 400),
                    "display": display_of(mu, sigma),
                    "updated_at": START_MS,
                }
            )
        async with platform.db.write() as conn:
            await conn.execute(user_ratings.insert(), rows)


async def _seed_subject(platform: Platform, race_count: int, tests: int) -> None:
    async with platform.db.read(primary=True) as conn:
        found = await conn.execute(
            select(func.count()).select_from(race_results).where(race_results.c.user_id == SUBJECT)
        )
        if int(found.scalar_one()) >= race_count:
            return
    rng = random.Random(7)
    words = ("pack", "my", "box", "with", "five", "dozen", "liquor", "jugs", "quick", "fox")
    race_rows, result_rows, history = [], [], []
    mu, sigma = 1500.0, 500.0
    for n in range(race_count):
        race_id = f"{n:020x}"
        at = START_MS + n * 600_000
        place = rng.randint(1, 5)
        race_rows.append(
            {
                "id": race_id,
                "text": " ".join(rng.choice(words) for _ in range(30)),
                "custom": 0,
                "difficulty": "medium",
                "lang": "en",
                "seed": n,
                "tournament_id": None,
                "players": 5,
                "started_at": at - 60_000,
                "ended_at": at,
                "recorded_at": at,
            }
        )
        result_rows.append(
            {
                "id": f"{race_id}:{SUBJECT}",
                "race_id": race_id,
                "user_id": SUBJECT,
                "place": place,
                "wpm": rng.uniform(60, 110),
                "raw_wpm": rng.uniform(60, 115),
                "accuracy": rng.uniform(90, 100),
                "consistency": rng.uniform(60, 90),
                "time_ms": rng.randint(30_000, 60_000),
                "guest": 0,
                "difficulty": "medium",
                "lang": "en",
                "seed": n,
                "flags": "",
                "tournament_id": None,
                "created_at": at,
                "finished": 1,
            }
        )
        new_mu, new_sigma = mu + rng.uniform(-30, 30), max(80.0, sigma * 0.99)
        history.append(
            {
                "user_id": SUBJECT,
                "race_id": race_id,
                "mu_before": mu,
                "sigma_before": sigma,
                "display_before": display_of(mu, sigma),
                "mu_after": new_mu,
                "sigma_after": new_sigma,
                "display_after": display_of(new_mu, new_sigma),
                "races": n + 1,
                "place": place,
                "created_at": at,
            }
        )
        mu, sigma = new_mu, new_sigma
    results = [
        {
            "id": uuid.uuid4().hex,
            "created_at": int(time.time() * 1000) - n * 60_000,
            "user_id": SUBJECT,
            "test_id": uuid.uuid4().hex,
            "mode": "words",
            "lang": "en",
            "word_count": 25,
            "seconds": None,
            "seed": n,
            "category": "words-25-en",
            "wpm": rng.uniform(60, 110),
            "raw_wpm": 100.0,
            "accuracy": 97.0,
            "consistency": 80.0,
            "duration_ms": 20_000,
            "chars_correct": 125,
            "chars_incorrect": 0,
            "chars_extra": 0,
            "chars_missed": 0,
            "keystrokes": 130,
        }
        for n in range(tests)
    ]
    async with platform.db.write() as conn:
        for table, rows in ((races, race_rows), (race_results, result_rows)):
            for start in range(0, len(rows), CHUNK):
                await conn.execute(table.insert(), rows[start : start + CHUNK])
        await conn.execute(rating_history.insert(), history)
        await conn.execute(test_results.insert(), results)
        await conn.execute(user_ratings.delete().where(user_ratings.c.user_id == SUBJECT))
        await conn.execute(
            user_ratings.insert().values(
                user_id=SUBJECT,
                mu=mu,
                sigma=sigma,
                races=race_count,
                display=display_of(mu, sigma),
                updated_at=START_MS,
            )
        )
        for category in ("words-25-en", "words-50-en", "time-15-en", "time-60-de-punct"):
            await conn.execute(
                personal_bests.insert().values(
                    user_id=SUBJECT,
                    category=category,
                    wpm=100.0,
                    accuracy=98.0,
                    result_id=results[0]["id"],
                    achieved_at=START_MS,
                )
            )
        now = int(time.time() * 1000)
        await conn.execute(
            user_stats.insert().values(
                user_id=SUBJECT,
                tests=tests,
                total_time_ms=tests * 20_000,
                best_wpm=110.0,
                wpm_sum=tests * 85.0,
                accuracy_sum=tests * 97.0,
                created_at=now,
                updated_at=now,
            )
        )


def _now() -> int:
    return int(time.time() * 1000)


async def _rebuild_histogram(platform: Platform) -> None:
    await platform.cache.delete(keys.rating_histogram())
    await platform.ratings.rank(StoredRating(1500.0, 100.0, 1, 0), now_ms=_now())


async def _timed(repeats: int, call: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "p50 ms": round(percentile(samples, 50), 2),
        "p95 ms": round(percentile(samples, 95), 2),
        "max ms": round(max(samples), 2),
    }


async def run(args: argparse.Namespace) -> None:
    overrides: dict[str, Any] = {
        "environment": "test",
        "data_dir": args.data_dir or tempfile.mkdtemp(prefix="typogram-bench-records-"),
    }
    if args.database:
        overrides["database_url"] = args.database
    if args.redis:
        overrides |= {"redis_url": args.redis, "redis_prefix": f"benchrec{os.getpid()}:"}
    settings = load(env={}, **overrides)
    async with open_platform(settings, migrate=True) as platform:
        started = time.perf_counter()
        await _seed_ratings(platform, args.rated, random.Random(1))
        await _seed_subject(platform, args.races, args.tests)
        seeded_s = time.perf_counter() - started
        records, ratings, cache = platform.records, platform.ratings, platform.cache
        ttl = records.ttl_s

        async def cold_stats() -> None:
            await changed(cache, [SUBJECT], ttl_s=ttl)
            await records.stats(SUBJECT)

        async def cold_races() -> None:
            await changed(cache, [SUBJECT], ttl_s=ttl)
            await records.races_page(SUBJECT, limit=20, cursor=None)

        deep_at = START_MS + int(args.races * 0.1) * 600_000
        deep = encode_cursor(deep_at, f"{int(args.races * 0.1):020x}")
        low, high = StoredRating(600.0, 300.0, 1, 0), StoredRating(3500.0, 80.0, 1, 0)
        rows = {
            "stats cold": await _timed(args.repeats, cold_stats),
            "stats cached": await _timed(args.repeats, lambda: records.stats(SUBJECT)),
            "rank (low)": await _timed(args.repeats, lambda: ratings.rank(low, now_ms=_now())),
            "rank (high)": await _timed(args.repeats, lambda: ratings.rank(high, now_ms=_now())),
            "rank histogram rebuild": await _timed(
                max(3, args.repeats // 20), lambda: _rebuild_histogram(platform)
            ),
            "races first page cold": await _timed(args.repeats, cold_races),
            "races first page cached": await _timed(
                args.repeats, lambda: records.races_page(SUBJECT, limit=20, cursor=None)
            ),
            "races deep page": await _timed(
                args.repeats, lambda: records.races_page(SUBJECT, limit=20, cursor=deep)
            ),
        }
        backend = f"{platform.db.dialect} + {'Redis' if args.redis else 'memory'}"
        print(
            f"{backend}: {args.rated:,} rated players, {args.races:,} races and "
            f"{args.tests} results for the subject (seeding {seeded_s:.1f} s), "
            f"{args.repeats} repeats, load average {os.getloadavg()[0]:.2f}"
        )
        print(f"| {'what':<24} | p50 ms | p95 ms | max ms |")
        print(f"|{'-' * 26}|-------:|-------:|-------:|")
        for name, row in rows.items():
            print(f"| {name:<24} | {row['p50 ms']:>6} | {row['p95 ms']:>6} | {row['max ms']:>6} |")
        if args.drop and platform.db.dialect == "mysql":
            async with platform.db.write() as conn:
                name = settings.database_url.rsplit("/", 1)[-1]
                await conn.execute(text(f"DROP DATABASE `{name}`"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="", help="mysql://… (default: SQLite)")
    parser.add_argument("--redis", default="", help="redis://… (default: in memory)")
    parser.add_argument("--data-dir", default="", help="SQLite folder (default: a new one)")
    parser.add_argument("--rated", type=int, default=100_000)
    parser.add_argument("--races", type=int, default=1000)
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--drop", action="store_true", help="drop the MySQL database after")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
