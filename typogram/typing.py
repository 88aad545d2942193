"""Typing metrics: replay a keystroke log against a text, score it, judge it.

Pure: no I/O, no clock, no randomness. Solo tests, races and challenges all
call ``replay(text, log) -> Replay``, ``score(replay) -> Result`` and
``check(result, limits) -> Verdict``, so a number means the same everywhere.

Rules (DESIGN.md, "Typing metrics"; the conventions typists know):

1. A log is a sequence of ``(t_ms, key)``; ``t_ms`` an integer, ``key`` one
   character or ``"Backspace"``. Anything else raises ``LogError`` (garbage,
   a 400), never a verdict.
2. Replay keeps a typed buffer. A character goes to the buffer's end: it is
   *correct* when the text holds that character at that position,
   *incorrect* when it holds another, *extra* past the text's end.
   Backspace removes the buffer's last character (nothing when empty) and is
   not a keystroke for accuracy.
3. Duration runs from the first keystroke to the last keystroke that wrote a
   character still correct in the final buffer.
4. WPM = correct characters in the final buffer (spaces included) / 5 per
   minute of duration; raw WPM = every character keystroke / 5 per minute.
5. Accuracy = correct keystrokes / character keystrokes * 100: a corrected
   error still counts against it.
6. Consistency = 100 * (1 - tanh(c + c³/3 + c⁵/5)), c = population stdev /
   mean of raw WPM per second (Monkeytype's curve). Seconds count from the
   first keystroke; a final partial second under half a second folds into
   the second before it (one key in 50 ms is not a 240-WPM second), a longer
   one is scaled up to a full second. A log spanning more than
   ``MAX_SERIES_SECONDS`` gets no series (and consistency 0).
7. Chars: correct, incorrect (a wrong character left in the buffer), extra
   (past the text's end) and missed (text never typed; counted only when the
   whole text is the target — a time test's text is longer than anyone types).
8. ``check`` answers ``accept``, ``flag`` (possible but suspicious: stored,
   kept off the boards) or ``reject`` (impossible or not a real attempt): time
   going backwards, raw WPM over the cap, intervals too uniform for a hand,
   text not reproduced, a time test that ran over its clock. In a time test
   whatever follows the last correct character is ignored by the
   reproduction check: the clock cut the typist off mid-correction.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal, NamedTuple

BACKSPACE = "Backspace"
MS_PER_MINUTE = 60_000
# A per-second series longer than this is not a typing test; it is left empty.
MAX_SERIES_SECONDS = 3_600

Kind = Literal["correct", "incorrect", "extra", "backspace"]
Action = Literal["accept", "flag", "reject"]


class LogError(ValueError):
    """The log is not a keystroke log at all (wrong shapes or keys)."""


class Stroke(NamedTuple):
    """One keystroke as replay saw it: ``expected`` is the text's character there.

    A named tuple, not a frozen dataclass: replay makes one per keystroke and
    a tuple is built several times faster.
    """

    t: int
    key: str
    kind: Kind
    expected: str | None


@dataclass(frozen=True, slots=True)
class Replay:
    text: str
    typed: str
    strokes: tuple[Stroke, ...]
    # When each character of ``typed`` was written (same length as ``typed``).
    written_at: tuple[int, ...]


def replay(text: str, keystrokes: Iterable[tuple[int, str] | list[Any]]) -> Replay:
    """Run the log against ``text``; raises ``LogError`` on a malformed entry.

    One pass, O(len(log)); the only allocation per keystroke is its ``Stroke``
    (built by ``tuple.__new__``: the generated ``Stroke.__new__`` is a Python call).
    """
    buffer: list[str] = []
    times: list[int] = []
    strokes: list[Stroke] = []
    add, write, stamp = strokes.append, buffer.append, times.append
    make = tuple.__new__
    size = len(text)
    for index, entry in enumerate(keystrokes):
        if len(entry) != 2:
            raise LogError(f"keystroke {index} is not a [t_ms, key] pair")
        t, key = entry[0], entry[1]
        if not isinstance(t, int) or isinstance(t, bool) or not isinstance(key, str):
            raise LogError(f"keystroke {index} must be [integer, string]")
        if key == BACKSPACE:
            if buffer:
                buffer.pop()
                times.pop()
            add(make(Stroke, (t, key, "backspace", None)))
            continue
        if len(key) != 1:
            raise LogError(f"keystroke {index}: key must be one character or {BACKSPACE!r}")
        position = len(buffer)
        if position < size:
            expected = text[position]
            add(make(Stroke, (t, key, "correct" if key == expected else "incorrect", expected)))
        else:
            add(make(Stroke, (t, key, "extra", None)))
        write(key)
        stamp(t)
    return Replay(text, "".join(buffer), tuple(strokes), tuple(times))


@dataclass(frozen=True, slots=True)
class Chars:
    correct: int
    incorrect: int
    extra: int
    missed: int


@dataclass(frozen=True, slots=True)
class Second:
    """One second of the test: raw and net WPM at that second's pace, errors made."""

    raw: float
    wpm: float
    errors: int


