"""``courses`` group (``test-results``): lesson tests' results complete lessons and courses;
on a schedule, subscriptions whose period has ended expire.

1. Of a batch of ``result.accepted`` events, only lesson tests' results
   (category ``lesson-…``) matter; ``Learning.apply_results`` applies them
   exactly once (``typogram.courses.learning`` rule 3). Every other event is
   ignored, so this group reads the topic beside ``results`` without
   touching what that group does.
2. A completed course is announced once as ``achievement.course`` on
   ``achievement-events`` (id derived from user and course, so the
   achievements worker counts it once, also when a replay announces it
   again); it is announced after the commit, and a replay of the result
   finds it applied and announces nothing, so a crash between commit and
   publish loses the announcement: the history (``completed_at``) keeps it.
3. Every ``subscription_expiry_interval_s``: ``Subscriptions.expire_due``
   (each expiry locks its row and re-checks: safe in every process at once)
   and forgetting lesson tests too old to be submitted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from typogram import topics
from typogram.courses.learning import Completion, is_lesson_result
from typogram.courses.services import learning_of, subscriptions_of
from typogram.logs import get_logger
from typogram.ports import Event
from workers import pipeline_events as pe
from workers.runtime import Group, Periodic

if TYPE_CHECKING:
    from typogram.platform import Platform

log = get_logger("typogram.workers.courses")


async def handle(platform: Platform, topic: str, event: Event) -> None:
    await handle_batch(platform, topic, [event])


async def handle_batch(platform: Platform, topic: str, events: Sequence[Event]) -> None:
    lessons = [
        e.data for e in events if e.type == topics.RESULT_ACCEPTED and is_lesson_result(e.data)
    ]
    if not lessons:
        return
    for completion in await learning_of(platform).apply_results(lessons):
        log.info(
            "lesson completed",
            extra={"user_id": completion.user_id, "lesson_id": completion.lesson_id},
        )
        if completion.course_completed:
            await platform.events.publish(topics.ACHIEVEMENT_EVENTS, course_event(completion))


def course_event(completion: Completion) -> Event:
    """Rule 2."""
    return Event(
        type=topics.ACHIEVEMENT_COURSE,
        data={
            "user_id": completion.user_id,
            "course_id": completion.course_id,
            "source": completion.result_id,
        },
        key=completion.user_id,
        version=pe.VERSION,
        id=pe.derived_id(completion.user_id, completion.course_id, "course-completed"),
        ts=completion.at,
    )


async def expire_and_prune(platform: Platform) -> int:
    """Rule 3: one pass; returns how many subscriptions expired."""
    settings = platform.settings
    expired = await subscriptions_of(platform).expire_due(limit=settings.subscription_expiry_batch)
    if expired:
        log.info("subscriptions expired", extra={"count": len(expired)})
    before = int(time.time() * 1000) - 2 * settings.typing_test_ttl_s * 1000
    await learning_of(platform).prune_tests(before)
    return len(expired)


GROUP = Group(
    name="courses",
    topics=(topics.TEST_RESULTS,),
    handle=handle,
    handle_batch=handle_batch,
    dedupe=False,  # exactly once by lesson_tests.result_id (typogram.courses.learning)
    periodic=(
        Periodic(
            "expire-subscriptions",
            lambda settings: settings.subscription_expiry_interval_s,
            expire_and_prune,
        ),
    ),
)
