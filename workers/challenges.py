"""``challenges`` group (``challenge-attempts``): store attempts, count streaks, feed
the ``challenge-{date}`` board and the achievements.

A ``challenge.attempt`` is inserted into ``challenge_attempts`` once (its id);
in the same transaction an accepted (not flagged) attempt moves the user's
streak (``typogram.challenges.streak``, idempotent per day). After the
commit — also on a replay — it emits ``leaderboard.score`` for
``challenge-{date}`` per period and ``achievement.challenge_streak``, with
ids derived from the attempt id so downstream groups dedupe them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from typogram import boards, challenges, topics
from typogram.db.schema import challenge_attempts, challenge_streaks
from typogram.ports import Event
from workers import pipeline_events as pe
from workers.runtime import Group

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from typogram.platform import Platform


async def handle(platform: Platform, topic: str, event: Event) -> None:
    if event.type != topics.CHALLENGE_ATTEMPT:
        return
    d = event.data
    attempt_id, user_id = str(d["attempt_id"])[:32], str(d["user_id"])[:32]
    date, at = str(d["challenge_id"]), int(d["created_at"])
    if not challenges.is_date(date):
        raise ValueError(f"challenge id {date!r} is not a date")
    flagged = bool(d.get("flagged"))
    async with platform.db.write() as conn:
        seen = await conn.execute(
            select(challenge_attempts.c.id).where(challenge_attempts.c.id == attempt_id)
        )
        if seen.first() is None:
            await conn.execute(
                challenge_attempts.insert().values(
                    id=attempt_id,
                    created_at=at,
                    challenge_id=date,
                    user_id=user_id,
                    wpm=float(d["wpm"]),
                    raw_wpm=float(d["raw_wpm"]),
                    accuracy=float(d["accuracy"]),
                    consistency=float(d["consistency"]),
                    duration_ms=int(d["duration_ms"]),
                    flagged=int(flagged),
                )
            )
            if not flagged:
                await _advance(conn, user_id, date)
        days = await _current(conn, user_id)
    if flagged:
        return
    await platform.records.changed([user_id])  # the streak on the user's stats
    board = boards.challenge_board(date)
    for period in boards.periods(at):
        await platform.events.publish(
            topics.LEADERBOARD_UPDATES,
            pe.leaderboard_score(
                source=attempt_id,
                board=board,
                period=period.name,
                user_id=user_id,
                wpm=float(d["wpm"]),
                at_ms=at,
            ),
        )
    fact: dict[str, Any] = {"user_id": user_id, "source": attempt_id, "days": days}
    await platform.events.publish(
        topics.ACHIEVEMENT_EVENTS,
        Event(
            type=topics.ACHIEVEMENT_CHALLENGE_STREAK,
            data=fact,
            key=user_id,
            version=pe.VERSION,
            id=pe.derived_id(attempt_id, "achievement"),
            ts=at,
        ),
    )


async def _advance(conn: AsyncConnection, user_id: str, date: str) -> None:
    t = challenge_streaks
    row = (await conn.execute(select(t).where(t.c.user_id == user_id))).first()
    previous = None if row is None else challenges.Streak(row.last_date, row.current, row.best)
    new = challenges.streak(previous, date)
    values = {
        "last_date": new.last_date,
        "current": new.current,
        "best": new.best,
        "updated_at": int(time.time() * 1000),
    }
    if row is None:
        await conn.execute(t.insert().values(user_id=user_id, **values))
    elif new != previous:
        await conn.execute(t.update().where(t.c.user_id == user_id).values(**values))


async def _current(conn: AsyncConnection, user_id: str) -> int:
    t = challenge_streaks
    found = await conn.execute(select(t.c.current).where(t.c.user_id == user_id))
    return int(found.scalar_one_or_none() or 0)


GROUP = Group(name="challenges", topics=(topics.CHALLENGE_ATTEMPTS,), handle=handle)
