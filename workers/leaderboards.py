"""``leaderboards`` group: ``leaderboard.score`` from ``leaderboard-updates`` and
race finishes (``race.finished``, ``typogram.race_events``) from ``race-events``
into the sorted sets.

Both writes are idempotent by themselves (best score per user, rule 1 of
``typogram.leaderboards``), so the group keeps no per-event done marker, and
the events of a batch (``workers.runtime``) collapse to the best score per
board entry. A race finish counts for the ``races`` board in
every window unless the racer is a guest, the finish was flagged or it is
not ``ranked`` (a custom-text race, too little typing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from typogram import boards, race_events, topics
from typogram.leaderboards import Leaderboards, Score
from typogram.ports import Event
from workers.runtime import Group

if TYPE_CHECKING:
    from typogram.platform import Platform

# (board, period, user) -> (wpm, at): one board entry to raise.
_Scores = dict[tuple[str, str, str], tuple[float, int]]


async def handle(platform: Platform, topic: str, event: Event) -> None:
    await handle_batch(platform, topic, [event])


async def handle_batch(platform: Platform, topic: str, events: Sequence[Event]) -> None:
    """The scores of a batch, best per (board, period, user), written in one round trip.

    Only the best of a user's scores on one board can matter (rule 1 of
    ``typogram.leaderboards``), so a batch keeps the best per entry.
    """
    scores: _Scores = {}
    for event in events:
        for entry, (wpm, at) in _scores_of(event):
            best = scores.get(entry)
            # Higher WPM wins; on a tie the earlier score, as the board's encoding does.
            if best is None or wpm > best[0] or (wpm == best[0] and at < best[1]):
                scores[entry] = (wpm, at)
    if not scores:
        return
    await Leaderboards(platform.db, platform.cache, platform.score_writes).record_many(
        [Score(board, period, user, wpm, at) for (board, period, user), (wpm, at) in scores.items()]
    )


def _scores_of(event: Event) -> list[tuple[tuple[str, str, str], tuple[float, int]]]:
    data = event.data
    if event.type == topics.LEADERBOARD_SCORE:
        board = boards.check_board(str(data["board"]))
        entry = (board, str(data["period"]), str(data["user_id"]))
        return [(entry, (float(data["wpm"]), int(data["at"])))]
    if race_events.kind_of(event) == race_events.FINISH:
        # ``ranked`` false: unrated (custom text, flagged) or too little typing.
        if data.get("guest") or data.get("flags") or data.get("ranked") is False:
            return []
        if not data.get("user"):
            return []
        at, user, wpm = event.ts, str(data["user"]), float(data["wpm"])
        return [((boards.RACES, period.name, user), (wpm, at)) for period in boards.periods(at)]
    return []


GROUP = Group(
    name="leaderboards",
    topics=(topics.LEADERBOARD_UPDATES, topics.RACE_EVENTS),
    handle=handle,
    handle_batch=handle_batch,
    dedupe=False,  # best score per user: a replayed write changes nothing
)