@dataclass(slots=True)
class KeyStat:
    """Per expected character: hits, misses and the total latency of its hits."""

    hits: int = 0
    misses: int = 0
    total_ms: int = 0
    samples: int = 0


@dataclass(slots=True)
class BigramStat:
    total_ms: int = 0
    samples: int = 0


@dataclass(frozen=True, slots=True)
class Result:
    wpm: float
    raw_wpm: float
    accuracy: float
    consistency: float
    duration_ms: int
    chars: Chars
    keystrokes: int  # character keystrokes (backspaces not included)
    backspaces: int
    per_second: tuple[Second, ...]
    # Reproduction: does the final buffer give back the target text?
    whole_text: bool
    matched_pct: float
    # Timing, for the plausibility checks.
    span_ms: int  # first to last keystroke of any kind
    backwards: int  # intervals where time went backwards
    intervals: int
    interval_mean_ms: float
    interval_stdev_ms: float
    # For analytics: per expected key, per correct bigram, "pressed instead".
    keys: Mapping[str, KeyStat] = field(default_factory=dict)
    bigrams: Mapping[str, BigramStat] = field(default_factory=dict)
    confusions: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


def _wpm(chars: int, duration_ms: int) -> float:
    return chars / 5 * MS_PER_MINUTE / duration_ms if duration_ms > 0 else 0.0


def _pstdev(values: Sequence[float], mean: float) -> float:
    """Population standard deviation in floats (``statistics.pstdev`` works in exact
    fractions: ~100x slower, and the difference vanishes in the 2-decimal rounding)."""
    return math.sqrt(math.fsum([(v - mean) ** 2 for v in values]) / len(values))


def consistency_of(series: Iterable[float]) -> float:
    """Monkeytype's curve over the coefficient of variation; 0 for an empty or idle series."""
    values = list(series)
    if not values:
        return 0.0
    mean = statistics.fmean(values)
    if mean <= 0:
        return 0.0
    c = _pstdev(values, mean) / mean
    return 100 * (1 - math.tanh(c + c**3 / 3 + c**5 / 5))


def _per_full_second(chars: int) -> float:
    return round(_wpm(chars, 1000), 2)


# ``_r(_wpm(n, 1000))`` for the counts a full second of typing holds (a table: the
# series is built for every result, mostly from these few values).
_FULL_SECOND = tuple(_per_full_second(n) for n in range(64))


def _seconds(raw: list[int], net: list[int], errors: list[int], span: int) -> tuple[Second, ...]:
    """The per-second series from per-second counts (rule 6); ``span`` = last - first ms.

    The lists hold one slot per second from the first keystroke; ``score``
    makes them ``span // 1000 + 1`` long.
    """
    count = span // 1000 + 1
    if count > MAX_SERIES_SECONDS:
        return ()
    last = span - 1000 * (count - 1)
    if last <= 0 and count == 1:
        return ()  # every keystroke at one instant: no pace at all
    if last < 500 and count > 1:
        # Too short to have a pace of its own; its keys fold into the second before.
        raw[-2] += raw[-1]
        net[-2] += net[-1]
        errors[-2] += errors[-1]
        count -= 1
        last += 1000
    table, size = _FULL_SECOND, len(_FULL_SECOND)
    series = [
        Second(
            table[r] if r < size else _per_full_second(r),
            table[n] if n < size else _per_full_second(n),
            e,
        )
        for r, n, e in zip(raw[: count - 1], net, errors, strict=False)
    ]
    series.append(
        Second(_r(_wpm(raw[count - 1], last)), _r(_wpm(net[count - 1], last)), errors[count - 1])
    )
    return tuple(series)


