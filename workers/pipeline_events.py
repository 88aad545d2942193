"""Events the results pipeline emits (``leaderboard-updates``, ``keystroke-analytics``,
``achievement-events``): their deterministic ids (their types are in ``typogram.topics``).

An emitted event's id is derived from its source (a result, a challenge
attempt, a race result) and its destination, so a replayed source event
re-emits the *same* ids and every downstream group deduplicates them.
"""

from __future__ import annotations

import hashlib
from typing import Any

from typogram import topics
from typogram.ports import Event

VERSION = 1


def derived_id(*parts: str) -> str:
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:32]


def leaderboard_score(
    *, source: str, board: str, period: str, user_id: str, wpm: float, at_ms: int
) -> Event:
    """One board in one period to update (key = user: a board's updates spread over the
    topic's partitions, and one user's stay in order; best-score-per-user needs no more)."""
    data: dict[str, Any] = {
        "board": board,
        "period": period,
        "user_id": user_id,
        "wpm": wpm,
        "at": at_ms,
        "source": source,
    }
    return Event(
        type=topics.LEADERBOARD_SCORE,
        data=data,
        key=user_id,
        version=VERSION,
        id=derived_id(source, "lb", board, period),
        ts=at_ms,
    )
