"""``leaderboards`` group: ``leaderboard.score`` from ``leaderboard-updates`` and
race finishes (``race.result``) from ``race-events`` into the sorted sets.

Both writes are idempotent by themselves (best score per user, rule 1 of
``typogram.leaderboards``). A race finish counts for the ``races`` board in
every window unless the racer is a guest or the finish was flagged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typogram import boards, topics
from typogram.leaderboards import Leaderboards
from typogram.ports import Event
from workers import pipeline_events as pe
from workers.runtime import Group

if TYPE_CHECKING:
    from typogram.platform import Platform

RACE_RESULT = "race.result"


async def handle(platform: Platform, topic: str, event: Event) -> None:
    store = Leaderboards(platform.db, platform.cache)
    data = event.data
    if event.type == pe.LEADERBOARD_SCORE:
        board = boards.check_board(str(data["board"]))
        await store.record(
            board, str(data["period"]), str(data["user_id"]), float(data["wpm"]), int(data["at"])
        )
    elif event.type == RACE_RESULT and "place" in data:
        if data.get("guest") or data.get("flags") or not data.get("user"):
            return
        at = event.ts
        for period in boards.periods(at):
            await store.record(boards.RACES, period.name, str(data["user"]), float(data["wpm"]), at)


GROUP = Group(
    name="leaderboards",
    topics=(topics.LEADERBOARD_UPDATES, topics.RACE_EVENTS),
    handle=handle,
)
