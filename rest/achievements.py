"""``GET /api/v1/achievements`` (the catalogue) and ``/api/v1/achievements/me``.

The caller's unlocked list is cache-aside for ``UNLOCKED_TTL_S`` and the
progress for ``PROGRESS_TTL_S`` (``keys.achievements_*``); the achievements
worker drops both when it applies an event for the user.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select
from starlette.requests import Request

from rest.context import platform_of
from rest.routing import Answer, Api
from typogram import achievements as rules
from typogram import keys
from typogram.db.schema import achievement_progress, user_achievements
from typogram.platform import Platform
from typogram.tokens import Claims

api = Api()
UNLOCKED_TTL_S = 3600
PROGRESS_TTL_S = 900


async def _unlocked(platform: Platform, user_id: str) -> list[dict[str, Any]]:
    key = keys.achievements_unlocked(user_id)
    cached = await platform.cache.get(key)
    if cached is not None:
        items: list[dict[str, Any]] = orjson.loads(cached)
        return items
    u = user_achievements
    async with platform.db.read(primary=True) as conn:
        rows = await conn.execute(
            select(u.c.achievement_id, u.c.unlocked_at)
            .where(u.c.user_id == user_id)
            .order_by(u.c.unlocked_at, u.c.achievement_id)
        )
        items = [
            {**_describe(row.achievement_id), "unlocked_at": row.unlocked_at}
            for row in rows
            if row.achievement_id in rules.BY_ID
        ]
    await platform.cache.set(key, orjson.dumps(items), ttl=UNLOCKED_TTL_S)
    return items


async def _progress(platform: Platform, user_id: str, unlocked: set[str]) -> list[dict[str, Any]]:
    key = keys.achievements_progress(user_id)
    cached = await platform.cache.get(key)
    if cached is not None:
        items: list[dict[str, Any]] = orjson.loads(cached)
        return items
    p = achievement_progress
    async with platform.db.read(primary=True) as conn:
        raw = (
            await conn.execute(select(p.c.facts).where(p.c.user_id == user_id))
        ).scalar_one_or_none()
    facts = rules.Facts() if raw is None else rules.Facts.from_json(orjson.loads(raw))
    items = rules.progress(facts, unlocked)
    await platform.cache.set(key, orjson.dumps(items), ttl=PROGRESS_TTL_S)
    return items


def _describe(achievement_id: str) -> dict[str, Any]:
    a = rules.BY_ID[achievement_id]
    return {"id": a.id, "title": a.title, "description": a.description}


@api.route(
    "GET",
    "/api/v1/achievements",
    summary="Every achievement there is",
    tag="achievements",
)
async def catalogue(request: Request) -> Answer:
    return Answer(
        {
            "achievements": [
                {**_describe(a.id), "metric": a.metric, "target": a.threshold}
                for a in rules.ACHIEVEMENTS
            ]
        }
    )


@api.route(
    "GET",
    "/api/v1/achievements/me",
    summary="The caller's unlocked achievements and progress towards the rest",
    tag="achievements",
    auth="user",
    errors=(401,),
)
async def mine(request: Request, claims: Claims) -> Answer:
    platform = platform_of(request)
    unlocked = await _unlocked(platform, claims.subject)
    progress = await _progress(platform, claims.subject, {a["id"] for a in unlocked})
    return Answer({"unlocked": unlocked, "progress": progress})