def _r(value: float) -> float:
    return round(value, 2)


def score(replay: Replay, *, whole_text: bool = True) -> Result:
    """Metrics of one replay. ``whole_text=False`` for a time test (a prefix is the target)."""
    strokes = replay.strokes
    typed, text = replay.typed, replay.text
    correct_now = [i for i, (ch, want) in enumerate(zip(typed, text, strict=False)) if ch == want]
    chars = Chars(
        correct=len(correct_now),
        incorrect=min(len(typed), len(text)) - len(correct_now),
        extra=max(0, len(typed) - len(text)),
        missed=max(0, len(text) - len(typed)) if whole_text else 0,
    )
    times = [stroke[0] for stroke in strokes]
    start = times[0] if times else 0
    last_any = max(times, default=0)
    # Gap to the keystroke before; -1 for the first (it has none).
    intervals = [b - a for a, b in pairwise(times)]
    gaps = [-1, *intervals] if times else []
    backwards = len([gap for gap in intervals if gap < 0])
    span = max(0, last_any - start)
    seconds = span // 1000 + 1
    # Character keystrokes per second from the first keystroke (rule 6); past
    # MAX_SERIES_SECONDS there is no series, so no counting.
    counting = seconds <= MAX_SERIES_SECONDS
    raw_s = [0] * seconds if counting else []
    net_s = raw_s.copy()
    err_s = raw_s.copy()
    keys: dict[str, KeyStat] = {}
    bigrams: dict[str, BigramStat] = {}
    confusions: dict[str, dict[str, int]] = {}
    typing = correct_strokes = 0
    previous_key = previous_kind = ""
    # One pass; a stat object is made only the first time its key or pair shows up.
    for (t, key, kind, expected), gap in zip(strokes, gaps, strict=True):
        if kind != "backspace":
            typing += 1
            if counting:
                bucket = (t - start) // 1000 if t > start else 0
                raw_s[bucket] += 1
                if kind == "correct":
                    correct_strokes += 1
                    net_s[bucket] += 1
                else:
                    err_s[bucket] += 1
            elif kind == "correct":
                correct_strokes += 1
        if expected is not None:
            stat = keys.get(expected)
            if stat is None:
                stat = keys[expected] = KeyStat()
            if kind == "incorrect":
                stat.misses += 1
                pressed = confusions.get(expected)
                if pressed is None:
                    pressed = confusions[expected] = {}
                pressed[key] = pressed.get(key, 0) + 1
            else:
                stat.hits += 1
                # ``gap`` < 0: the first keystroke, or time went backwards.
                if gap >= 0:
                    stat.total_ms += gap
                    stat.samples += 1
                    if previous_kind == "correct":
                        name = previous_key + key
                        pair = bigrams.get(name)
                        if pair is None:
                            pair = bigrams[name] = BigramStat()
                        pair.total_ms += gap
                        pair.samples += 1
        previous_key = key
        previous_kind = kind
    written_at = replay.written_at
    end = max(map(written_at.__getitem__, correct_now), default=last_any)
    duration = max(0, end - start)

    if whole_text:
        target = max(len(text), len(typed))
        matched = len(correct_now) / target * 100 if target else 0.0
    else:
        # Only up to the last correct character: the clock may have cut a fix short.
        cut = correct_now[-1] + 1 if correct_now else 0
        matched = len(correct_now) / cut * 100 if cut else 0.0
    per_second = _seconds(raw_s, net_s, err_s, span)
    interval_mean = statistics.fmean(intervals) if intervals else 0.0
    return Result(
        wpm=_r(_wpm(chars.correct, duration)),
        raw_wpm=_r(_wpm(typing, duration)),
        accuracy=_r(correct_strokes / typing * 100 if typing else 0.0),
        consistency=_r(consistency_of([s.raw for s in per_second])),
        duration_ms=duration,
        chars=chars,
        keystrokes=typing,
        backspaces=len(strokes) - typing,
        per_second=per_second,
        whole_text=whole_text,
        matched_pct=_r(matched),
        span_ms=span,
        backwards=backwards,
        intervals=len(intervals),
        interval_mean_ms=_r(interval_mean) if intervals else 0.0,
        interval_stdev_ms=_r(_pstdev(intervals, interval_mean)) if intervals else 0.0,
        keys=keys,
        bigrams=bigrams,
        confusions=confusions,
    )


