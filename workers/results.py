"""``results`` group (``test-results``): store results, personal bests and aggregate
stats, then fan out to boards, analytics and achievements.

For the ``result.accepted`` events of a batch (``workers.runtime``; a retry is
a batch of one; docs/events.md):

1. ``typogram.results.apply_results`` stores them in one transaction, each
   result exactly once (``typogram.results`` rule 8; also without the
   runtime's event-id marker). An event that does not decode into a
   ``ResultRecord`` fails its batch: retried alone, then dead-lettered.
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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from typogram import topics
from typogram.leaderboards import result_scores
from typogram.ports import Event
from typogram.result_record import ResultRecord
from typogram.results import apply_results
from workers import pipeline_events as pe
from workers.runtime import Group

if TYPE_CHECKING:
    from typogram.platform import Platform


async def handle(platform: Platform, topic: str, event: Event) -> None:
    await handle_batch(platform, topic, [event])


async def handle_batch(platform: Platform, topic: str, events: Sequence[Event]) -> None:
    accepted = [event.data for event in events if event.type == topics.RESULT_ACCEPTED]
    if not accepted:
        return  # types this group does not know: ignore, as docs/events.md asks
    records = [ResultRecord.of_event(data) for data in accepted]  # ValueError: the DLQ's
    # The follow-ups go out while the transaction runs (the result is accepted: it
    # is on the log, and a failed apply is retried), all at once: they share the
    # producer's next batch. The handler returns only when both are done.
    async with asyncio.TaskGroup() as work:
        work.create_task(apply_results(platform, records))
        for data in accepted:
            for outgoing_topic, outgoing in emitted(data):
                work.create_task(platform.events.publish(outgoing_topic, outgoing))


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
                type=topics.ANALYTICS_RESULT,
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
                    type=topics.ACHIEVEMENT_TEST,
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
