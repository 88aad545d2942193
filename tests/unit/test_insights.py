"""Weak keys and bigrams, smoothing and practice texts (typogram.insights)."""

from __future__ import annotations

import itertools
import random

from typogram.insights import (
    BigramRow,
    KeyRow,
    practice_words,
    smooth,
    trend_summary,
    weak_bigrams,
    weak_keys,
)


def test_smoothing_starts_at_the_first_mean_and_leans_to_the_past() -> None:
    assert smooth(None, 200.0) == 200.0
    assert smooth(100.0, 200.0) == 130.0


def test_weak_keys_are_missed_or_slow_and_need_samples() -> None:
    rows = [
        KeyRow("a", 50, 0, 100.0),
        KeyRow("s", 50, 0, 110.0),
        KeyRow("d", 40, 10, 100.0),  # missed one in five
        KeyRow("q", 50, 0, 200.0),  # twice as slow
        KeyRow("z", 1, 3, 900.0),  # too few to judge
    ]
    weak = weak_keys(rows)
    assert [r.key for r, _ in weak] == ["q", "d", "s"]
    assert weak_keys([]) == []


def test_weak_bigrams_are_the_slow_ones() -> None:
    rows = [BigramRow("th", 10, 90.0), BigramRow("he", 10, 100.0), BigramRow("qu", 5, 300.0)]
    rows.append(BigramRow("zx", 1, 999.0))
    assert [r.bigram for r in weak_bigrams(rows)] == ["qu"]


def test_practice_words_focus_and_repeat_with_a_seed() -> None:
    words = ["the", "quick", "quiet", "brown", "fox", "aqua", "dog", "squid"]
    first = practice_words(words, ["q"], ["ui"], 12, random.Random(7))
    assert len(first) == 12 and all("q" in w for w in first)
    assert first == practice_words(words, ["q"], ["ui"], 12, random.Random(7))
    assert all(a != b for a, b in itertools.pairwise(first))
    plain = practice_words(words, [], [], 5, random.Random(1))
    assert len(plain) == 5 and set(plain) <= set(words)
    assert practice_words([], ["q"], [], 5, random.Random(1)) == []


def test_trend_summary_compares_the_last_ten_with_the_ten_before() -> None:
    points = [{"wpm": float(i), "accuracy": 90.0, "consistency": 70.0} for i in range(20)]
    summary = trend_summary(points)
    assert summary["wpm"] == 14.5 and summary["wpm_before"] == 4.5
    assert trend_summary([])["wpm"] is None
