"""``typing.score`` against a plain reference of the definitions, on generated logs.

``reference`` below re-derives every metric from DESIGN.md ("Typing
metrics") the slow and obvious way — the buffer rebuilt at each step, words
found with ``str.split``, each second's keystrokes filtered by time — sharing
nothing with ``typogram.typing`` but the log format. The properties replay
random logs (Backspaces before the first character, corrections, time going
backwards, long pauses, keys after the end) in words and time mode and
require the same numbers, so neither can drift from the definitions alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from typogram.typing import BACKSPACE, MAX_SERIES_SECONDS, replay, score


def _half_up(value: Fraction) -> float:
    """Two decimals, ties away from zero (Monkeytype's rounding), exactly."""
    return math.floor(value * 100 + Fraction(1, 2)) / 100


@dataclass(frozen=True)
class Expected:
    wpm: float
    raw_wpm: float
    accuracy: float
    consistency: float
    duration_ms: int
    raw_series: list[int]
    words: int


def _buffer_after(log: list[tuple[int, str]]) -> str:
    typed = ""
    for _, key in log:
        typed = typed[:-1] if key == BACKSPACE else typed + key
    return typed


def reference(text: str, log: list[tuple[int, str]], seconds: int | None) -> Expected:
    chars_at = [i for i, (_, key) in enumerate(log) if key != BACKSPACE]
    if not chars_at:
        start, counted = 0, []
    else:
        first = chars_at[0]
        start = log[first][0]
        rest = log[first:]
        if seconds is not None:
            end = start + seconds * 1000
            counted = []
            for entry in rest:  # a prefix: the clock stops at the first key past the end
                if entry[0] > end:
                    break
                counted.append(entry)
        else:
            counted = rest
            for n in range(1, len(rest) + 1):  # the keystroke that completes the text
                if _buffer_after(rest[:n]) == text and rest[n - 1][1] != BACKSPACE:
                    counted = rest[:n]
                    break
    if seconds is not None:
        duration = seconds * 1000
    else:
        duration = max(0, counted[-1][0] - start) if counted else 0
    typed = _buffer_after(counted)

    # WPM: characters of the words typed exactly, each with its space.
    words = text.split(" ")
    credited, whole_words, at = 0, 0, 0
    for index, word in enumerate(words):
        last = index == len(words) - 1
        target = word if last else word + " "
        piece = typed[at:] if last else typed[at : at + len(target)]
        if not target:  # a text ending in a space has nothing after it to type
            break
        if piece == target:
            credited += len(target)
            whole_words += 1
        elif seconds is not None and len(typed) < at + len(target):
            mine = typed[at:]
            if mine and target.startswith(mine):
                credited += len(mine)
        if len(typed) < at + len(target):
            break
        at += len(target)
    minutes = Fraction(duration, 60_000)
    wpm = Fraction(credited, 5) / minutes if duration else Fraction(0)
    raw = Fraction(len(typed), 5) / minutes if duration else Fraction(0)

    presses = [key for _, key in counted if key != BACKSPACE]
    right = 0
    buffer = ""
    for _, key in counted:
        if key == BACKSPACE:
            buffer = buffer[:-1]
            continue
        right += len(buffer) < len(text) and text[len(buffer)] == key
        buffer += key
    accuracy = Fraction(right * 100, len(presses)) if presses else Fraction(0)

    # Seconds (k-1, k]; a final part-second of >= 500 ms scaled, a shorter one dropped.
    if seconds is not None:
        bounds = [(k - 1) * 1000 for k in range(1, seconds + 1)], [1000] * seconds
    else:
        full = duration // 1000
        lengths = [1000] * full
        if duration % 1000 >= 500:
            lengths.append(duration % 1000)
        bounds = [k * 1000 for k in range(len(lengths))], lengths
    series: list[int] = []
    if len(bounds[1]) <= MAX_SERIES_SECONDS:
        for begin, length in zip(*bounds, strict=True):
            n = 0
            for t, key in counted:
                offset = t - start
                inside = begin < offset <= begin + length or (begin == 0 and offset <= 0)
                n += key != BACKSPACE and inside
            series.append(math.floor(n / 5 / (length / 60_000) + 0.5))
    consistency = 0.0
    if series and sum(series) > 0:
        mean = sum(series) / len(series)
        c = math.sqrt(sum((v - mean) ** 2 for v in series) / len(series)) / mean
        consistency = 100 * (1 - math.tanh(c + c**3 / 3 + c**5 / 5))
    return Expected(
        _half_up(wpm),
        _half_up(raw),
        _half_up(accuracy),
        round(consistency, 2),
        duration,
        series,
        whole_words,
    )


ALPHABET = "ab cd"
keys = st.one_of(st.sampled_from(list(ALPHABET)), st.just(BACKSPACE), st.sampled_from("xZ"))


@st.composite
def logs(draw: st.DrawFn, max_gap: int = 700) -> tuple[str, list[tuple[int, str]]]:
    text = draw(st.text(alphabet=ALPHABET, min_size=1, max_size=30))
    entries = draw(st.lists(st.tuples(st.integers(-max_gap // 8, max_gap), keys), max_size=60))
    t = draw(st.integers(0, 5_000))
    log = []
    for gap, key in entries:
        t += gap  # may go backwards
        log.append((t, key))
    return text, log


def _same(text: str, log: list[tuple[int, str]], seconds: int | None) -> None:
    got = score(replay(text, log), seconds=seconds)
    want = reference(text, log, seconds)
    assert (got.wpm, got.raw_wpm, got.accuracy, got.duration_ms) == (
        want.wpm,
        want.raw_wpm,
        want.accuracy,
        want.duration_ms,
    )
    assert [s.raw for s in got.per_second] == want.raw_series
    assert got.consistency == want.consistency
    assert got.words == want.words


@settings(max_examples=700)
@given(logs())
def test_words_tests_agree_with_the_reference(case: tuple[str, list[tuple[int, str]]]) -> None:
    _same(*case, None)


@settings(max_examples=700)
@given(logs(), st.integers(1, 8))
def test_time_tests_agree_with_the_reference(
    case: tuple[str, list[tuple[int, str]]], seconds: int
) -> None:
    _same(*case, seconds)


@settings(max_examples=150)
@given(logs(max_gap=4_000), st.sampled_from([None, 3, 15]))
def test_long_pauses_agree_with_the_reference(
    case: tuple[str, list[tuple[int, str]]], seconds: int | None
) -> None:
    _same(*case, seconds)


def test_a_corrected_test_with_a_backspace_first() -> None:
    text = "the quick brown fox jumps over the lazy dog"
    t, log = 0, [(0, BACKSPACE)]
    for i, ch in enumerate(text):
        t += 90 + (i * 37) % 80
        log.append((t, "x" if i % 11 == 5 else ch))
        if i % 11 == 5:
            log += [(t + 60, BACKSPACE), (t + 140, ch)]
            t += 140
    log.append((t + 100, "!"))  # after the text was complete: not counted
    _same(text, log, None)
    _same(text, log, 2)
    result = score(replay(text, log))
    assert result.chars.extra == 0 and result.wpm == result.raw_wpm
