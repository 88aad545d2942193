"""Plausibility checks on a scored keystroke log: accept, flag for review, or reject.

Pure: no I/O, no clock. ``judge(replay, result, limits)`` is what solo tests,
daily challenges and race finishes call after ``typing.score``; it reads the
counted keystrokes (``result.first``, ``result.counted``) of the replay.

Rules:

1. ``reject`` is for what no person produces or no test needs: time going
   backwards, raw WPM over ``wpm_cap``, too few keystrokes to score, a text
   not reproduced, and *robotic* timing (rule 3). ``flag`` is for what a
   person could produce but a bot produces far more often: the result is
   stored and kept off the boards until staff review it. Every failing rule
   is listed; the worst decides.
2. The timing rules hold for logs of any length: each asks how likely the
   log's intervals are for a person, so a short log needs more extreme
   timing to fail than a long one, and there is no length below which
   nothing is checked.
3. Robotic: (a) the spread of the log inter-key intervals is tested
   against ``human_log_sd`` (a person's spread is well above it) with a
   chi-square test: ``P(spread this small) < robotic_p`` rejects,
   ``< uniform_p`` flags; (b) when most intervals sit within ±2 % (and
   2 ms) of their median — a metronome with a few pauses thrown in.
4. Shape: a person's intervals are right-skewed — a long tail of
   hesitations behind a fast core. Intervals spread evenly around their mean
   (Gaussian or uniform jitter) have a skewness near 0. A skewness more
   than two standard errors below ``min_skewness`` flags (a short log needs
   a lower one).
5. Structure: a person is slower into the first letter of a word than
   inside words (the word-initiation effect), and types the same letter
   pair alike each time while different pairs differ. Both are measured as
   z-scores (a Welch t for the word starts, a one-way ANOVA over repeated
   pairs turned into a z); their combination below ``min_structure_z``
   flags: the timing is independent of the keys, as a bot's is. Needs
   ``structure_min_words`` word starts and repeated pairs.
6. History: raw WPM above ``history_ratio`` times the user's best so far plus
   ``history_margin_wpm`` flags (the caller passes the best it knows; a new
   user has none).
7. Speed: raw WPM over ``flag_wpm`` flags.
8. Speed while typing: at least ``SPAN_MIN_KEYS`` character keys typed
   faster than ``wpm_cap`` from the first to the last (whatever the clock the
   result is scored on) rejects like raw WPM over the cap.
9. A record needs a history: WPM above ``record_wpm`` flags
   (``newcomer_record``). The caller passes the record of the result's board
   only for a user without the minimum history (``typogram.results.History``),
   so a new account's result waits for review instead of taking rank 1.
10. Own rhythm: once the user's rhythm profile (``typogram.rhythm``) holds
    ``rhythm_min_results`` accepted results, a result whose intervals do not
    follow the user's own letter-pair rhythm (``pairs_z`` below
    ``min_rhythm_z``) is flagged ``unlike_own_rhythm``, and one whose pace is
    more than ``max_pace_z`` standard deviations faster than the user's
    usual pace ``faster_than_own_pace`` (a log replayed faster keeps the
    rhythm but not the pace). A result that follows the user's own rhythm
    clearly (``pairs_z`` of at least ``own_rhythm_clears_z``) is not flagged
    by rule 5: the user's own pairs are better evidence than the word starts
    and repeats of one test, which some slow typists barely show.
11. Like a person: a log of any length, on any account, is compared with
    how people type in general. Four independent z-scores, each about 0
    for timing that ignores the keys, are combined (Stouffer, weighted by
    how strongly each shows in a person's typing): word starts slower than
    the inside of words (rule 5's Welch z, however few the words), repeated
    pairs alike (rule 5), the pairs inside words against the population's
    layout prior (``typogram.rhythm.population_z``), and hesitations —
    intervals over ``PAUSE_RATIO`` times the median, corrections left out —
    falling before words more often than the word starts' share of the
    intervals (a binomial z); with a profile (rule 10) the user's own
    rhythm joins them. A person's combined score grows with the square
    root of the log's length, a bot's does not, so the threshold does too:
    below ``Limits.human_z_floor`` flags ``unlike_human_typing``. Calibrated
    on the human model and bots of ``bench.typists`` (seeds other than the
    reported ones); a result that clearly follows its typist's own rhythm
    is not flagged by it, as for rule 5.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace
from operator import mul, sub
from typing import Literal

from typogram.rhythm import Profile, Rhythm, compare, population_z
from typogram.settings import Settings
from typogram.typing import BACKSPACE, LOG_MS, BigramStat, Replay, Result

Action = Literal["accept", "flag", "reject"]
PAIRS_WEIGHT = 0.4  # rule 5: the letter pairs' share of the structure score
LAYOUT_WEIGHT = 2.0  # rule 11: the layout prior's share of the combined score
PAUSE_WEIGHT = 0.5  # rule 11: the hesitations' share
RHYTHM_WEIGHT = 1.0  # rule 11: the user's own rhythm's share, once there is a profile
PAUSE_RATIO = 2.5  # rule 11: an interval this many times the median is a hesitation
SPAN_MIN_KEYS = 10  # rule 8: fewer keys may be a rolled-over burst


@dataclass(frozen=True, slots=True)
class Limits:
    """Plausibility thresholds; built from the settings by ``limits_from``."""

    wpm_cap: float = 300.0  # raw WPM above this: reject
    flag_wpm: float = 250.0  # raw WPM above this: flag
    min_matched_pct: float = 100.0  # reproduction: share of the target typed right
    min_keystrokes: int = 2
    human_log_sd: float = 0.2  # rule 3: a person's log-interval spread is above this
    robotic_p: float = 1e-6
    uniform_p: float = 1e-3
    min_skewness: float = 0.6  # rule 4: a person's intervals are at least this skewed
    min_structure_z: float = 1.0  # rule 5
    structure_min_words: int = 16  # rule 5: word starts needed
    structure_min_pairs: int = 6  # rule 5: repeated letter pairs needed
    history_ratio: float = 1.35  # rule 6
    history_margin_wpm: float = 5.0
    rhythm_min_results: int = 10  # rule 10
    min_rhythm_z: float = 1.5
    max_pace_z: float = 4.0
    own_rhythm_clears_z: float = 3.0  # rule 10: own rhythm this clear outweighs rule 5
    # Rule 11: the combined score must reach min(cap, slope * sqrt(intervals) - offset).
    human_z_slope: float = 0.25
    human_z_offset: float = 2.5
    human_z_cap: float = 2.5

    def human_z_floor(self, intervals: int) -> float:
        """Rule 11's threshold for a log of ``intervals`` intervals."""
        return min(
            self.human_z_cap, self.human_z_slope * math.sqrt(intervals) - self.human_z_offset
        )


