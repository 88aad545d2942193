from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from typogram.typing import (
    BACKSPACE,
    Limits,
    LogError,
    analytics,
    check,
    consistency_of,
    replay,
    score,
)


def steady(text: str, interval: int = 100, start: int = 0) -> list[tuple[int, str]]:
    return [(start + i * interval, ch) for i, ch in enumerate(text)]


def human(text: str, seed: int = 1) -> list[tuple[int, str]]:
    """Intervals of 80..200 ms in a fixed irregular pattern."""
    pattern = [120, 95, 180, 140, 85, 160, 110, 200, 130, 90]
    t, log = 0, []
    for i, ch in enumerate(text):
        log.append((t, ch))
        t += pattern[(i + seed) % len(pattern)]
    return log


# -- hand-computed examples ----------------------------------------------------


def test_perfect_log() -> None:
    result = score(replay("ab cd", steady("ab cd")))
    # 5 correct characters = 1 word in 400 ms: 150 WPM.
    assert result.wpm == result.raw_wpm == 150.0
    assert result.accuracy == 100.0
    assert result.duration_ms == 400
    assert result.chars.correct == 5 and result.chars.incorrect == result.chars.missed == 0
    assert result.consistency == 100.0  # one second, one pace


def test_a_corrected_error_counts_against_accuracy_not_wpm() -> None:
    log = [(0, "t"), (100, "h"), (200, "r"), (300, BACKSPACE), (400, "e")]
    log += [(500, " "), (600, "c"), (700, "a"), (800, "t")]
    result = score(replay("the cat", log))
    assert result.wpm == 105.0  # 7 correct chars / 5 words in 0.8 s
    assert result.raw_wpm == 120.0  # 8 typed chars
    assert result.accuracy == 87.5  # 7 of 8 keystrokes
    assert result.backspaces == 1 and result.keystrokes == 8
    assert dict(result.confusions) == {"e": {"r": 1}}
    assert result.keys["e"].hits == 1 and result.keys["e"].misses == 1
    # The bigram after a correction is not a clean transition.
    assert "he" not in result.bigrams and result.bigrams["th"].samples == 1


def test_chars_breakdown() -> None:
    extra = score(replay("abc", steady("axcd")))
    assert (extra.chars.correct, extra.chars.incorrect, extra.chars.extra) == (2, 1, 1)
    short = replay("abcd", steady("ab"))
    assert score(short).chars.missed == 2
    assert score(short, whole_text=False).chars.missed == 0


def test_duration_ends_at_the_last_correct_character() -> None:
    log = [*steady("abc"), (5_000, "x")]
    result = score(replay("abcd", log), whole_text=False)
    assert result.duration_ms == 200
    assert result.span_ms == 5_000


def test_consistency_matches_the_formula() -> None:
    c = 30 / 90  # pstdev([60, 120]) / mean
    expected = 100 * (1 - math.tanh(c + c**3 / 3 + c**5 / 5))
    assert consistency_of([60, 120]) == pytest.approx(expected)
    assert consistency_of([80, 80, 80]) == 100.0
    assert consistency_of([]) == 0.0
    assert consistency_of([0, 0]) == 0.0


def test_per_second_series_folds_a_short_last_second() -> None:
    # 15 keys 100 ms apart: span 1400 ms, the last 400 ms fold into the first second.
    result = score(replay("a" * 15, steady("a" * 15)))
    assert len(result.per_second) == 1
    assert result.per_second[0].raw == pytest.approx(15 / 5 * 60_000 / 1400, abs=0.01)
    # 20 keys: span 1900 ms, a 900 ms second of its own, scaled to a full one.
    longer = score(replay("a" * 20, steady("a" * 20)))
    assert [s.raw for s in longer.per_second] == [120.0, pytest.approx(133.33, abs=0.01)]


@pytest.mark.parametrize(
    "log", [[(0,)], [(0, "ab")], [(0, 5)], [("0", "a")], [(True, "a")], [(0, "")]]
)
def test_garbage_logs_raise(log: list) -> None:
    with pytest.raises(LogError):
        replay("abc", log)


# -- verdicts ------------------------------------------------------------------

TEXT = "the quick brown fox jumps over the lazy dog"


def test_a_human_log_is_accepted() -> None:
    verdict = check(score(replay(TEXT, human(TEXT))), Limits())
    assert verdict.action == "accept", verdict.message


