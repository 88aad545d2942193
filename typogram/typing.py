"""Typing metrics: replay a keystroke log against a text and score it.

Pure: no I/O, no clock, no randomness. Solo tests, races and challenges all
call ``replay(text, log) -> Replay`` and ``score(replay, ...) -> Result``, so a
number means the same everywhere; ``typogram.anticheat`` judges the result.

Rules (DESIGN.md, "Typing metrics": Monkeytype's meaning, so numbers compare;
docs/api.md lists where and why we differ):

1. A log is a sequence of ``(t_ms, key)``; ``t_ms`` an integer, ``key`` one
   character or ``"Backspace"``. Anything else raises ``LogError``, never a
   score.
2. Replay keeps a typed buffer. A character goes to the buffer's end: it is
   *correct* when the text holds that character at that position,
   *incorrect* when it holds another, *extra* past the text's end.
   Backspace removes the buffer's last character (nothing when empty) and is
   not a keystroke for accuracy.
3. The clock starts at the first *character* typed: a Backspace before it
   neither starts it nor counts (``start_ms`` fixes the start instead: a
   race's clock starts at the server's start). A words test ends with the
   keystroke that first makes the buffer equal the text (``end_ms`` fixes the
   end: when the server received a race finish); a log that never completes
   the text ends at its last keystroke. A time test lasts exactly its
   ``seconds`` from the start, whenever the typist stopped. Keystrokes after
   the end count for nothing.
4. WPM = characters of the correctly typed words, each with its space, / 5
   per minute of duration. A word counts when the buffer holds exactly it
   (and its space) at its place; in a time test the word being typed when
   the clock ran out counts for its correct part. Raw WPM = characters of
   the final buffer (correct, incorrect and extra) / 5 per minute.
5. Accuracy = correct keystrokes / character keystrokes * 100: a corrected
   error still counts against it.
6. Per second: the seconds are (k-1, k] from the start (a keystroke at the
   start belongs to the first). A time test has exactly ``seconds`` of
   them, idle ones 0; otherwise there are ``duration // 1000`` full seconds
   and a final part-second of at least 500 ms is one more, scaled to a full
   second (a shorter one is dropped). Each second's raw WPM is its
   character keystrokes (deleted ones too) / 5 per minute, rounded to a
   whole number; ``wpm`` the same for its correct keystrokes. A series
   longer than ``MAX_SERIES_SECONDS`` is left empty.
7. Consistency = 100 * (1 - tanh(c + c³/3 + c⁵/5)), c = population stdev /
   mean of the per-second raw WPM (0 for no seconds or a mean of 0).
8. Chars: correct, incorrect (a wrong character left in the buffer), extra
   (past the text's end) and missed (text never typed; counted only when the
   whole text is the target — a time test's text is longer than anyone types).
9. Reproduction (``matched_pct``): the share of the text typed right in a
   words test; in a time test, the share of the buffer typed right — errors
   within the last ``CUT_SLACK_CHARS`` characters aside, where the clock may
   have cut a correction short.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import eq
from typing import Any, Literal, NamedTuple

BACKSPACE = "Backspace"
MS_PER_MINUTE = 60_000
# A per-second series longer than this is not a typing test; it is left empty.
MAX_SERIES_SECONDS = 3_600
# A final part-second at least this long is a second of its own (rule 6).
PART_SECOND_MS = 500
# A time test's clock may cut a correction short: errors this close to the end of
# the buffer do not count against reproducing the text (rule 9).
CUT_SLACK_CHARS = 12

Kind = Literal["correct", "incorrect", "extra", "backspace"]


class LogError(ValueError):
    """The log is not a keystroke log at all; ``code`` says how (``not_a_pair``,
    ``bad_types``, ``bad_key``) and ``index`` where."""

    def __init__(self, message: str, code: str, index: int) -> None:
        super().__init__(message)
        self.code = code
        self.index = index


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
    typed: str  # the buffer after the whole log
    strokes: tuple[Stroke, ...]
    # Index of the keystroke that first made the buffer equal the text; -1 if none did.
    completed: int = -1


def replay(text: str, keystrokes: Iterable[tuple[int, str] | list[Any]]) -> Replay:
    """Run the log against ``text``; raises ``LogError`` on a malformed entry.

    One pass, O(len(log)); the only allocation per keystroke is its ``Stroke``
    (built by ``tuple.__new__``: the generated ``Stroke.__new__`` is a Python call).
    The buffer equals the text exactly when it is as long and holds no wrong
    character, so counting the wrong ones finds the completing keystroke.
    """
    buffer: list[str] = []
    strokes: list[Stroke] = []
    add, write = strokes.append, buffer.append
    make = tuple.__new__
    size = len(text)
    wrong = 0  # incorrect or extra characters in the buffer
    completed = -1
    for index, entry in enumerate(keystrokes):
        if len(entry) != 2:
            raise LogError(f"keystroke {index} is not a [t_ms, key] pair", "not_a_pair", index)
        t, key = entry[0], entry[1]
        if not isinstance(t, int) or isinstance(t, bool) or not isinstance(key, str):
            raise LogError(f"keystroke {index} must be [integer, string]", "bad_types", index)
        if key == BACKSPACE:
            if buffer:
                gone = len(buffer) - 1
                if gone >= size or buffer[gone] != text[gone]:
                    wrong -= 1
                buffer.pop()
            add(make(Stroke, (t, key, "backspace", None)))
            continue
        if len(key) != 1:
            raise LogError(
                f"keystroke {index}: key must be one character or {BACKSPACE!r}", "bad_key", index
            )
        position = len(buffer)
        if position < size:
            expected = text[position]
            if key == expected:
                add(make(Stroke, (t, key, "correct", expected)))
            else:
                wrong += 1
                add(make(Stroke, (t, key, "incorrect", expected)))
        else:
            wrong += 1
            add(make(Stroke, (t, key, "extra", None)))
        write(key)
        if completed < 0 and wrong == 0 and position + 1 == size:
            completed = index
    return Replay(text, "".join(buffer), tuple(strokes), completed)


@dataclass(frozen=True, slots=True)
class Chars:
    correct: int
    incorrect: int
    extra: int
    missed: int


@dataclass(frozen=True, slots=True)
class Second:
    """One second of the test: raw and correct WPM at that second's pace (whole
    numbers), and the wrong keystrokes in it."""

    raw: int
    wpm: int
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
    """Per pair of consecutive correct keystrokes: the intervals into its second key,
    summed, and the sums of their logs and squared logs (for the timing checks)."""

    total_ms: int = 0
    samples: int = 0
    log_sum: float = 0.0
    log_squares: float = 0.0


class _LogTable(dict[int, float]):
    """``math.log`` of an interval in ms (0 for 0 and 1 ms), memoised: intervals repeat,
    and a dict lookup costs a fraction of the call. Holds at most ``LOG_TABLE_SIZE``."""

    def __missing__(self, ms: int) -> float:
        value = math.log(ms) if ms > 1 else 0.0
        if len(self) < LOG_TABLE_SIZE:
            self[ms] = value
        return value


LOG_TABLE_SIZE = 100_000
LOG_MS = _LogTable()


@dataclass(frozen=True, slots=True)
class Result:
    wpm: float
    raw_wpm: float
    accuracy: float
    consistency: float
    duration_ms: int
    chars: Chars
    words: int  # correctly typed words (a time test's partial last word not included)
    keystrokes: int  # counted character keystrokes (backspaces not included)
    backspaces: int
    per_second: tuple[Second, ...]
    # Reproduction: does the final buffer give back the target text?
    whole_text: bool
    matched_pct: float
    # Where the clock ran, in the log's times, and which strokes it counted:
    # ``replay.strokes[first : first + counted]``.
    start_ms: int
    typed_ms: int  # the start to the last counted keystroke
    completed_ms: int | None  # when the text was first reproduced, if it was
    first: int
    counted: int
    # Timing of the counted keystrokes, for the plausibility checks.
    backwards: int  # intervals where time went backwards
    intervals: int
    # For analytics: per expected key, per correct bigram, "pressed instead".
    keys: Mapping[str, KeyStat] = field(default_factory=dict)
    bigrams: Mapping[str, BigramStat] = field(default_factory=dict)
    confusions: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


def _centi(numerator: int, denominator: int) -> float:
    """``numerator / denominator`` to 2 decimals, half up, computed exactly in integers
    (a float quotient can land either side of a tie: 3 chars in 768 ms is 46.875 WPM)."""
    return (numerator * 200 + denominator) // (2 * denominator) / 100 if denominator > 0 else 0.0


def _whole_wpm(chars: int, duration_ms: int) -> int:
    """``_wpm`` rounded half up to a whole number, in integers (no float rounding)."""
    return (chars * 24_000 + duration_ms) // (2 * duration_ms)


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


def _r(value: float) -> float:
    return round(value, 2)


def word_credit(typed: str, text: str, *, partial: bool) -> tuple[int, int]:
    """Rule 4: (characters, words) of the correctly typed words of ``typed``.

    ``partial``: the word the buffer ends in counts for its correct prefix (a
    time test cut short by its clock), without counting as a word.
    """
    if typed == text:  # (a text ending in a space has no word after it)
        return len(text), text.count(" ") + (0 if text.endswith(" ") or not text else 1)
    size, length = len(typed), len(text)
    chars = words = start = 0
    while start < size and start < length:
        space = text.find(" ", start)
        end = length if space < 0 else space + 1
        if space < 0 and size >= length:  # the text's last word: nothing may follow it
            if typed[start:] == text[start:]:
                chars, words = chars + end - start, words + 1
            break
        if end > size:  # the word being typed
            if partial and typed[start:] == text[start:size]:
                chars += size - start
            break
        if typed[start:end] == text[start:end]:
            chars, words = chars + end - start, words + 1
        start = end
    return chars, words


def _matched_in_time(typed: str, text: str, correct: int) -> float:
    """Rule 9: the share of a time test's buffer typed right, ignoring the errors of
    its last ``CUT_SLACK_CHARS`` characters."""
    if correct == len(typed):
        return 100.0 if typed else 0.0
    pairs = enumerate(zip(typed, text, strict=False))
    wrong_at = next((i for i, (a, b) in pairs if a != b), min(len(typed), len(text)))
    if len(typed) - wrong_at <= CUT_SLACK_CHARS:
        return 100.0 if wrong_at else 0.0
    return correct / len(typed) * 100


def _buffer(strokes: Sequence[Stroke]) -> str:
    """The typed buffer after ``strokes`` (only when a log is cut before its end)."""
    buffer: list[str] = []
    for _, key, kind, _ in strokes:
        if kind == "backspace":
            if buffer:
                buffer.pop()
        else:
            buffer.append(key)
    return "".join(buffer)


def score(
    replay: Replay,
    *,
    seconds: int | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> Result:
    """Metrics of one replay (rule 3 says which keystrokes count).

    ``seconds``: a time test of that length (a prefix of the text is the
    target); otherwise the whole text is. ``start_ms``/``end_ms`` fix the
    clock in the log's times (a race: its server start and the finish's
    arrival) instead of taking it from the keystrokes.
    """
    strokes, text = replay.strokes, replay.text
    total = len(strokes)
    first = next((i for i, s in enumerate(strokes) if s[2] != "backspace"), total)
    start = start_ms if start_ms is not None else (strokes[first][0] if first < total else 0)
    timed = seconds is not None
    if seconds is not None:
        end = start + seconds * 1000
        stop = first
        while stop < total and strokes[stop][0] <= end:
            stop += 1
    else:
        stop = replay.completed + 1 if replay.completed >= 0 else total
        last = strokes[stop - 1][0] if stop > first else start
        end = end_ms if end_ms is not None else last
    typed = replay.typed if stop == total else _buffer(strokes[first:stop])
    duration = max(0, end - start)

    # Seconds of the series (rule 6): full ones, then a long enough part-second.
    count = seconds if seconds is not None else duration // 1000
    last_ms = 1000
    if seconds is None and duration % 1000 >= PART_SECOND_MS:
        count, last_ms = count + 1, duration % 1000
    counting = 0 < count <= MAX_SERIES_SECONDS
    series_end = (count - 1) * 1000 + last_ms  # offset where the last second ends
    raw_s = [0] * count if counting else []
    net_s = raw_s.copy()
    err_s = raw_s.copy()
    keys: dict[str, KeyStat] = {}
    bigrams: dict[str, BigramStat] = {}
    confusions: dict[str, dict[str, int]] = {}
    typing = correct_strokes = backwards = 0
    previous_t: int | None = None
    previous_key = previous_kind = ""
    last_t = start
    log_ms = LOG_MS
    # One pass; a stat object is made only the first time its key or pair shows up.
    for index in range(first, stop):
        t, key, kind, expected = strokes[index]
        gap = -1 if previous_t is None else t - previous_t
        if gap < 0 and previous_t is not None:
            backwards += 1
        previous_t = t
        if kind != "backspace":
            typing += 1
            last_t = t if t > last_t else last_t
            offset = t - start
            bucket = (offset - 1) // 1000 if offset > 0 else 0
            if kind == "correct":
                correct_strokes += 1
                if counting and offset <= series_end:
                    raw_s[bucket] += 1
                    net_s[bucket] += 1
            elif counting and offset <= series_end:
                raw_s[bucket] += 1
                err_s[bucket] += 1
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
                        value = log_ms[gap]
                        pair.log_sum += value
                        pair.log_squares += value * value
        previous_key = key
        previous_kind = kind

    per_second: tuple[Second, ...] = ()
    if counting:
        full = [Second(r * 12, n * 12, e) for r, n, e in zip(raw_s, net_s, err_s, strict=True)]
        if last_ms != 1000:
            full[-1] = Second(
                _whole_wpm(raw_s[-1], last_ms), _whole_wpm(net_s[-1], last_ms), err_s[-1]
            )
        per_second = tuple(full)

    correct = sum(map(eq, typed, text))
    chars = Chars(
        correct=correct,
        incorrect=min(len(typed), len(text)) - correct,
        extra=max(0, len(typed) - len(text)),
        missed=0 if timed else max(0, len(text) - len(typed)),
    )
    word_chars, words = word_credit(typed, text, partial=timed)
    if not timed:
        target = max(len(text), len(typed))
        matched = correct / target * 100 if target else 0.0
    else:
        matched = _matched_in_time(typed, text, correct)
    completed = replay.completed
    return Result(
        wpm=_centi(word_chars * 12_000, duration),
        raw_wpm=_centi(len(typed) * 12_000, duration),
        accuracy=_centi(correct_strokes * 100, typing),
        consistency=_r(consistency_of([s.raw for s in per_second])),
        duration_ms=duration,
        chars=chars,
        words=words,
        keystrokes=typing,
        backspaces=stop - first - typing,
        per_second=per_second,
        whole_text=not timed,
        matched_pct=round(matched, 2),
        start_ms=start,
        typed_ms=max(0, last_t - start) if typing else 0,
        completed_ms=strokes[completed][0] if 0 <= completed < stop else None,
        first=first,
        counted=stop - first,
        backwards=backwards,
        intervals=max(0, stop - first - 1),
        keys=keys,
        bigrams=bigrams,
        confusions=confusions,
    )


def progress_timeline(replay: Replay, *, until: int | None = None) -> tuple[int, ...]:
    """When the log's correct prefix changed: ``(t, pos, t, pos, ...)`` flattened, ``pos``
    being what a client reports as ``race.progress`` (characters typed correctly from
    the start). Strokes from index ``until`` on are left out."""
    text, size = replay.text, len(replay.text)
    out: list[int] = []
    length = 0  # buffer length
    wrong: int | None = None  # first wrong position in the buffer
    shown = 0
    for t, key, kind, _ in replay.strokes[:until]:
        if kind == "backspace":
            if length:
                length -= 1
                if wrong is not None and length <= wrong:
                    wrong = None
        else:
            if wrong is None and (length >= size or key != text[length]):
                wrong = length
            length += 1
        pos = length if wrong is None else wrong
        if pos != shown:
            out += (t, pos)
            shown = pos
    return tuple(out)


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
