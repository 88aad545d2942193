"""Board names, periods and the score encoding (typogram.boards)."""

from __future__ import annotations

import datetime as dt

import pytest

from typogram import boards

NOV_26 = int(dt.datetime(2026, 11, 26, 13, 5, tzinfo=dt.UTC).timestamp() * 1000)


def test_known_and_unknown_boards() -> None:
    for name in ("words-25-en", "words-50-de", "time-15-ru", "time-60-es", "races"):
        assert boards.check_board(name) == name
    assert boards.check_board("challenge-2026-11-26") == "challenge-2026-11-26"
    for bad in ("words-30-en", "words-25-xx", "challenge-2026-13-01", "time-60", "", "Races"):
        with pytest.raises(boards.BoardError):
            boards.check_board(bad)


def test_periods_name_the_day_and_iso_week_and_expire_after_them() -> None:
    daily, weekly, alltime = boards.periods(NOV_26)
    assert daily.name == "daily-2026-11-26" and weekly.name == "weekly-2026-W48"
    assert alltime == boards.Period("alltime", None)
    end_of_day = int(dt.datetime(2026, 11, 27, tzinfo=dt.UTC).timestamp())
    assert daily.expires_at_s == end_of_day + boards.PERIOD_GRACE_S
    monday = int(dt.datetime(2026, 11, 30, tzinfo=dt.UTC).timestamp())
    assert weekly.expires_at_s == monday + boards.PERIOD_GRACE_S
    new_year = int(dt.datetime(2027, 1, 1, 12, tzinfo=dt.UTC).timestamp() * 1000)
    assert boards.period("weekly", new_year).name == "weekly-2026-W53"
    with pytest.raises(boards.BoardError):
        boards.period("monthly", NOV_26)


def test_higher_wpm_ranks_higher_and_ties_go_to_the_earlier() -> None:
    early, late = NOV_26, NOV_26 + 60_000
    assert boards.encode(80.01, late) > boards.encode(80.0, early)
    assert boards.encode(80.0, early) > boards.encode(80.0, late)
    assert boards.encode(300.0, early) < 2**53  # exact in a double
    wpm, at = boards.decode(boards.encode(123.45, NOV_26))
    assert wpm == 123.45 and at == NOV_26 // 1000 * 1000
    assert boards.decode(boards.encode(-5, 0))[0] == 0
