"""Typing insights from aggregated keystroke statistics, and practice texts. Pure.

Rules:

1. A key's latency is smoothed per test: ``ewma = ALPHA * test_mean +
   (1 - ALPHA) * ewma`` (the first test sets it), so recent tests count most
   and one odd test does not swing it.
2. A key needs ``MIN_KEY_SAMPLES`` keystrokes and a bigram
   ``MIN_BIGRAM_SAMPLES`` transitions before it can be called weak.
3. Weakness = miss rate * 100 + (latency / the median key latency - 1) * 50:
   a key missed one time in ten, or 40 % slower than usual, scores ~10-20.
   Only keys above zero are weak; the worst ``WEAK_LIMIT`` are listed.
4. Weak bigrams are the slowest ``WEAK_LIMIT`` transitions, slower than the
   median bigram.
5. Practice text: real words from the language's list, each scored by how
   often it holds a weak bigram (*3) and a weak key (*1); words are drawn
   from the best-scoring candidates with the caller's ``random.Random``, so
   a seed gives the same text again. With no weakness known, any common
   words do.
6. Insights are about the last ``HOT_DAYS``: trend points created and key,
   bigram and confusion rows updated within them. Older rows are moved to
   the archive port by ``typogram partitions`` (``typogram.db.archiver``).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ALPHA = 0.3
HOT_DAYS = 90
MIN_KEY_SAMPLES = 5
MIN_BIGRAM_SAMPLES = 3
WEAK_LIMIT = 5
CANDIDATES = 150  # practice words are drawn from this many best-scoring words


def smooth(previous: float | None, test_mean: float) -> float:
    """Rule 1."""
    return test_mean if previous is None else ALPHA * test_mean + (1 - ALPHA) * previous


@dataclass(frozen=True, slots=True)
class KeyRow:
    key: str
    hits: int
    misses: int
    latency_ms: float

    @property
    def attempts(self) -> int:
        return self.hits + self.misses

    @property
    def miss_rate(self) -> float:
        return self.misses / self.attempts if self.attempts else 0.0


@dataclass(frozen=True, slots=True)
class BigramRow:
    bigram: str
    samples: int
    latency_ms: float


def weak_keys(rows: Sequence[KeyRow]) -> list[tuple[KeyRow, float]]:
    """Rules 2-3: the weakest keys with their weakness, worst first."""
    known = [r for r in rows if r.attempts >= MIN_KEY_SAMPLES and r.latency_ms > 0]
    if not known:
        return []
    median = statistics.median(r.latency_ms for r in known)
    scored = [(r, r.miss_rate * 100 + (r.latency_ms / median - 1) * 50) for r in known]
    weak = [(r, round(s, 2)) for r, s in scored if s > 0]
    weak.sort(key=lambda pair: (-pair[1], pair[0].key))
    return weak[:WEAK_LIMIT]


def weak_bigrams(rows: Sequence[BigramRow]) -> list[BigramRow]:
    """Rule 4."""
    known = [r for r in rows if r.samples >= MIN_BIGRAM_SAMPLES]
    if not known:
        return []
    median = statistics.median(r.latency_ms for r in known)
    slow = [r for r in known if r.latency_ms > median]
    slow.sort(key=lambda r: (-r.latency_ms, r.bigram))
    return slow[:WEAK_LIMIT]


def word_score(word: str, keys: Sequence[str], bigrams: Sequence[str]) -> int:
    return 3 * sum(word.count(b) for b in bigrams) + sum(word.count(k) for k in keys)


def practice_words(
    words: Sequence[str],
    keys: Sequence[str],
    bigrams: Sequence[str],
    count: int,
    rng: random.Random,
) -> list[str]:
    """Rule 5: ``count`` words exercising ``keys`` and ``bigrams`` (no word twice in a row)."""
    if not words or count < 1:
        return []
    scored = sorted(((word_score(w, keys, bigrams), w) for w in words), key=lambda pair: -pair[0])
    focused = [w for s, w in scored[:CANDIDATES] if s > 0]
    pool = focused if len(focused) >= 2 else list(words[:CANDIDATES])
    out: list[str] = []
    while len(out) < count:
        word = rng.choice(pool)
        if out and word == out[-1] and len(pool) > 1:
            continue
        out.append(word)
    return out


def trend_summary(points: Sequence[Mapping[str, float]]) -> dict[str, float | None]:
    """Means over the last 10 points against the 10 before (oldest first in ``points``)."""
    recent, before = points[-10:], points[-20:-10]

    def mean(items: Sequence[Mapping[str, float]], name: str) -> float | None:
        return round(statistics.fmean(p[name] for p in items), 2) if items else None

    return {
        "wpm": mean(recent, "wpm"),
        "accuracy": mean(recent, "accuracy"),
        "consistency": mean(recent, "consistency"),
        "wpm_before": mean(before, "wpm"),
        "consistency_before": mean(before, "consistency"),
    }