@dataclass(frozen=True, slots=True)
class Limits:
    """Plausibility thresholds; ``rest`` builds them from the ``typing_*`` settings."""

    wpm_cap: float = 300.0  # raw WPM above this: reject
    flag_wpm: float = 250.0  # raw WPM above this: flag
    min_interval_stdev_ms: float = 4.0  # intervals steadier than this: reject (a script)
    flag_interval_stdev_ms: float = 12.0  # steadier than this: flag
    min_intervals: int = 20  # the timing checks need this many intervals to mean anything
    min_matched_pct: float = 100.0  # reproduction: share of the target typed right
    min_keystrokes: int = 2
    time_grace_ms: int = 2_000  # a time test may run this much past its clock


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reasons: tuple[Reason, ...] = ()

    @property
    def message(self) -> str:
        return "; ".join(reason.message for reason in self.reasons)


def check(result: Result, limits: Limits, *, time_limit_ms: int | None = None) -> Verdict:
    """Judge a scored result. Every failing rule is listed; the worst one decides."""
    rejects: list[Reason] = []
    flags: list[Reason] = []
    if result.keystrokes < limits.min_keystrokes or result.duration_ms <= 0:
        rejects.append(Reason("too_short", "the log is too short to score"))
    if result.backwards:
        rejects.append(
            Reason("time_backwards", f"time goes backwards {result.backwards} time(s) in the log")
        )
    if result.raw_wpm > limits.wpm_cap:
        rejects.append(
            Reason("wpm_over_cap", f"{result.raw_wpm:.0f} WPM is over the cap {limits.wpm_cap:.0f}")
        )
    elif result.raw_wpm > limits.flag_wpm:
        flags.append(Reason("wpm_high", f"{result.raw_wpm:.0f} WPM is exceptionally fast"))
    if result.intervals >= limits.min_intervals:
        stdev = result.interval_stdev_ms
        if stdev < limits.min_interval_stdev_ms:
            rejects.append(
                Reason("robotic_timing", f"keystroke intervals vary by {stdev:.1f} ms only")
            )
        elif stdev < limits.flag_interval_stdev_ms:
            flags.append(Reason("uniform_timing", f"keystroke intervals vary by {stdev:.1f} ms"))
    if result.matched_pct < limits.min_matched_pct:
        what = "the text" if result.whole_text else "the typed part of the text"
        rejects.append(
            Reason(
                "text_not_reproduced",
                f"the log reproduces {result.matched_pct:.1f}% of {what}",
            )
        )
    if time_limit_ms is not None and result.span_ms > time_limit_ms + limits.time_grace_ms:
        rejects.append(
            Reason("over_time", f"the log runs {result.span_ms} ms, the test {time_limit_ms} ms")
        )
    if rejects:
        return Verdict("reject", tuple(rejects + flags))
    if flags:
        return Verdict("flag", tuple(flags))
    return Verdict("accept")


def analytics(result: Result) -> dict[str, Any]:
    """The per-key, bigram and confusion data as plain JSON-ready dicts (see docs/events.md)."""
    return {
        "keys": {
            key: {"hits": s.hits, "misses": s.misses, "total_ms": s.total_ms, "samples": s.samples}
            for key, s in sorted(result.keys.items())
        },
        "bigrams": {
            pair: {"total_ms": s.total_ms, "samples": s.samples}
            for pair, s in sorted(result.bigrams.items())
        },
        "confusions": {key: dict(pressed) for key, pressed in sorted(result.confusions.items())},
    }
