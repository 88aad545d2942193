"""``typogram.typing``: replay and score by the definitions in DESIGN.md ("Typing metrics").

Hand-computed examples of each rule; ``test_typing_reference`` checks the
same definitions against a plain reference on generated logs.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from typogram.typing import (
    BACKSPACE,
    LogError,
    analytics,
    consistency_of,
    replay,
    score,
    word_credit,
)


def steady(text: str, interval: int = 100, start: int = 0) -> list[tuple[int, str]]:
    return [(start + i * interval, ch) for i, ch in enumerate(text)]


# -- hand-computed examples ----------------------------------------------------


def test_perfect_log() -> None:
    result = score(replay("ab cd", steady("ab cd")))
    # 5 characters of correct words ("ab " and "cd") in 400 ms: 150 WPM.
    assert result.wpm == result.raw_wpm == 150.0
    assert result.accuracy == 100.0 and result.words == 2
    assert result.duration_ms == 400
    assert result.chars.correct == 5 and result.chars.incorrect == result.chars.missed == 0
    # 400 ms: no whole second and a part-second under 500 ms, so no series.
    assert result.per_second == () and result.consistency == 0.0


def test_a_corrected_error_counts_against_accuracy_not_wpm_or_raw() -> None:
    log = [(0, "t"), (100, "h"), (200, "r"), (300, BACKSPACE), (400, "e")]
    log += [(500, " "), (600, "c"), (700, "a"), (800, "t")]
    result = score(replay("the cat", log))
    assert result.wpm == 105.0  # 7 characters / 5 in 0.8 s
    # Raw WPM counts the final input, not the deleted keystroke (Monkeytype's meaning).
    assert result.raw_wpm == 105.0
    assert result.accuracy == 87.5  # 7 of 8 keystrokes
    assert result.backspaces == 1 and result.keystrokes == 8
    assert dict(result.confusions) == {"e": {"r": 1}}
    assert result.keys["e"].hits == 1 and result.keys["e"].misses == 1
    # The bigram after a correction is not a clean transition.
    assert "he" not in result.bigrams and result.bigrams["th"].samples == 1


def test_only_correctly_typed_words_count_for_wpm() -> None:
    # "tha cat" left uncorrected (a lenient words test): "tha " earns nothing, "cat" 3.
    result = score(replay("the cat", steady("tha cat")))
    assert result.chars.correct == 6  # correct letters inside the wrong word still show here
    assert result.wpm == pytest.approx(3 / 5 / (0.6 / 60), abs=0.01)
    assert result.raw_wpm == pytest.approx(7 / 5 / (0.6 / 60), abs=0.01)
    assert result.words == 1
    assert word_credit("tha cat", "the cat", partial=False) == (3, 1)
    assert word_credit("the ca", "the cat", partial=True) == (6, 1)
    assert word_credit("the cx", "the cat", partial=True) == (4, 1)
    assert word_credit("the cats", "the cat", partial=False) == (4, 1)  # extra: "cat" is not done


def test_a_backspace_before_the_first_character_does_not_start_the_clock() -> None:
    log = [(0, BACKSPACE), *steady("ab cd", start=5_000)]
    result = score(replay("ab cd", log))
    assert result.start_ms == 5_000 and result.duration_ms == 400 and result.wpm == 150.0
    assert result.backspaces == 0 and result.first == 1


def test_a_words_test_ends_with_the_keystroke_that_completes_the_text() -> None:
    log = [*steady("abc"), (5_000, "x"), (5_100, BACKSPACE)]
    result = score(replay("abc", log))
    assert result.duration_ms == 200 and result.completed_ms == 200
    assert result.keystrokes == 3 and result.chars.extra == 0 and result.counted == 3


def test_a_time_test_lasts_its_seconds_whenever_the_typist_stops() -> None:
    text = "ab cd ef gh ij kl mn op"
    two = score(replay(text, [(0, "a"), (100, "b")]), seconds=60)
    # The attack of the issue: 2 keystrokes 100 ms apart scored 240 WPM over their span.
    assert two.duration_ms == 60_000
    assert two.wpm == pytest.approx(2 / 5, abs=0.01) and two.raw_wpm == two.wpm
    assert len(two.per_second) == 60 and [s.raw for s in two.per_second[:2]] == [24, 0]
    full = score(replay(text, steady(text, 150)), seconds=3)
    # Keystrokes after 3 s count for nothing: 21 of them fit in (0, 3000].
    assert full.keystrokes == 21 and full.raw_wpm == pytest.approx(21 / 5 / 0.05, abs=0.01)
    assert full.typed_ms == 3_000 and full.duration_ms == 3_000


def test_the_word_cut_by_the_clock_counts_for_its_correct_part() -> None:
    result = score(replay("the cat sat", steady("the ca", 200)), seconds=2)
    assert result.wpm == pytest.approx(6 / 5 / (2 / 60), abs=0.01)
    assert result.words == 1 and result.chars.missed == 0


def test_per_second_series_by_monkeytypes_rules() -> None:
    # 15 keys 100 ms apart: 1,400 ms, one second and a part-second under 0.5 s (dropped).
    short = score(replay("a" * 15, steady("a" * 15)))
    assert [s.raw for s in short.per_second] == [132]  # 11 keys in (0, 1000], x 12
    # 17 keys: 1,600 ms, the 600 ms part-second is scaled to a full one: 6 keys -> 120.
    longer = score(replay("a" * 17, steady("a" * 17)))
    assert [s.raw for s in longer.per_second] == [132, 120]
    # A key exactly on a second's boundary belongs to that second: (k-1, k].
    edge = score(replay("abc", [(0, "a"), (1000, "b"), (2000, "c")]))
    assert [s.raw for s in edge.per_second] == [24, 12]
    # Idle seconds of a time test are 0s, and count.
    idle = score(replay("abcdef", [(0, "a"), (2500, "b")]), seconds=4)
    assert [s.raw for s in idle.per_second] == [12, 0, 12, 0]
    assert idle.consistency == pytest.approx(consistency_of([12, 0, 12, 0]), abs=0.01)


def test_consistency_matches_the_formula() -> None:
    c = 30 / 90  # pstdev([60, 120]) / mean
    expected = 100 * (1 - math.tanh(c + c**3 / 3 + c**5 / 5))
    assert consistency_of([60, 120]) == pytest.approx(expected)
    assert consistency_of([80, 80, 80]) == 100.0
    assert consistency_of([]) == 0.0
    assert consistency_of([0, 0]) == 0.0


def test_a_time_test_may_end_mid_correction() -> None:
    text = "the quick brown fox"
    clean = score(replay(text, steady("the quick brow", 100)), seconds=5)
    assert clean.matched_pct == 100.0
    # A slip and two more keys before the clock ran out: not held against the typist.
    cut = score(replay(text, steady("the quick brxwn", 100)), seconds=5)
    assert cut.matched_pct == 100.0
    # An error left far behind is.
    early = score(replay(text, steady("thx quick brown fo", 100)), seconds=5)
    assert early.matched_pct < 100.0


@pytest.mark.parametrize(
    "log", [[(0,)], [(0, "ab")], [(0, 5)], [("0", "a")], [(True, "a")], [(0, "")]]
)
def test_garbage_logs_raise(log: list) -> None:
    with pytest.raises(LogError):
        replay("abc", log)


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


@given(text=st.text(max_size=30), log=logs, seconds=st.one_of(st.none(), st.integers(1, 180)))
def test_any_log_scores_within_bounds(text: str, log: list, seconds: int | None) -> None:
    result = score(replay(text, log), seconds=seconds)
    assert 0 <= result.accuracy <= 100
    assert 0 <= result.consistency <= 100
    assert 0 <= result.wpm <= result.raw_wpm or result.duration_ms == 0
    assert 0 <= result.matched_pct <= 100
    if seconds is not None:
        assert result.duration_ms == seconds * 1000
        assert not result.per_second or len(result.per_second) == seconds


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


@given(stopped=st.integers(1, 50), seconds=st.integers(5, 60), extra=st.integers(0, 200))
def test_stopping_early_never_scores_higher(stopped: int, seconds: int, extra: int) -> None:
    """A time test typed at one pace: typing less of it never scores more."""
    text = "abc " * 100
    full = score(replay(text, steady(text, 120)), seconds=seconds)
    part = score(replay(text, steady(text[:stopped], 120)), seconds=seconds)
    assert part.wpm <= full.wpm and part.raw_wpm <= full.raw_wpm
    late = score(
        replay(text, [*steady(text[:stopped], 120), (seconds * 1000 + 1 + extra, "a")]),
        seconds=seconds,
    )
    assert late.wpm == part.wpm and late.keystrokes == part.keystrokes
