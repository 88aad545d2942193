"""``GET /api/v1/insights/me`` (keys, weak keys and bigrams, confusions, trend) and
``GET /api/v1/practice/next`` (real words that exercise the weak ones).

Insights are cache-aside under ``keys.insights`` for ``INSIGHTS_TTL_S``,
stamped with the user's ``keys.insights_version`` as read *before* the
build. The analytics worker gives that key a fresh token after each commit,
so a cached document built earlier — also one whose build raced the commit
and was stored after it — no longer matches and the next read rebuilds it.
The build reads the trend first: its test count never runs ahead of the
key, bigram and confusion rows read after it (SQLite reads are not one
snapshot).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from typing import Any

import orjson
from sqlalchemy import select
from starlette.requests import Request

from rest.context import platform_of
from rest.routing import Answer, Api
from typogram import keys
from typogram.codes import ErrorCode
from typogram.db.schema import user_bigram_stats, user_confusions, user_key_stats, user_trend
from typogram.errors import AppError
from typogram.insights import (
    HOT_DAYS,
    BigramRow,
    KeyRow,
    practice_words,
    trend_summary,
    weak_bigrams,
    weak_keys,
)
from typogram.platform import Platform
from typogram.texts import LANGUAGES, pool
from typogram.tokens import Claims

api = Api()
INSIGHTS_TTL_S = 3600
TREND_POINTS = 100
TOP_CONFUSIONS = 10
PRACTICE_MIN, PRACTICE_MAX, PRACTICE_DEFAULT = 5, 100, 25
DAY_MS = 86_400_000


async def insights_of(platform: Platform, user_id: str) -> dict[str, Any]:
    key = keys.insights(user_id)
    cached, token = await asyncio.gather(
        platform.cache.get(key), platform.cache.get(keys.insights_version(user_id))
    )
    version = (token or b"").decode()
    if cached is not None:
        entry = orjson.loads(cached)
        if entry.get("version") == version:
            doc: dict[str, Any] = entry["insights"]
            return doc
    doc = await _build(platform, user_id)
    entry = {"version": version, "insights": doc}
    await platform.cache.set(key, orjson.dumps(entry), ttl=INSIGHTS_TTL_S)
    return doc


async def _build(platform: Platform, user_id: str) -> dict[str, Any]:
    since = int(time.time() * 1000) - HOT_DAYS * DAY_MS
    # The primary: this fill follows the worker's invalidation, a replica may lag it.
    async with platform.db.read(primary=True) as conn:
        t = user_trend
        trend = await conn.execute(
            select(t.c.created_at, t.c.wpm, t.c.accuracy, t.c.consistency)
            .where(t.c.user_id == user_id, t.c.created_at >= since)
            .order_by(t.c.created_at.desc())
            .limit(TREND_POINTS)
        )
        k = user_key_stats
        key_rows = [
            KeyRow(r.key, r.hits, r.misses, float(r.latency_ms))
            for r in await conn.execute(
                select(k).where(k.c.user_id == user_id, k.c.updated_at >= since)
            )
        ]
        b = user_bigram_stats
        bigram_rows = [
            BigramRow(r.bigram, r.samples, float(r.latency_ms))
            for r in await conn.execute(
                select(b).where(b.c.user_id == user_id, b.c.updated_at >= since)
            )
        ]
        c = user_confusions
        confusions = await conn.execute(
            select(c.c.expected, c.c.pressed, c.c.count)
            .where(c.c.user_id == user_id, c.c.updated_at >= since)
            .order_by(c.c.count.desc())
            .limit(TOP_CONFUSIONS)
        )
        points = [
            {"at": r.created_at, "wpm": r.wpm, "accuracy": r.accuracy, "consistency": r.consistency}
            for r in trend
        ][::-1]
        confusion_list = [
            {"expected": r.expected, "pressed": r.pressed, "count": r.count} for r in confusions
        ]
    return {
        "keys": [
            {
                "key": r.key,
                "hits": r.hits,
                "misses": r.misses,
                "accuracy": round(100 * (1 - r.miss_rate), 2),
                "latency_ms": round(r.latency_ms, 1),
            }
            for r in sorted(key_rows, key=lambda row: row.key)
        ],
        "weak_keys": [
            {
                "key": r.key,
                "weakness": w,
                "accuracy": round(100 * (1 - r.miss_rate), 2),
                "latency_ms": round(r.latency_ms, 1),
            }
            for r, w in weak_keys(key_rows)
        ],
        "weak_bigrams": [
            {"bigram": r.bigram, "latency_ms": round(r.latency_ms, 1), "samples": r.samples}
            for r in weak_bigrams(bigram_rows)
        ],
        "confusions": confusion_list,
        "trend": {"points": points, "summary": trend_summary(points)},
        "tests": len(points),
    }


@api.route(
    "GET",
    "/api/v1/insights/me",
    summary="The caller's per-key statistics, weak keys and bigrams, confusions and trend",
    tag="insights",
    auth="user",
    errors=(401,),
)
async def my_insights(request: Request, claims: Claims) -> Answer:
    return Answer(await insights_of(platform_of(request), claims.subject))


@api.route(
    "GET",
    "/api/v1/practice/next",
    summary="Practice text from real words that exercise the caller's weak keys and bigrams",
    tag="insights",
    auth="user",
    errors=(400, 401),
    query={
        "lang": "language of the words (default en)",
        "count": f"words, {PRACTICE_MIN}..{PRACTICE_MAX} (default {PRACTICE_DEFAULT})",
    },
)
async def practice_next(request: Request, claims: Claims) -> Answer:
    query = request.query_params
    lang = query.get("lang", "en")
    faults: dict[str, str] = {}
    if lang not in LANGUAGES:
        faults["lang"] = "must be one of " + ", ".join(LANGUAGES)
    try:
        count = int(query.get("count", str(PRACTICE_DEFAULT)))
    except ValueError:
        count = 0
    if not PRACTICE_MIN <= count <= PRACTICE_MAX:
        faults["count"] = f"must be an integer between {PRACTICE_MIN} and {PRACTICE_MAX}"
    if faults:
        raise AppError(ErrorCode.BAD_REQUEST, "invalid practice parameters", fields=faults)
    doc = await insights_of(platform_of(request), claims.subject)
    focus_keys = [w["key"] for w in doc["weak_keys"] if w["key"].strip()]
    focus_bigrams = [w["bigram"] for w in doc["weak_bigrams"] if w["bigram"].strip()]
    seed = secrets.randbits(62)
    words = await asyncio.to_thread(pool, lang, "medium")  # first use reads the word list
    text = " ".join(practice_words(words, focus_keys, focus_bigrams, count, random.Random(seed)))
    return Answer(
        {
            "text": text,
            "lang": lang,
            "seed": seed,
            "focus": {"keys": focus_keys, "bigrams": focus_bigrams},
        }
    )