def test_impossible_speed_is_rejected() -> None:
    result = score(replay(TEXT, human(TEXT)))
    fast = score(replay(TEXT, [(t // 10, k) for t, k in human(TEXT)]))
    assert fast.wpm == pytest.approx(result.wpm * 10, rel=0.01)
    verdict = check(fast, Limits())
    assert verdict.action == "reject"
    assert "wpm_over_cap" in [r.code for r in verdict.reasons]


def test_robotic_and_steady_timing() -> None:
    robotic = check(score(replay(TEXT, steady(TEXT, 120))), Limits())
    assert robotic.action == "reject" and robotic.reasons[0].code == "robotic_timing"
    jitter = [(i * 120 + (8 if i % 2 else 0), ch) for i, ch in enumerate(TEXT)]
    steadyish = check(score(replay(TEXT, jitter)), Limits())
    assert steadyish.action == "flag" and steadyish.reasons[0].code == "uniform_timing"
    # Too few intervals to judge: not a verdict on timing.
    assert check(score(replay("abc def", steady("abc def"))), Limits()).action == "accept"


def test_time_going_backwards_is_rejected() -> None:
    log = human(TEXT)
    log[5] = (log[3][0] - 1, log[5][1])
    verdict = check(score(replay(TEXT, log)), Limits())
    assert "time_backwards" in [r.code for r in verdict.reasons]


def test_text_not_reproduced() -> None:
    typo = TEXT[:10] + "x" + TEXT[11:]
    words = check(score(replay(TEXT, human(typo))), Limits())
    assert [r.code for r in words.reasons] == ["text_not_reproduced"]
    half = check(score(replay(TEXT, human(TEXT[:20]))), Limits())
    assert half.action == "reject"
    # A time test takes a correct prefix, and forgives what follows the last correct char.
    prefix = score(replay(TEXT, human(TEXT[:20] + "zz")), whole_text=False)
    assert check(prefix, Limits()).action == "accept"
    lenient = Limits(min_matched_pct=95)
    assert check(score(replay(TEXT, human(typo))), lenient).action == "accept"


def test_a_time_test_that_runs_over_is_rejected() -> None:
    result = score(replay(TEXT, human(TEXT)), whole_text=False)
    assert check(result, Limits(), time_limit_ms=15_000).action == "accept"
    late = check(result, Limits(), time_limit_ms=1_000)
    assert "over_time" in [r.code for r in late.reasons]


def test_too_short_is_rejected() -> None:
    assert check(score(replay("a", [(0, "a")])), Limits()).action == "reject"
    assert check(score(replay("a", [])), Limits()).action == "reject"


def test_analytics_is_plain_data() -> None:
    data = analytics(score(replay("abab", steady("abab"))))
    assert data["keys"]["a"] == {"hits": 2, "misses": 0, "total_ms": 100, "samples": 1}
    assert data["bigrams"] == {
        "ab": {"total_ms": 200, "samples": 2},
        "ba": {"total_ms": 100, "samples": 1},
    }
    assert data["confusions"] == {}


# -- properties ----------------------------------------------------------------

keys = st.sampled_from([*"abc xyzé", BACKSPACE])
logs = st.lists(st.tuples(st.integers(0, 10**7), keys), max_size=80)
texts = st.text(alphabet="abc xyz", min_size=1, max_size=40)
gaps = st.lists(st.integers(30, 400), min_size=40, max_size=40)


@given(text=st.text(max_size=30), log=logs, whole=st.booleans())
def test_any_log_scores_within_bounds(text: str, log: list, whole: bool) -> None:
    result = score(replay(text, log), whole_text=whole)
    assert 0 <= result.accuracy <= 100
    assert 0 <= result.consistency <= 100
    assert result.wpm >= 0 and result.raw_wpm >= 0
    assert 0 <= result.matched_pct <= 100
    check(result, Limits(), time_limit_ms=30_000)


@given(text=texts, gaps=gaps)
def test_a_perfect_log_is_fully_accurate(text: str, gaps: list[int]) -> None:
    log, t = [], 0
    for ch, gap in zip(text, gaps, strict=False):
        log.append((t, ch))
        t += gap
    result = score(replay(text, log))
    assert result.accuracy == 100
    assert result.wpm == result.raw_wpm
    assert result.chars.correct == len(text) and result.matched_pct == 100


@given(text=texts.filter(lambda t: len(t) > 1), gaps=gaps, factor=st.integers(2, 5))
def test_wpm_scales_inversely_with_time(text: str, gaps: list[int], factor: int) -> None:
    log, t = [], 0
    for ch, gap in zip(text, gaps, strict=False):
        log.append((t, ch))
        t += gap
    base = score(replay(text, log))
    slow = score(replay(text, [(t * factor, k) for t, k in log]))
    assert slow.wpm == pytest.approx(base.wpm / factor, abs=0.01)
    assert slow.duration_ms == base.duration_ms * factor


@given(text=texts, at=st.integers(0, 39), wrong=st.sampled_from("qw"))
def test_a_fixed_error_gives_back_the_text(text: str, at: int, wrong: str) -> None:
    at %= len(text)
    log = [*steady(text[:at]), (at * 100, wrong), (at * 100 + 50, BACKSPACE)]
    log += [(at * 100 + 100 + i * 100, ch) for i, ch in enumerate(text[at:])]
    result = score(replay(text, log))
    assert result.chars.correct == len(text) and result.matched_pct == 100
    assert result.accuracy == pytest.approx(len(text) / (len(text) + 1) * 100, abs=0.01)
    assert result.backspaces == 1
