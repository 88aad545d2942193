"""A typist's own rhythm, learned from their accepted results, and how far a result is from it.

Pure: no I/O, no clock. Keystroke biometrics rests on it: every person types
some letter pairs faster and others slower than their own average, in the
same way test after test (the layout, the fingers, habits of their own), and
their pace moves little from one test to the next. A bot does neither: its
intervals do not depend on the keys, or come from someone else's typing, or
are a person's log replayed faster.

Rules:

1. A ``Profile`` folds in every accepted result of its user (``fold``):
   per letter pair, the samples and the sum of their log intervals
   *relative to that result's own mean*, so a faster or slower day leaves
   the pair's shape alone; and per result, its mean log interval (the pace).
   At most ``MAX_PAIRS`` pairs are kept (those seen most), so a profile
   stays a few KiB whatever the history.
2. ``compare`` measures a new result against a profile: ``pairs_z``, the
   correlation of the result's per-pair relative intervals with the
   profile's over the pairs both know (``MIN_SHARED`` pairs and
   ``MIN_INTERVALS`` intervals at least, each pair seen ``MIN_SAMPLES`` times
   in the profile; a threshold on it applies in full from ``FULL_INTERVALS``
   on and scaled down below, ``Rhythm.weight``), as a Fisher z-score — a person's
   own rhythm gives a clearly positive one, timing independent of the keys
   about 0; and ``pace_z``, how many standard deviations (at least
   ``MIN_PACE_SD``) the result's pace is faster than the profile's.
3. ``typogram.anticheat`` judges both (rule 10) once the profile holds
   ``min_results`` results; a profile is only a yardstick, never a verdict
   by itself on a newcomer.
4. A result with no history behind it is compared with how people type in
   general (``population_z``): published studies of transcription typing
   agree on which letter pairs are fast and which slow for everyone on a
   QWERTY keyboard — pairs typed by the two hands faster than pairs on one
   hand, two keys on one finger slowest, a doubled letter fast, the most
   frequent English pairs faster than their layout predicts, a shifted or
   punctuation key slower (Gentner 1983; Salthouse 1986; Dhakal et al.
   2018). ``prior`` is that expectation for one pair inside a word, in log
   units; ``population_z`` is the Fisher z-score of the correlation of a
   result's intervals inside words with it — clearly positive for a person,
   about 0 for timing that does not depend on the keys.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import msgspec

from typogram.typing import BigramStat, Result

MAX_PAIRS = 400
MIN_SHARED = 20
MIN_INTERVALS = 40  # rule 2: fewer intervals say too little of a rhythm
FULL_INTERVALS = 60  # from here on the threshold applies in full (``Rhythm.weight``)
MIN_SAMPLES = 2
SHRINK = 3.0  # rule 2: prior samples pulling a rarely seen pair's value towards 0
MIN_PACE_SD = 0.08  # log units: a person's pace varies at least this much between tests

# Rule 4. QWERTY: key -> (hand, finger); fingers 0-3 left pinky..index, 6-9 right index..pinky.
_ROWS = (
    ("1qaz", 0, 0), ("2wsx", 0, 1), ("3edc", 0, 2), ("4rfv5tgb", 0, 3),
    ("6yhn7ujm", 1, 6), ("8ik,", 1, 7), ("9ol.", 1, 8), ("0p;/'-", 1, 9),
)  # fmt: skip
FINGERS: dict[str, tuple[int, int]] = {
    key: (hand, finger) for keys, hand, finger in _ROWS for key in keys
}
# The most frequent English letter pairs: typed faster than their layout predicts.
# fmt: off
FREQUENT_PAIRS = frozenset([
    "th", "he", "in", "er", "an", "re", "on", "at", "en", "nd", "ti", "es", "or", "te",
    "of", "ed", "is", "it", "al", "ar", "st", "to", "nt", "ng", "se", "ha", "as", "ou",
])
# fmt: on
# Rule 4's typical effects on a pair's interval, as log factors (the middle of the
# ranges the studies report; ``bench.typists`` draws each typist's own from them).
OTHER_HAND = -0.15
SAME_FINGER = 0.25
DOUBLED = math.log(0.9)
FREQUENT = math.log(0.85)
SHIFTED = math.log(1.3)
UNKNOWN_KEY = math.log(1.1)
MIN_POPULATION_INTERVALS = 12  # rule 4: fewer intervals inside words say nothing


class Profile(msgspec.Struct, frozen=True, array_like=True):
    """Rule 1. ``pairs``: pair -> [samples, sum of relative log intervals]."""

    results: int = 0
    pace_sum: float = 0.0
    pace_squares: float = 0.0
    pairs: dict[str, tuple[int, float]] = msgspec.field(default_factory=dict)

    @property
    def pace(self) -> float:
        """The mean over results of their mean log interval."""
        return self.pace_sum / self.results if self.results else 0.0

    @property
    def pace_sd(self) -> float:
        if self.results < 2:
            return MIN_PACE_SD
        spread = max(0.0, self.pace_squares - self.pace_sum**2 / self.results)
        return max(MIN_PACE_SD, math.sqrt(spread / (self.results - 1)))


@dataclass(frozen=True, slots=True)
class Rhythm:
    """Rule 2: how a result compares with a profile (``None``: too little to tell)."""

    shared: int
    pairs_z: float | None
    pace_z: float | None
    intervals: int = 0  # behind ``pairs_z``

    def weight(self) -> float:
        """How much ``pairs_z`` can say, 0..1: a short log's is noisier for a person too,
        so a threshold on it is scaled by this (full from ``FULL_INTERVALS``)."""
        span = FULL_INTERVALS - MIN_INTERVALS
        return min(1.0, max(0.0, (self.intervals - MIN_INTERVALS) / span))


def _pace(bigrams: Mapping[str, BigramStat]) -> tuple[float, int] | None:
    samples = sum(s.samples for s in bigrams.values())
    if samples < 2:
        return None
    return sum(s.log_sum for s in bigrams.values()) / samples, samples


def fold(profile: Profile | None, result: Result) -> Profile:
    """Rule 1: ``profile`` with ``result`` (an accepted one) folded in."""
    profile = profile or Profile()
    measured = _pace(result.bigrams)
    if measured is None:
        return profile
    pace, _ = measured
    pairs = dict(profile.pairs)
    for pair, stat in result.bigrams.items():
        n, total = pairs.get(pair, (0, 0.0))
        pairs[pair] = (n + stat.samples, total + stat.log_sum - stat.samples * pace)
    if len(pairs) > MAX_PAIRS:
        kept = sorted(pairs.items(), key=lambda item: (-item[1][0], item[0]))[:MAX_PAIRS]
        pairs = dict(kept)
    return Profile(
        profile.results + 1,
        profile.pace_sum + pace,
        profile.pace_squares + pace * pace,
        pairs,
    )


def compare(profile: Profile, result: Result) -> Rhythm:
    """Rule 2."""
    measured = _pace(result.bigrams)
    if measured is None or not profile.results:
        return Rhythm(0, None, None)
    pace, _ = measured
    pace_z = (profile.pace - pace) / profile.pace_sd
    # Rule 2, over every interval of the shared pairs (a repeated pair counts each time):
    # the Pearson correlation of an interval's log with its pair's value in the profile,
    # that value shrunk towards 0 by ``SHRINK`` samples (a pair seen twice is a guess).
    points = []
    for pair, stat in result.bigrams.items():
        known = profile.pairs.get(pair)
        if known is not None and known[0] >= MIN_SAMPLES and stat.samples:
            points.append((known[1] / (known[0] + SHRINK), stat))
    shared = len(points)
    r, n = _correlation(points)
    if shared < MIN_SHARED or n < MIN_INTERVALS:
        return Rhythm(shared, None, pace_z)
    return Rhythm(shared, 0.0 if r is None else _fisher(r, n), pace_z, n)


@functools.cache
def prior(pair: str) -> float:
    """Rule 4: the log factor people in general type the pair ``pair`` (two characters,
    neither a space) with, relative to their average pair."""
    a, b = pair[0], pair[1]
    factor = SHIFTED if b.isupper() or not b.isalnum() else 0.0
    fa, fb = FINGERS.get(a.lower()), FINGERS.get(b.lower())
    if fa is None or fb is None:
        return factor + UNKNOWN_KEY
    if a.lower() == b.lower():
        return factor + DOUBLED
    if fa[0] != fb[0]:
        factor += OTHER_HAND
    elif fa[1] == fb[1]:
        factor += SAME_FINGER
    if (a + b).lower() in FREQUENT_PAIRS:
        factor += FREQUENT
    return factor


def population_z(bigrams: Mapping[str, BigramStat]) -> tuple[float | None, int]:
    """Rule 4: the Fisher z of the correlation between the log intervals of the pairs
    inside words and their ``prior``, and how many intervals it rests on (``None``:
    fewer than ``MIN_POPULATION_INTERVALS``, or every pair alike)."""
    r, n = _correlation(
        (prior(pair), stat)
        for pair, stat in bigrams.items()
        if pair[0] != " " and pair[1] != " " and stat.samples
    )
    if n < MIN_POPULATION_INTERVALS or r is None:
        return None, n
    return _fisher(r, n), n


def _correlation(points: Iterable[tuple[float, BigramStat]]) -> tuple[float | None, int]:
    """The Pearson correlation of every interval's log with its pair's value ``x`` (a
    pair seen k times counts k times), and the number of intervals; ``None`` when
    either side does not vary."""
    n = 0
    sx = sxx = sy = syy = sxy = 0.0
    for x, stat in points:
        k = stat.samples
        n += k
        sx += k * x
        sxx += k * x * x
        sy += stat.log_sum
        syy += stat.log_squares
        sxy += x * stat.log_sum
    if not n:
        return None, 0
    cxx, cyy, cxy = sxx - sx * sx / n, syy - sy * sy / n, sxy - sx * sy / n
    if cxx <= 1e-12 or cyy <= 0:
        return None, n
    return cxy / math.sqrt(cxx * cyy), n


def _fisher(r: float, n: int) -> float:
    """A correlation ``r`` over ``n`` points as a z-score (Fisher)."""
    return math.atanh(max(-0.999999, min(0.999999, r))) * math.sqrt(n - 3)


def encode(profile: Profile) -> bytes:
    return msgspec.json.encode(profile)


def decode(raw: bytes | None) -> Profile | None:
    """The profile stored as ``raw``; ``None`` for nothing or a foreign blob."""
    if raw is None:
        return None
    try:
        return msgspec.json.decode(raw, type=Profile)
    except msgspec.DecodeError:
        return None
