"""The daily challenge: one text per UTC day, seeded from the date. Pure.

Rules:

1. A challenge's id is its UTC date (``2026-11-26``); its text is
   ``texts.generate(SPEC, seed_of(date))``, the same on every process.
2. The seed is the first 62 bits of SHA-256 of ``"challenge:" + date``.
3. A streak counts consecutive UTC days with at least one accepted attempt:
   a second attempt the same day changes nothing, the next day adds one,
   a gap starts again at 1. ``streak`` never looks at the clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from typogram.texts import TextSpec

SPEC = TextSpec(mode="words", lang="en", count=30)


def date_of(epoch_ms: int) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC).date().isoformat()


def seed_of(date: str) -> int:
    digest = hashlib.sha256(f"challenge:{date}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def is_date(value: str) -> bool:
    try:
        return dt.date.fromisoformat(value).isoformat() == value
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Streak:
    last_date: str
    current: int
    best: int


def streak(previous: Streak | None, date: str) -> Streak:
    """Rule 3: the streak after an accepted attempt on ``date``."""
    if previous is None:
        return Streak(date, 1, 1)
    if date <= previous.last_date:
        return previous  # same day again, or an old attempt replayed late
    day = dt.date.fromisoformat(date)
    follows = dt.date.fromisoformat(previous.last_date) + dt.timedelta(days=1) == day
    current = previous.current + 1 if follows else 1
    return Streak(date, current, max(previous.best, current))


def current(streak: Streak, today: str) -> int:
    """The streak as of ``today``: it lapses once a whole UTC day passed without an attempt."""
    yesterday = (dt.date.fromisoformat(today) - dt.timedelta(days=1)).isoformat()
    return streak.current if streak.last_date >= yesterday else 0