def limits_from(settings: Settings, *, whole_text: bool = False) -> Limits:
    """The limits the ``typing_*`` settings configure (the rest keep their defaults).

    ``whole_text``: the log must reproduce all of its text whatever
    ``typing_min_matched_pct`` says (a race is the whole text, always).
    """
    return Limits(
        wpm_cap=settings.typing_wpm_cap,
        flag_wpm=settings.typing_flag_wpm,
        min_matched_pct=100.0 if whole_text else settings.typing_min_matched_pct,
        min_skewness=settings.typing_min_skewness,
        min_structure_z=settings.typing_min_structure_z,
        history_ratio=settings.typing_history_ratio,
        history_margin_wpm=settings.typing_history_margin_wpm,
        rhythm_min_results=settings.typing_history_min_results,
        min_rhythm_z=settings.typing_min_rhythm_z,
        max_pace_z=settings.typing_max_pace_z,
    )


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

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(reason.code for reason in self.reasons)


@dataclass(frozen=True, slots=True)
class Timing:
    """What the timing rules measure of one log (also the evidence shown to reviewers)."""

    intervals: int
    log_sd: float  # standard deviation of log inter-key intervals
    spread_p: float  # rule 3a: P(a person's spread is this small)
    near_median: float  # rule 3b: share of intervals within ±2 % of the median
    skewness: float  # rule 4
    skewness_se: float
    word_z: float | None  # rule 5: word starts slower than the inside of words
    pairs_z: float | None  # rule 5: repeated letter pairs alike
    structure_z: float | None
    rhythm: Rhythm | None = None  # rule 10: against the user's own profile
    start_z: float | None = None  # rule 11: word starts slower, however few
    layout_z: float | None = None  # rule 11: pairs inside words as people type them
    pause_z: float | None = None  # rule 11: hesitations before words
    human_z: float | None = None  # rule 11: rule 5's measures and these combined

    def evidence(self) -> dict[str, float | int | None]:
        return {
            "intervals": self.intervals,
            "log_sd": round(self.log_sd, 3),
            "spread_p": float(f"{self.spread_p:.3g}"),
            "near_median": round(self.near_median, 3),
            "skewness": round(self.skewness, 3),
            "word_z": None if self.word_z is None else round(self.word_z, 2),
            "pairs_z": None if self.pairs_z is None else round(self.pairs_z, 2),
            "structure_z": None if self.structure_z is None else round(self.structure_z, 2),
            "rhythm_pairs": None if self.rhythm is None else self.rhythm.shared,
            "rhythm_z": _rounded(None if self.rhythm is None else self.rhythm.pairs_z),
            "pace_z": _rounded(None if self.rhythm is None else self.rhythm.pace_z),
            "layout_z": _rounded(self.layout_z),
            "pause_z": _rounded(self.pause_z),
            "human_z": _rounded(self.human_z),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def timing_of(replay: Replay, result: Result, limits: Limits) -> Timing:
    """Rules 3-5's measures over the counted keystrokes of ``replay``.

    On the submit path, so written for speed: sums and maps in C over the
    intervals, and rule 5 from the per-pair sums ``typing.score`` made already.
    """
    strokes = replay.strokes[result.first : result.first + result.counted]
    n = len(strokes) - 1
    if n < 2:
        return Timing(max(0, n), 0.0, 1.0, 0.0, 0.0, math.inf, None, None, None)
    times = [stroke[0] for stroke in strokes]
    gaps = list(map(sub, times[1:], times))
    logs = list(map(LOG_MS.__getitem__, gaps))

    # Rule 3a: the spread of the log intervals.
    total = sum(logs)
    squares = max(0.0, sum(map(mul, logs, logs)) - total * total / n)
    log_sd = math.sqrt(squares / (n - 1))
    spread_p = _chi2_cdf(squares / limits.human_log_sd**2, n - 1)
    # Rule 3b: the share of intervals at the median.
    ordered = sorted(gaps)
    median = ordered[n // 2]
    band = max(2.0, 0.02 * median)
    near = (bisect_right(ordered, median + band) - bisect_left(ordered, median - band)) / n
    # Rule 4: skewness from exact integer power sums (no cancellation).
    s1, s2 = sum(gaps), sum(map(mul, gaps, gaps))
    s3 = sum(map(mul, map(mul, gaps, gaps), gaps))
    spread = n * s2 - s1 * s1  # n² m2
    skewness = (n * n * s3 - 3 * n * s1 * s2 + 2 * s1**3) / spread**1.5 if spread > 0 else 0.0
    skewness_se = math.sqrt(6 * (n - 2) / ((n + 1) * (n + 3)))

    # Rule 5, from the clean pairs: into a word (" x") and inside a word ("xy").
    # (Sums kept in locals, not ``Moments.add`` calls: this loop runs per pair.)
    sn = in_n = 0
    st = sq = it = iq = 0.0
    repeated: list[BigramStat] = []
    for pair, stat in result.bigrams.items():
        if pair[1] == " ":
            continue
        if pair[0] == " ":
            sn += stat.samples
            st += stat.log_sum
            sq += stat.log_squares
        else:
            in_n += stat.samples
            it += stat.log_sum
            iq += stat.log_squares
            if stat.samples >= 2:
                repeated.append(stat)
    starts, inside = Moments(sn, st, sq), Moments(in_n, it, iq)
    word_z = None
    if starts.n >= limits.structure_min_words:
        word_z = _welch_z(starts, inside)
    pairs_z = _anova_z(repeated, min_groups=limits.structure_min_pairs)
    structure_z = word_z
    if word_z is not None and pairs_z is not None:
        # Weighted by how strongly each shows in a person's typing (the word starts
        # far more, over one test): the most powerful combination of the two.
        structure_z = (word_z + PAIRS_WEIGHT * pairs_z) / math.hypot(1.0, PAIRS_WEIGHT)
    # Rule 11: the hesitations (intervals over ``PAUSE_RATIO`` times the median, the
    # corrections left out) fall before words far more often than the word starts'
    # share of the intervals: a binomial z.
    cut = PAUSE_RATIO * median
    keys = [stroke[1] for stroke in strokes]
    before = at_starts = pauses = paused_starts = 0
    for previous, key, gap in zip(keys, keys[1:], gaps, strict=False):
        if previous == BACKSPACE or key == BACKSPACE or key == " ":
            continue
        start = previous == " "
        before += 1
        at_starts += start
        if gap > cut:
            pauses += 1
            paused_starts += start
    pause_z = None
    if pauses and 0 < at_starts < before:
        share = at_starts / before
        pause_z = (paused_starts - pauses * share) / math.sqrt(pauses * share * (1 - share))
    timing = Timing(
        n,
        log_sd,
        spread_p,
        near,
        skewness,
        skewness_se,
        word_z,
        pairs_z,
        structure_z,
        start_z=_welch_z(starts, inside),
        layout_z=population_z(result.bigrams)[0],
        pause_z=pause_z,
    )
    return replace(timing, human_z=_human_z(timing))


def _human_z(timing: Timing) -> float | None:
    """Rule 11's combined score: rule 5's measures, the layout prior, the hesitations and,
    once known, the user's own rhythm (rule 10), each weighted by its strength."""
    return _combined(
        (timing.start_z, 1.0),
        (timing.pairs_z, PAIRS_WEIGHT),
        (timing.layout_z, LAYOUT_WEIGHT),
        (timing.pause_z, PAUSE_WEIGHT),
        (None if timing.rhythm is None else timing.rhythm.pairs_z, RHYTHM_WEIGHT),
    )


def _combined(*parts: tuple[float | None, float]) -> float | None:
    """Independent z-scores, weighted (Stouffer); ``None`` ones left out."""
    total = norm = 0.0
    for z, weight in parts:
        if z is not None:
            total += weight * z
            norm += weight * weight
    return total / math.sqrt(norm) if norm else None


@dataclass(slots=True)
class Moments:
    """Count, sum and sum of squares of log intervals, added up over letter pairs."""

    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    @property
    def mean(self) -> float:
        return self.total / self.n

    @property
    def variance(self) -> float:
        return max(0.0, self.squares - self.total * self.total / self.n) / (self.n - 1)


def judge(
    replay: Replay,
    result: Result,
    limits: Limits,
    *,
    best_wpm: float | None = None,
    record_wpm: float | None = None,
    profile: Profile | None = None,
) -> tuple[Verdict, Timing]:
    """Rules 1-10 for one scored log; the verdict and the timing it was judged on."""
    timing = timing_of(replay, result, limits)
    if profile is not None and profile.results >= limits.rhythm_min_results:
        timing = replace(timing, rhythm=compare(profile, result))
        timing = replace(timing, human_z=_human_z(timing))
    rejects: list[Reason] = []
    flags: list[Reason] = []
    if result.keystrokes < limits.min_keystrokes or result.duration_ms <= 0:
        rejects.append(Reason("too_short", "the log is too short to score"))
    if result.backwards:
        rejects.append(
            Reason("time_backwards", f"time goes backwards {result.backwards} time(s) in the log")
        )
    # Over the log's own span too (rule 8): a race's clock or a time test's clock is
    # longer than the typing, and must not hide keys no hand can type that fast.
    span = _typing_span(replay, result)
    span_wpm = result.keystrokes * 12_000 / span if span > 0 else 0.0
    if result.raw_wpm > limits.wpm_cap:
        rejects.append(
            Reason("wpm_over_cap", f"{result.raw_wpm:.0f} WPM is over the cap {limits.wpm_cap:.0f}")
        )
    elif result.keystrokes >= SPAN_MIN_KEYS and span_wpm > limits.wpm_cap:
        rejects.append(
            Reason(
                "wpm_over_cap",
                f"the log types {span_wpm:.0f} WPM while it lasts, over the cap "
                f"{limits.wpm_cap:.0f}",
            )
        )
    elif result.raw_wpm > limits.flag_wpm:
        flags.append(Reason("wpm_high", f"{result.raw_wpm:.0f} WPM is exceptionally fast"))
    if result.matched_pct < limits.min_matched_pct:
        what = "the text" if result.whole_text else "the typed part of the text"
        rejects.append(
            Reason(
                "text_not_reproduced",
                f"the log reproduces {result.matched_pct:.1f}% of {what}",
            )
        )
    _timing_rules(timing, limits, rejects, flags)
    if best_wpm is not None and best_wpm > 0:
        ceiling = best_wpm * limits.history_ratio + limits.history_margin_wpm
        if result.raw_wpm > ceiling:
            flags.append(
                Reason(
                    "far_from_history",
                    f"{result.raw_wpm:.0f} WPM is far above this typist's best ({best_wpm:.0f})",
                )
            )
    if record_wpm is not None and result.wpm > record_wpm:
        flags.append(
            Reason(
                "newcomer_record",
                f"{result.wpm:.0f} WPM would take the record ({record_wpm:.0f}) before this "
                "typist has a history",
            )
        )
    _rhythm_rules(timing.rhythm, limits, flags)
    if rejects:
        return Verdict("reject", tuple(rejects + flags)), timing
    if flags:
        return Verdict("flag", tuple(flags)), timing
    return Verdict("accept"), timing


def _typing_span(replay: Replay, result: Result) -> int:
    """Rule 8: ms from the first counted character to the last (a race's clock starts
    before the first key, at the server's start)."""
    if not result.keystrokes:
        return 0
    first = replay.strokes[result.first][0]
    return result.start_ms + result.typed_ms - first


def _timing_rules(
    timing: Timing, limits: Limits, rejects: list[Reason], flags: list[Reason]
) -> None:
    if timing.intervals < 2:
        return
    if timing.spread_p < limits.robotic_p or (timing.intervals >= 10 and timing.near_median >= 0.7):
        rejects.append(
            Reason(
                "robotic_timing",
                f"keystroke intervals vary too little for a hand (log sd {timing.log_sd:.3f})",
            )
        )
        return
    if timing.spread_p < limits.uniform_p:
        flags.append(
            Reason(
                "uniform_timing", f"keystroke intervals vary little (log sd {timing.log_sd:.3f})"
            )
        )
    # Rule 4: two standard errors below a person's least skewness.
    if timing.skewness < limits.min_skewness - 2 * timing.skewness_se:
        flags.append(
            Reason(
                "symmetric_timing",
                f"keystroke intervals lack a typist's long tail (skewness {timing.skewness:.2f})",
            )
        )
    own = timing.rhythm.pairs_z if timing.rhythm is not None else None
    if (
        timing.structure_z is not None
        and timing.structure_z < limits.min_structure_z
        and (own is None or own < limits.own_rhythm_clears_z)
    ):
        flags.append(
            Reason(
                "no_timing_structure",
                "keystroke timing does not depend on the keys "
                f"(structure z {timing.structure_z:.2f})",
            )
        )
    # Rule 11: how people type in general, for a log of any length and any account.
    if (
        timing.human_z is not None
        and timing.human_z < limits.human_z_floor(timing.intervals)
        and (own is None or own < limits.own_rhythm_clears_z)
    ):
        flags.append(
            Reason(
                "unlike_human_typing",
                "keystroke timing unlike how people type: no slower word starts, layout "
                f"or hesitations before words (z {timing.human_z:.2f})",
            )
        )


def _rhythm_rules(rhythm: Rhythm | None, limits: Limits, flags: list[Reason]) -> None:
    """Rule 10."""
    if rhythm is None:
        return
    if rhythm.pairs_z is not None and rhythm.pairs_z < limits.min_rhythm_z * rhythm.weight():
        flags.append(
            Reason(
                "unlike_own_rhythm",
                "keystroke rhythm unlike this typist's own accepted results "
                f"(z {rhythm.pairs_z:.2f} over {rhythm.shared} letter pairs)",
            )
        )
    if rhythm.pace_z is not None and rhythm.pace_z > limits.max_pace_z:
        flags.append(
            Reason(
                "faster_than_own_pace",
                f"typed {rhythm.pace_z:.1f} standard deviations faster than this typist's "
                "usual pace",
            )
        )


def _welch_z(slow: Moments, fast: Moments) -> float | None:
    """How far ``slow``'s mean is above ``fast``'s, in standard errors (Welch)."""
    if slow.n < 2 or fast.n < 2:
        return None
    se = math.sqrt(slow.variance / slow.n + fast.variance / fast.n)
    return (slow.mean - fast.mean) / se if se > 0 else 0.0


def _anova_z(groups: list[BigramStat], *, min_groups: int) -> float | None:
    """One-way ANOVA of the repeated pairs' log intervals: F turned into a z-score
    (Paulson's approximation), high when pairs differ more than their repeats do."""
    k = len(groups)
    total = sum(stat.samples for stat in groups)
    if k < max(2, min_groups) or total - k < 2:
        return None
    grand = between = within = 0.0
    for stat in groups:
        s, size = stat.log_sum, stat.samples
        grand += s
        between += s * s / size
        within += stat.log_squares - s * s / size
    if within <= 0:
        return 0.0
    between -= grand * grand / total
    d1, d2 = k - 1, total - k
    f = max(0.0, between / d1) / (within / d2)
    a, b = 2 / (9 * d1), 2 / (9 * d2)
    cube: float = f ** (1 / 3)
    return ((1 - b) * cube - (1 - a)) / math.sqrt(a + b * cube * cube)


def _chi2_cdf(x: float, k: int) -> float:
    """P(X <= x) for X ~ chi-square with ``k`` degrees of freedom (lower tail, series)."""
    if x <= 0:
        return 0.0
    a, half = k / 2, x / 2
    if half > a + 1:
        return 1.0  # not in the lower tail: nothing here is small enough to matter
    term = total = 1.0 / a
    n = 1
    while term > total * 1e-12 and n < 500:
        term *= half / (a + n)
        total += term
        n += 1
    return min(1.0, math.exp(a * math.log(half) - half - math.lgamma(a)) * total)
