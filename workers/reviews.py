"""``reviews`` group (``test-results``, ``race-events``, ``challenge-attempts``): the
review queue of flagged results (``typogram.reviews``).

Each flagged ``result.accepted``, race finish (``race.finished``,
``typogram.race_events``) and ``challenge.attempt`` of a
batch becomes one ``flag_reviews`` row, inserted only when its subject has none
yet (the row's id is derived from it), so the group keeps no done marker: a
replayed batch inserts nothing. Other events are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from typogram import race_events, reviews, topics
from typogram.ports import Event
from workers.runtime import Group

if TYPE_CHECKING:
    from typogram.platform import Platform


def flag_of(event: Event) -> reviews.Flag | None:
    if event.type == topics.RESULT_ACCEPTED:
        return reviews.of_result(event.data)
    if event.type == topics.CHALLENGE_ATTEMPT:
        return reviews.of_attempt(event.data)
    if race_events.kind_of(event) == race_events.FINISH:
        return reviews.of_race_finish(event.data, event.ts)
    return None


async def handle(platform: Platform, topic: str, event: Event) -> None:
    await handle_batch(platform, topic, [event])


async def handle_batch(platform: Platform, topic: str, events: Sequence[Event]) -> None:
    flags = [flag for flag in map(flag_of, events) if flag is not None]
    if flags:
        reviewed = reviews.Reviews(
            platform.db, platform.cache, platform.records, score_writes=platform.score_writes
        )
        await reviewed.record(flags)


GROUP = Group(
    name="reviews",
    topics=(topics.TEST_RESULTS, topics.RACE_EVENTS, topics.CHALLENGE_ATTEMPTS),
    handle=handle,
    handle_batch=handle_batch,
    dedupe=False,  # one row per subject: a replay inserts nothing
)
