"""The groups that read race finishes (``achievements``, ``leaderboards``, ``reviews``)
take a finish by its new name and by its version 1 name alike, and never take standings
for a finish (docs/events.md, renamed race events)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from typogram import race_events, topics
from typogram.ports import Event
from workers import achievements, leaderboards, reviews

WIN = {
    "race": "r1", "user": "u" * 32, "guest": False, "place": 1, "wpm": 90.0, "raw_wpm": 92.0,
    "accuracy": 97.0, "consistency": 80.0, "time_ms": 30_000, "flags": [], "rated": True,
    "ranked": True,
}  # fmt: skip
FLAGGED = {**WIN, "flags": ["progress_mismatch"], "rated": False}
STANDINGS = {"race": "r1", "standings": [{"user": "u" * 32, "place": 1, "wpm": 90.0}]}


def new(data: dict[str, object]) -> Event:
    return race_events.finish_event("r1", data)


def old(data: dict[str, object]) -> Event:
    """The same finish as a gateway published it before the rename."""
    return replace(new(data), type=topics.RACE_RESULT, version=race_events.LEGACY_VERSION)


@pytest.mark.parametrize("version", [new, old])
def test_a_win_counts_for_achievements_and_the_races_board(
    version: Callable[[dict[str, object]], Event],
) -> None:
    event = version(WIN)
    assert achievements.fact_of(event) is not None
    entries = leaderboards._scores_of(event)
    assert entries and all(board == "races" for (board, _, _), _ in entries)
    assert reviews.flag_of(event) is None


@pytest.mark.parametrize("version", [new, old])
def test_a_flagged_finish_goes_to_review_only(
    version: Callable[[dict[str, object]], Event],
) -> None:
    event = version(FLAGGED)
    assert reviews.flag_of(event) is not None
    assert achievements.fact_of(event) is None and leaderboards._scores_of(event) == []


@pytest.mark.parametrize(
    "event",
    [
        race_events.standings_event("r1", STANDINGS),
        replace(
            race_events.standings_event("r1", STANDINGS),
            type=topics.RACE_FINISHED,
            version=race_events.LEGACY_VERSION,
        ),
    ],
)
def test_standings_are_no_finish_in_either_version(event: Event) -> None:
    assert achievements.fact_of(event) is None
    assert leaderboards._scores_of(event) == []
    assert reviews.flag_of(event) is None
