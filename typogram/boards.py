"""Leaderboard names, periods and scores. Pure: time is passed in.

Rules:

1. Boards are ``words-25-{lang}``, ``words-50-{lang}``, ``time-15-{lang}``,
   ``time-60-{lang}`` (plain tests only), ``races`` and ``challenge-{date}``
   (``challenge-2026-11-26``). Windows are ``daily``, ``weekly``, ``alltime``.
2. A score goes to the period of the moment it was *made* (not processed):
   ``daily-2026-11-26``, ``weekly-2026-W48`` (ISO week, UTC) or ``alltime``.
   That period name is the sorted set's second half:
   ``leaderboard:words-25-en:daily-2026-11-26``.
3. Daily and weekly sets expire ``PERIOD_GRACE_S`` after their period ends;
   ``alltime`` never does.
4. A result reaches a board only after a minimum of typing (``enough_typing``):
   a test of at least ``min_seconds`` or at least ``min_words`` correctly typed
   words (settings ``typing_board_min_seconds``/``_words``). A shorter one is
   stored but boardless (``ranked`` false).
5. One member per user, holding the user's best: a sorted-set score encodes
   the WPM and, for equal WPM, who got there first::

       score = centi_wpm * TIME_SPAN + (TIME_SPAN - 1 - seconds since EPOCH_S)

   ``centi_wpm`` is the WPM in hundredths (the results' precision). The
   second part falls as time passes, so of two equal WPMs the earlier ranks
   higher, and ``zadd(only_greater=True)`` keeps the first one. The largest
   score (300 WPM) is 3e14, well inside a double's exact integers (2^53);
   ties within one second fall back to the member order.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Final

from typogram.texts import LANGUAGES

WINDOWS: Final = ("daily", "weekly", "alltime")
TIME_SPAN: Final = 10**10  # seconds: ~317 years after EPOCH_S
EPOCH_S: Final = 1_704_067_200  # 2024-01-01T00:00:00Z
PERIOD_GRACE_S: Final = 2 * 24 * 3600
MAX_CENTI_WPM: Final = 100_000  # 1,000 WPM: far past any cap

_TEST_BOARD = re.compile(r"\A(words-(?:25|50)|time-(?:15|60))-([a-z]{2})\Z")
_CHALLENGE_BOARD = re.compile(r"\Achallenge-(\d{4}-\d{2}-\d{2})\Z")
RACES: Final = "races"


class BoardError(ValueError):
    """Not a board or window this platform keeps."""


def check_board(board: str) -> str:
    """``board`` when it names a board (rule 1), else ``BoardError``."""
    match = _TEST_BOARD.match(board)
    if match and match.group(2) in LANGUAGES:
        return board
    if board == RACES:
        return board
    challenge = _CHALLENGE_BOARD.match(board)
    if challenge:
        try:
            dt.date.fromisoformat(challenge.group(1))
        except ValueError:
            raise BoardError(f"no such board {board!r}") from None
        return board
    raise BoardError(f"no such board {board!r}")


def enough_typing(duration_ms: int, words: int, *, min_seconds: int, min_words: int) -> bool:
    """Rule 4: whether a result typed for ``duration_ms`` with ``words`` correct words
    may reach a board."""
    return duration_ms >= min_seconds * 1000 or words >= min_words


def challenge_board(date: str) -> str:
    return f"challenge-{date}"


@dataclass(frozen=True, slots=True)
class Period:
    name: str  # ``daily-2026-11-26``, ``weekly-2026-W48`` or ``alltime``
    expires_at_s: int | None  # epoch seconds the set may be dropped, None for alltime


def period(window: str, at_ms: int) -> Period:
    """The period of ``window`` that holds the moment ``at_ms`` (rule 2)."""
    moment = dt.datetime.fromtimestamp(at_ms / 1000, tz=dt.UTC)
    day = moment.date()
    if window == "daily":
        end = day + dt.timedelta(days=1)
        return Period(f"daily-{day.isoformat()}", _epoch(end) + PERIOD_GRACE_S)
    if window == "weekly":
        year, week, weekday = day.isocalendar()
        end = day + dt.timedelta(days=8 - weekday)
        return Period(f"weekly-{year}-W{week:02d}", _epoch(end) + PERIOD_GRACE_S)
    if window == "alltime":
        return Period("alltime", None)
    raise BoardError(f"no such window {window!r}; one of {', '.join(WINDOWS)}")


def periods(at_ms: int) -> list[Period]:
    return [period(window, at_ms) for window in WINDOWS]


def _epoch(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def encode(wpm: float, at_ms: int) -> float:
    """The sorted-set score of ``wpm`` reached at ``at_ms`` (rule 5)."""
    centi = min(MAX_CENTI_WPM, max(0, round(wpm * 100)))
    elapsed = min(TIME_SPAN - 1, max(0, at_ms // 1000 - EPOCH_S))
    return float(centi * TIME_SPAN + (TIME_SPAN - 1 - elapsed))


def decode(score: float) -> tuple[float, int]:
    """``(wpm, at_ms)`` back from a score; ``at_ms`` to the second."""
    whole = int(score)
    centi, rest = divmod(whole, TIME_SPAN)
    return centi / 100, (EPOCH_S + TIME_SPAN - 1 - rest) * 1000
