"""``results`` group (``test-results``): aggregate stats, then fan out to boards,
analytics and achievements.

For each ``result.accepted`` (docs/events.md):

1. ``user_stats`` is updated together with an ``applied_results`` row in one
   transaction; a result already applied changes nothing (idempotent even
   without the runtime's event-id marker).
2. Then, every time — also for a replay, since a crash may have come between
   the commit and the publishes — it emits events with ids derived from the
   result id (``workers.pipeline_events``), so downstream groups dedupe them:
   ``leaderboard.score`` per (board, period) on ``leaderboard-updates``,
   ``analytics.result`` on ``keystroke-analytics``, ``achievement.test`` on
   ``achievement-events``.
3. A flagged result only counts in ``user_stats.flagged``: no best, no
   average, no board and no achievement. Its analytics still go to the user's
   own (private) insights.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from typogram import boards, topics
from typogram.db.schema import applied_results, user_stats
from typogram.ports import Event
from workers import pipeline_events as pe
from workers.runtime import Group

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from typogram.platform import Platform

ACCEPTED = "result.accepted"


async def handle(platform: Platform, topic: str, event: Event) -> None:
    if event.type != ACCEPTED:
        return  # a type this group does not know: ignore, as docs/events.md asks
    data = event.data
    await apply_stats(platform, data)
    # All at once: they share the producer's next batch (one ack wait, not five in a
    # row). The handler still returns only when every one is on the log.
    async with asyncio.TaskGroup() as sends:
        for outgoing_topic, outgoing in emitted(data):
            sends.create_task(platform.events.publish(outgoing_topic, outgoing))


async def apply_stats(platform: Platform, data: dict[str, Any] | Any) -> bool:
    """Rule 1; returns False when the result was applied before."""
    result_id, user_id = str(data["result_id"]), str(data["user_id"])
    flagged = bool(data.get("flagged"))
    now = int(time.time() * 1000)
    try:
        return await _apply(platform, result_id, user_id, data, flagged, now)
    except IntegrityError:
        return False  # a concurrent delivery of this result applied it first


async def _apply(
    platform: Platform, result_id: str, user_id: str, data: Any, flagged: bool, now: int
) -> bool:
    async with platform.db.write() as conn:
        seen = await conn.execute(
            select(applied_results.c.result_id).where(applied_results.c.result_id == result_id)
        )
        if seen.first() is not None:
            return False
        await conn.execute(
            applied_results.insert().values(
                result_id=result_id, user_id=user_id, created_at=int(data["created_at"])
            )
        )
        await _add(conn, user_id, data, flagged, now)
    return True


async def _add(conn: AsyncConnection, user_id: str, data: Any, flagged: bool, now: int) -> None:
    t = user_stats
    row = (await conn.execute(select(t).where(t.c.user_id == user_id))).mappings().first()
    if row is None:
        await conn.execute(t.insert().values(user_id=user_id, created_at=now, updated_at=now))
        row = (await conn.execute(select(t).where(t.c.user_id == user_id))).mappings().one()
    values: dict[str, Any] = {"updated_at": now}
    if flagged:
        values["flagged"] = row["flagged"] + 1
    else:
        wpm = float(data["wpm"])
        values |= {
            "tests": row["tests"] + 1,
            "total_time_ms": row["total_time_ms"] + int(data["duration_ms"]),
            "total_chars": row["total_chars"] + int(data["chars"]["correct"]),
            "best_wpm": max(float(row["best_wpm"]), wpm),
            "wpm_sum": float(row["wpm_sum"]) + wpm,
            "accuracy_sum": float(row["accuracy_sum"]) + float(data["accuracy"]),
            "last_test_at": max(int(row["last_test_at"]), int(data["created_at"])),
        }
    await conn.execute(t.update().where(t.c.user_id == user_id).values(**values))


def emitted(data: Any) -> list[tuple[str, Event]]:
    """Rules 2-3: what to publish for one accepted result (pure)."""
    result_id, user_id = str(data["result_id"]), str(data["user_id"])
    at = int(data["created_at"])
    flagged = bool(data.get("flagged"))
    out: list[tuple[str, Event]] = []
    board = data.get("category")
    if board and not flagged:
        for p in boards.periods(at):
            out.append(
                (
                    topics.LEADERBOARD_UPDATES,
                    pe.leaderboard_score(
                        source=result_id,
                        board=str(board),
                        period=p.name,
                        user_id=user_id,
                        wpm=float(data["wpm"]),
                        at_ms=at,
                    ),
                )
            )
    analytics = {
        name: data.get(name)
        for name in ("result_id", "user_id", "wpm", "accuracy", "consistency", "created_at")
    } | {name: data.get(name) or {} for name in ("keys", "bigrams", "confusions")}
    out.append(
        (
            topics.KEYSTROKE_ANALYTICS,
            Event(
                type=pe.ANALYTICS_RESULT,
                data=analytics,
                key=user_id,
                version=pe.VERSION,
                id=pe.derived_id(result_id, "analytics"),
                ts=at,
            ),
        )
    )
    if not flagged:
        fact = {
            "user_id": user_id,
            "source": result_id,
            "wpm": data["wpm"],
            "accuracy": data["accuracy"],
            "lang": data.get("lang", ""),
        }
        out.append(
            (
                topics.ACHIEVEMENT_EVENTS,
                Event(
                    type=pe.ACHIEVEMENT_TEST,
                    data=fact,
                    key=user_id,
                    version=pe.VERSION,
                    id=pe.derived_id(result_id, "achievement"),
                    ts=at,
                ),
            )
        )
    return out


GROUP = Group(name="results", topics=(topics.TEST_RESULTS,), handle=handle)
