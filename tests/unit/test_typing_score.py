"""``score`` against the implementation it replaced: identical results on any log.

``old_score`` below is the previous one-pass ``score`` (with its two-pass
per-second series and generator-based standard deviation) kept verbatim as
the reference; the property tests replay random logs, backspaces, time
going backwards and long pauses included, and require equal ``Result``s.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from typogram.typing import (
    BACKSPACE,
    MAX_SERIES_SECONDS,
    BigramStat,
    Chars,
    KeyStat,
    Replay,
    Result,
    Second,
    Stroke,
    _r,
    _wpm,
    replay,
    score,
)


def _old_pstdev(values: Sequence[float], mean: float) -> float:
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


def _old_consistency(series: Iterable[float]) -> float:
    values = list(series)
    if not values:
        return 0.0
    mean = statistics.fmean(values)
    if mean <= 0:
        return 0.0
    c = _old_pstdev(values, mean) / mean
    return 100 * (1 - math.tanh(c + c**3 / 3 + c**5 / 5))


def _old_seconds(strokes: tuple[Stroke, ...], start: int, end: int) -> tuple[Second, ...]:
    span = max(0, end - start)
    count = span // 1000 + 1
    if count > MAX_SERIES_SECONDS:
        return ()
    raw, net, errors = [0] * count, [0] * count, [0] * count
    last = count - 1
    for stroke in strokes:
        if stroke.kind == "backspace":
            continue
        offset = stroke.t - start
        bucket = 0 if offset < 0 else min(last, offset // 1000)
        raw[bucket] += 1
        net[bucket] += stroke.kind == "correct"
        errors[bucket] += stroke.kind != "correct"
    lengths = [1000] * count
    lengths[-1] = span - 1000 * (count - 1)
    if lengths[-1] <= 0 and count == 1:
        return ()  # every keystroke at one instant: no pace at all
    if lengths[-1] < 500 and count > 1:
        # Too short to have a pace of its own; its keys fold into the second before.
        raw[-2] += raw[-1]
        net[-2] += net[-1]
        errors[-2] += errors[-1]
        count -= 1
        lengths = [1000] * (count - 1) + [1000 + lengths[-1]]
    return tuple(
        Second(_r(_wpm(raw[i], lengths[i])), _r(_wpm(net[i], lengths[i])), errors[i])
        for i in range(count)
    )


def old_score(replay: Replay, *, whole_text: bool = True) -> Result:
    """Metrics of one replay. ``whole_text=False`` for a time test (a prefix is the target)."""
    strokes = replay.strokes
    typed, text = replay.typed, replay.text
    correct_now = [i for i, ch in enumerate(typed) if i < len(text) and ch == text[i]]
    chars = Chars(
        correct=len(correct_now),
        incorrect=min(len(typed), len(text)) - len(correct_now),
        extra=max(0, len(typed) - len(text)),
        missed=max(0, len(text) - len(typed)) if whole_text else 0,
    )
    start = strokes[0].t if strokes else 0
    keys: dict[str, KeyStat] = {}
    bigrams: dict[str, BigramStat] = {}
    confusions: dict[str, dict[str, int]] = {}
    intervals: list[int] = []
    typing = correct_strokes = backwards = 0
    last_any = start
    previous: Stroke | None = None
    # One pass; a stat object is made only the first time its key or pair shows up.
    for stroke in strokes:
        t, kind, expected = stroke.t, stroke.kind, stroke.expected
        last_any = max(last_any, t)
        gap = -1
        if previous is not None:
            gap = t - previous.t
            intervals.append(gap)
            backwards += gap < 0
        if kind != "backspace":
            typing += 1
            correct_strokes += kind == "correct"
        if expected is not None:
            stat = keys.get(expected)
            if stat is None:
                stat = keys[expected] = KeyStat()
            if kind == "incorrect":
                stat.misses += 1
                pressed = confusions.get(expected)
                if pressed is None:
                    pressed = confusions[expected] = {}
                pressed[stroke.key] = pressed.get(stroke.key, 0) + 1
            else:
                stat.hits += 1
                # ``gap`` < 0: the first keystroke, or time went backwards.
                if gap >= 0 and previous is not None:
                    stat.total_ms += gap
                    stat.samples += 1
                    if previous.kind == "correct":
                        name = previous.key + stroke.key
                        pair = bigrams.get(name)
                        if pair is None:
                            pair = bigrams[name] = BigramStat()
                        pair.total_ms += gap
                        pair.samples += 1
        previous = stroke
    written_at = replay.written_at
    end = max((written_at[i] for i in correct_now), default=last_any)
    duration = max(0, end - start)

    if whole_text:
        target = max(len(text), len(typed))
        matched = len(correct_now) / target * 100 if target else 0.0
    else:
        # Only up to the last correct character: the clock may have cut a fix short.
        cut = correct_now[-1] + 1 if correct_now else 0
        matched = len(correct_now) / cut * 100 if cut else 0.0
    per_second = _old_seconds(strokes, start, last_any)
    return Result(
        wpm=_r(_wpm(chars.correct, duration)),
        raw_wpm=_r(_wpm(typing, duration)),
        accuracy=_r(correct_strokes / typing * 100 if typing else 0.0),
        consistency=_r(_old_consistency(s.raw for s in per_second)),
        duration_ms=duration,
        chars=chars,
        keystrokes=typing,
        backspaces=len(strokes) - typing,
        per_second=per_second,
        whole_text=whole_text,
        matched_pct=_r(matched),
        span_ms=max(0, last_any - start),
        backwards=backwards,
        intervals=len(intervals),
        interval_mean_ms=_r(statistics.fmean(intervals)) if intervals else 0.0,
        interval_stdev_ms=_r(_old_pstdev(intervals, statistics.fmean(intervals)))
        if intervals
        else 0.0,
        keys=keys,
        bigrams=bigrams,
        confusions=confusions,
    )


ALPHABET = "abc de"
keys_ = st.one_of(st.sampled_from(list(ALPHABET)), st.just(BACKSPACE), st.sampled_from("xyZ"))


@st.composite
def logs(draw: st.DrawFn, max_gap: int = 400) -> tuple[str, list[tuple[int, str]]]:
    text = draw(st.text(alphabet=ALPHABET, min_size=0, max_size=40))
    entries = draw(
        st.lists(
            st.tuples(st.integers(min_value=-max_gap // 4, max_value=max_gap), keys_), max_size=80
        )
    )
    t = draw(st.integers(min_value=0, max_value=10_000))
    log = []
    for gap, key in entries:
        t += gap  # may go backwards
        log.append((t, key))
    return text, log


@settings(max_examples=600)
@given(logs(), st.booleans())
def test_same_result_as_before(case: tuple[str, list[tuple[int, str]]], whole: bool) -> None:
    text, log = case
    played = replay(text, log)
    assert score(played, whole_text=whole) == old_score(played, whole_text=whole)


@settings(max_examples=200)
@given(logs(max_gap=4_000), st.booleans())
def test_same_result_with_long_pauses(case: tuple[str, list[tuple[int, str]]], whole: bool) -> None:
    text, log = case
    played = replay(text, log)
    assert score(played, whole_text=whole) == old_score(played, whole_text=whole)


@given(st.integers(min_value=MAX_SERIES_SECONDS - 2, max_value=MAX_SERIES_SECONDS + 2))
def test_same_result_around_the_series_limit(seconds: int) -> None:
    log = [(0, "a"), (500, "b"), (seconds * 1000 - 1, "c"), (seconds * 1000 + 400, BACKSPACE)]
    played = replay("abc", log)
    new = score(played)
    assert new == old_score(played)
    assert (new.per_second == ()) == (seconds + 1 > MAX_SERIES_SECONDS)


def test_a_typical_test_matches() -> None:
    text = "the quick brown fox jumps over the lazy dog"
    t, log = 0, []
    for i, ch in enumerate(text):
        log.append((t, "x" if i % 11 == 5 else ch))
        if i % 11 == 5:
            log.append((t + 60, BACKSPACE))
            log.append((t + 140, ch))
            t += 140
        t += 90 + (i * 37) % 80
    played = replay(text, log)
    new = score(played)
    assert new == old_score(played)
    assert new.per_second and new.keys and new.bigrams and new.confusions
