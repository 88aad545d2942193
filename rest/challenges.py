"""Daily challenges: today's text, attempts (through ``challenge-attempts``), streaks.

``GET /api/v1/challenges/today`` is cache-aside under ``keys.challenge_today``
for 24 h. An attempt is scored here with ``typogram.typing`` and judged by
``typogram.anticheat`` exactly like a result (a malformed or implausible log
is 422 with its reason codes) and published as ``challenge.attempt``; the
``challenges`` worker stores it, counts the streak and feeds the
``challenge-{date}`` board, which keeps each user's best attempt.

A user has ``challenge_attempts_per_day`` attempts per UTC day: each one
takes a number from an atomic counter (``keys.challenge_attempts``) before
it is scored, so concurrent attempts cannot overrun the cap; one refused on
the way (400, 422) gives its number back. Past the cap: 429 until midnight UTC.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Annotated, Any

import msgspec
import orjson
from sqlalchemy import select
from starlette.requests import Request

from rest.context import platform_of
from rest.results import (
    HARD_MAX_KEYSTROKES,
    Keystroke,
    evidence_of,
    malformed,
    ranked,
    refused,
)
from rest.routing import Answer, Api
from typogram import boards, challenges, keys, topics
from typogram.anticheat import judge, limits_from
from typogram.codes import ErrorCode
from typogram.db.schema import challenge_streaks
from typogram.errors import AppError
from typogram.history import history_of
from typogram.logs import get_logger
from typogram.platform import Platform
from typogram.ports import Event
from typogram.texts import generate
from typogram.tokens import Claims
from typogram.typing import LogError, replay, score

api = Api()
log = get_logger("typogram.rest.challenges")
TODAY_TTL_S = 24 * 3600
ATTEMPTS_TTL_S = 2 * 24 * 3600  # the day's attempt counter outlives its day


class AttemptBody(msgspec.Struct, forbid_unknown_fields=True):
    keystrokes: Annotated[list[Keystroke], msgspec.Meta(max_length=HARD_MAX_KEYSTROKES)]


async def challenge_of(platform: Platform, date: str) -> dict[str, Any]:
    key = keys.challenge_today(date)
    cached = await platform.cache.get(key)
    if cached is not None:
        doc: dict[str, Any] = orjson.loads(cached)
        return doc
    seed = challenges.seed_of(date)
    spec = challenges.SPEC
    text = await asyncio.to_thread(generate, spec, seed, wpm_cap=platform.settings.typing_wpm_cap)
    doc = {
        "id": date,
        "date": date,
        "text": text,
        "mode": spec.mode,
        "lang": spec.lang,
        "count": spec.count,
        "seed": seed,
        "board": boards.challenge_board(date),
    }
    await platform.cache.set(key, orjson.dumps(doc), ttl=TODAY_TTL_S)
    return doc


@api.route(
    "GET",
    "/api/v1/challenges/today",
    summary="Today's (UTC) daily challenge: one seeded text for everyone",
    tag="challenges",
)
async def today(request: Request) -> Answer:
    date = challenges.date_of(int(time.time() * 1000))
    return Answer(await challenge_of(platform_of(request), date))


@api.route(
    "POST",
    "/api/v1/challenges/{challenge_id}/attempts",
    summary="Submit a keystroke log for today's challenge; scored on the server",
    tag="challenges",
    body=AttemptBody,
    status=201,
    auth="user",
    errors=(400, 401, 404, 413, 422, 429),
)
async def attempt(request: Request, body: AttemptBody, claims: Claims) -> Answer:
    platform = platform_of(request)
    settings = platform.settings
    challenge_id = request.path_params["challenge_id"]
    now = int(time.time() * 1000)
    if challenge_id != challenges.date_of(now):
        raise AppError(
            ErrorCode.NOT_FOUND,
            "no such challenge open; only today's (UTC) takes attempts",
            fields={"challenge_id": "not open"},
        )
    if len(body.keystrokes) > settings.typing_max_keystrokes:
        raise AppError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"a log may hold at most {settings.typing_max_keystrokes} keystrokes",
            fields={"keystrokes": "too many"},
        )
    counter = keys.challenge_attempts(claims.subject, challenge_id)
    taken = await platform.cache.incr(counter, 1, ttl=ATTEMPTS_TTL_S)
    if taken > settings.challenge_attempts_per_day:
        await platform.cache.incr(counter, -1)
        until_midnight = 86_400 - (now // 1000) % 86_400
        raise AppError(
            ErrorCode.RATE_LIMITED,
            f"{settings.challenge_attempts_per_day} attempts a day; try tomorrow's challenge",
            fields={"challenge_id": "no attempts left today"},
            retry_after=until_midnight,
        )
    try:
        return await _scored(platform, challenge_id, body, claims, now)
    except BaseException:
        await platform.cache.incr(counter, -1)  # refused: the attempt is not spent
        raise


async def _scored(
    platform: Platform, challenge_id: str, body: AttemptBody, claims: Claims, now: int
) -> Answer:
    doc, known = await asyncio.gather(
        challenge_of(platform, challenge_id),
        history_of(platform.cache, claims.subject, platform.settings.typing_history_min_results),
    )
    best = known.best
    try:
        replayed = replay(doc["text"], body.keystrokes)
    except LogError as exc:
        raise malformed(exc) from exc
    result = score(replayed)
    verdict, timing = judge(
        replayed, result, limits_from(platform.settings), best_wpm=best, profile=known.rhythm
    )
    if verdict.action == "reject":
        raise refused(verdict)
    flagged = verdict.action == "flag"
    attempt_id = uuid.uuid4().hex
    data = {
        "attempt_id": attempt_id,
        "challenge_id": challenge_id,
        "user_id": claims.subject,
        "wpm": result.wpm,
        "raw_wpm": result.raw_wpm,
        "accuracy": result.accuracy,
        "consistency": result.consistency,
        "duration_ms": result.duration_ms,
        "flagged": flagged,
        "ranked": ranked(result, platform.settings),
        "created_at": now,
    }
    if flagged:  # for the review queue (typogram.reviews), not the client
        data |= {
            "flag_reasons": list(verdict.codes),
            "flag_reason": verdict.message[:500],
            "flag_evidence": evidence_of(result, timing, best),
        }
    event = Event(
        type=topics.CHALLENGE_ATTEMPT, data=data, key=claims.subject, id=attempt_id, ts=now
    )
    await platform.events.publish(topics.CHALLENGE_ATTEMPTS, event)
    shown = {k: v for k, v in data.items() if k not in ("flag_evidence", "flag_reasons")}
    return Answer({"attempt": {**shown, "id": attempt_id}}, 201)


@api.route(
    "GET",
    "/api/v1/challenges/streak/me",
    summary="The caller's daily-challenge streak",
    tag="challenges",
    auth="user",
    errors=(401,),
)
async def my_streak(request: Request, claims: Claims) -> Answer:
    platform = platform_of(request)
    t = challenge_streaks
    async with platform.db.read(primary=True) as conn:
        row = (await conn.execute(select(t).where(t.c.user_id == claims.subject))).first()
    if row is None:
        return Answer({"current": 0, "best": 0, "last_date": None})
    current = row.current if row.last_date >= _yesterday() else 0
    return Answer({"current": current, "best": row.best, "last_date": row.last_date})


def _yesterday() -> str:
    return challenges.date_of(int(time.time() * 1000) - 86_400_000)
