"""``achievements`` group (``achievement-events``, ``race-events``): the rules engine.

Each event becomes a fact (``typogram.achievements``): ``achievement.test``
→ ``TestDone``, ``achievement.challenge_streak`` → ``ChallengeStreak``, a
race finish in first place (``race.result``, not a guest, not flagged) →
``RaceWon``. In one transaction the event id goes into
``achievement_events_seen`` (a replay stops there), the user's facts are
folded and saved, and every achievement they now reach and the user lacks is
inserted into ``user_achievements`` (primary key ``(user_id,
achievement_id)``: unlocked exactly once). After the commit the user's cached
achievements are dropped and each unlock is pushed to the user's
connections on ``keys.channel_user`` as ``achievement.unlocked``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from typogram import achievements as rules
from typogram import keys, topics
from typogram.db.schema import achievement_events_seen, achievement_progress, user_achievements
from typogram.logs import get_logger
from typogram.ports import Event
from typogram.protocol import push_payload
from workers import pipeline_events as pe
from workers.runtime import Group

if TYPE_CHECKING:
    from typogram.platform import Platform

RACE_RESULT = "race.result"
UNLOCKED = "achievement.unlocked"
log = get_logger("typogram.workers.achievements")


def fact_of(event: Event) -> tuple[str, rules.Fact] | None:
    """The user and fact an event carries, or None when it carries none."""
    d = event.data
    if event.type == pe.ACHIEVEMENT_TEST:
        fact: rules.Fact = rules.TestDone(
            float(d["wpm"]), float(d["accuracy"]), str(d.get("lang", ""))[:8]
        )
        return str(d["user_id"]), fact
    if event.type == pe.ACHIEVEMENT_CHALLENGE:
        return str(d["user_id"]), rules.ChallengeStreak(int(d["days"]))
    if event.type == RACE_RESULT and d.get("place") == 1:
        if d.get("guest") or d.get("flags") or not d.get("user"):
            return None
        return str(d["user"]), rules.RaceWon()
    return None


async def handle(platform: Platform, topic: str, event: Event) -> None:
    found = fact_of(event)
    if found is None:
        return
    user_id, fact = found
    if len(user_id) > 32:
        return  # not a registered user's id
    now = int(time.time() * 1000)
    try:
        unlocked = await _apply(platform, event.id[:64], user_id, fact, now)
    except IntegrityError:
        return  # a concurrent delivery of this event applied it first
    if unlocked is None:
        return
    await _announce(platform, user_id, unlocked, now)


async def _apply(
    platform: Platform, event_id: str, user_id: str, fact: rules.Fact, now: int
) -> list[rules.Achievement] | None:
    """One transaction; None when the event was applied before."""
    unlocked: list[rules.Achievement] = []
    async with platform.db.write() as conn:
        seen = achievement_events_seen
        hit = await conn.execute(select(seen.c.event_id).where(seen.c.event_id == event_id))
        if hit.first() is not None:
            return None
        await conn.execute(seen.insert().values(event_id=event_id, created_at=now))
        p = achievement_progress
        raw = (
            await conn.execute(select(p.c.facts).where(p.c.user_id == user_id))
        ).scalar_one_or_none()
        before = rules.Facts() if raw is None else rules.Facts.from_json(orjson.loads(raw))
        after = rules.observe(before, fact)
        doc = orjson.dumps(after.to_json()).decode()
        if raw is None:
            await conn.execute(p.insert().values(user_id=user_id, facts=doc, updated_at=now))
        else:
            await conn.execute(
                p.update().where(p.c.user_id == user_id).values(facts=doc, updated_at=now)
            )
        u = user_achievements
        have = {
            row.achievement_id
            for row in await conn.execute(select(u.c.achievement_id).where(u.c.user_id == user_id))
        }
        for achievement in rules.earned(after):
            if achievement.id not in have:
                await conn.execute(
                    u.insert().values(
                        user_id=user_id, achievement_id=achievement.id, unlocked_at=now
                    )
                )
                unlocked.append(achievement)
    return unlocked


async def _announce(
    platform: Platform, user_id: str, unlocked: list[rules.Achievement], now: int
) -> None:
    await platform.cache.delete(
        keys.achievements_unlocked(user_id), keys.achievements_progress(user_id)
    )
    for achievement in unlocked:
        message = push_payload(
            UNLOCKED, {"id": achievement.id, "title": achievement.title, "unlocked_at": now}
        )
        try:
            await platform.pubsub.publish(keys.channel_user(user_id), message)
        except Exception:  # the unlock is stored; a missed push only delays the news
            log.exception("achievement push failed", extra={"user_id": user_id})


GROUP = Group(
    name="achievements",
    topics=(topics.ACHIEVEMENT_EVENTS, topics.RACE_EVENTS),
    handle=handle,
)
