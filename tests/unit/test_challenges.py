"""Daily challenge seeds and streaks (typogram.challenges)."""

from __future__ import annotations

from typogram import challenges
from typogram.challenges import Streak, streak


def test_seed_comes_from_the_date() -> None:
    assert challenges.seed_of("2026-11-26") == challenges.seed_of("2026-11-26")
    assert challenges.seed_of("2026-11-26") != challenges.seed_of("2026-11-27")
    assert 0 <= challenges.seed_of("2026-11-26") < 2**62
    assert challenges.date_of(0) == "1970-01-01"
    assert challenges.is_date("2026-11-26") and not challenges.is_date("2026-11-31")


def test_streak_counts_consecutive_days_once_each() -> None:
    s = streak(None, "2026-11-26")
    assert s == Streak("2026-11-26", 1, 1)
    assert streak(s, "2026-11-26") == s  # a second attempt the same day
    s = streak(streak(s, "2026-11-27"), "2026-11-28")
    assert (s.current, s.best) == (3, 3)
    assert streak(s, "2026-11-20") == s  # an old attempt replayed late
    gap = streak(s, "2026-12-01")
    assert (gap.current, gap.best) == (1, 3)
