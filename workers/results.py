"""``results`` group (``test-results``): store results, personal bests and aggregate
stats, then fan out to boards, analytics and achievements.

For the ``result.accepted`` events of a batch (``workers.runtime``; a retry is
a batch of one; docs/events.md):

1. In one transaction: the results not in ``applied_results`` yet get their
   ``applied_results`` row, their ``test_results`` row (kept if a
   write-through submission stored it already), their personal best
   (only a strictly higher WPM replaces one) and their share of
   ``user_stats``. A result already applied changes nothing, so a batch
   replayed after a crash applies every result exactly once (also without
   the runtime's event-id marker). Then the users' cached newest pages are
   dropped (``typogram.results`` rule 5).
2. Meanwhile, every time — also for a replay, since a crash may have come
   before the publishes — it emits events with ids derived from the
   result id (``workers.pipeline_events``), so downstream groups dedupe them:
   ``leaderboard.score`` per (board, period) on ``leaderboard-updates``,
   ``analytics.result`` on ``keystroke-analytics``, ``achievement.test`` on
   ``achievement-events``.
3. A flagged result is stored but only counts in ``user_stats.flagged``: no
   best, no average, no board and no achievement. Its analytics still go to
   the user's own (private) insights.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select

from typogram import keys, tallies, topics
from typogram.db.schema import applied_results
from typogram.leaderboards import result_scores
from typogram.ports import Event
from typogram.results import UPSERT_BEST_MYSQL, UPSERT_BEST_SQLITE, insert_rows, row_of_event
from workers import pipeline_events as pe
from workers.runtime import Group

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from typogram.platform import Platform

ACCEPTED = "result.accepted"


async def handle(platform: Platform, topic: str, event: Event) -> None:
    await handle_batch(platform, topic, [event])


async def handle_batch(platform: Platform, topic: str, events: Sequence[Event]) -> None:
    accepted = [event.data for event in events if event.type == ACCEPTED]
    if not accepted:
        return  # types this group does not know: ignore, as docs/events.md asks
    # The follow-ups go out while the transaction runs (the result is accepted: it
    # is on the log, and a failed apply is retried), all at once: they share the
    # producer's next batch. The handler returns only when both are done.
    async with asyncio.TaskGroup() as work:
        work.create_task(apply_results(platform, accepted))
        for data in accepted:
            for outgoing_topic, outgoing in emitted(data):
                work.create_task(platform.events.publish(outgoing_topic, outgoing))


async def apply_results(platform: Platform, batch: Sequence[Mapping[str, Any]]) -> int:
    """Rule 1; returns how many results were new (the others were applied before).

    Raises ``IntegrityError`` when a concurrent delivery applied one of them
    first: nothing of the batch is kept, and a retry finds it applied.
    """
    by_id = {str(data["result_id"]): data for data in batch}
    now = int(time.time() * 1000)
    db = platform.db
    async with db.write() as conn:
        seen = await conn.execute(_APPLIED_AMONG, {"ids": list(by_id)})
        for (result_id,) in seen.all():
            del by_id[str(result_id)]
        if not by_id:
            return 0
        fresh = list(by_id.values())
        await conn.execute(
            applied_results.insert(),
            [
                {"result_id": r, "user_id": str(d["user_id"]), "created_at": int(d["created_at"])}
                for r, d in by_id.items()
            ],
        )
        await conn.execute(insert_rows(db.dialect), [row_of_event(data) for data in fresh])
        bests = [_best_of(data) for data in fresh if not data.get("flagged")]
        if bests:
            upsert = UPSERT_BEST_MYSQL if db.dialect == "mysql" else UPSERT_BEST_SQLITE
            await conn.execute(upsert, bests)
        await _add_stats(conn, fresh, now)
    users = {str(data["user_id"]) for data in fresh}
    await platform.cache.delete(*(keys.user_recent_results(user) for user in users))
    await platform.records.changed(users)  # their stats, bests and WPM trend
    return len(fresh)


def _best_of(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "user_id": str(data["user_id"]),
        "category": str(data["personal_best_category"]),
        "wpm": float(data["wpm"]),
        "accuracy": float(data["accuracy"]),
        "result_id": str(data["result_id"]),
        "achieved_at": int(data["created_at"]),
    }


_APPLIED_AMONG = select(applied_results.c.result_id).where(
    applied_results.c.result_id.in_(bindparam("ids", expanding=True))
)


async def _add_stats(conn: AsyncConnection, fresh: list[Mapping[str, Any]], now: int) -> None:
    """Each user's share of the batch, added in one statement per user (rule 3)."""
    shares: dict[str, tallies.Delta] = {}
    for data in fresh:
        user = str(data["user_id"])
        share = shares.setdefault(user, tallies.delta(user, now))
        if data.get("flagged"):
            share["d_flagged"] += 1
        else:
            tallies.count(share, {**data, "chars_correct": data["chars"]["correct"]})
    await tallies.add(conn, shares.values())


def emitted(data: Any) -> list[tuple[str, Event]]:
    """Rules 2-3: what to publish for one accepted result (pure)."""
    result_id, user_id = str(data["result_id"]), str(data["user_id"])
    at = int(data["created_at"])
    flagged = bool(data.get("flagged"))
    out: list[tuple[str, Event]] = [
        (
            topics.LEADERBOARD_UPDATES,
            pe.leaderboard_score(
                source=result_id,
                board=score.board,
                period=score.period,
                user_id=user_id,
                wpm=score.wpm,
                at_ms=at,
            ),
        )
        for score in result_scores(data)
    ]
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


GROUP = Group(
    name="results",
    topics=(topics.TEST_RESULTS,),
    handle=handle,
    handle_batch=handle_batch,
    dedupe=False,  # rule 1 (``applied_results``); a replay re-emits, downstream dedupes
)
