"""Keystroke logs a person could have typed, for tests that need one accepted.

``bench.typists`` is the human model the anti-cheat checks were calibrated on
(docs/benchmarks.md); here its typist is pinned to a clearly human rhythm
(word starts slower, a long tail of pauses) and a steady speed, so a test's
log never lands in the model's own 0.4 % of false flags and its WPM follows
``wpm``, whatever text the server generated.
"""

from __future__ import annotations

import itertools
import math
import random

from bench.typists import BACKSPACE, Typist


def typist(seed: int = 1, wpm: float = 70.0) -> Typist:
    rng = random.Random(seed)
    person = Typist.draw(rng, wpm=wpm)
    person.sigma = 0.32
    person.word_start = math.exp(0.4)
    person.other_hand = math.exp(-0.15)
    person.same_finger = math.exp(0.25)
    person.drift = 0.03
    person.pause_rate = 0.04
    person.pause_ms = 600.0
    person.error_rate = 0.0  # ``by_hand`` places its one typo itself
    return person


def by_hand(
    text: str,
    *,
    wpm: float = 70.0,
    seed: int = 1,
    typo_at: int | None = 3,
    start_ms: int = 0,
    until_ms: int | None = None,
) -> list[list[object]]:
    """``text`` typed at about ``wpm``, with one corrected typo at ``typo_at``."""
    rng = random.Random(seed)
    log = typist(seed, wpm).type(text, rng, start_ms=start_ms)
    # Exactly ``wpm`` over the text (the rhythm scaled, not changed), so a test's
    # speeds differ by what it asked for, not by how the words happened to fall.
    span = int(log[-1][0]) - start_ms  # type: ignore[call-overload]
    if span > 0:
        factor = len(text) * 12_000 / wpm / span
        log = [[start_ms + round((int(t) - start_ms) * factor), k] for t, k in log]  # type: ignore[call-overload]
    if until_ms is not None:
        log = [entry for entry in log if int(entry[0]) <= until_ms]  # type: ignore[call-overload]
    if typo_at is None or typo_at >= len(log) or typo_at == 0:
        return log
    at = int(log[typo_at][0])  # type: ignore[call-overload]
    ch = str(log[typo_at][1])
    wrong = "q" if ch != "q" else "w"
    fix = [[at, wrong], [at + 240, BACKSPACE]]
    later = [[int(t) + 420, key] for t, key in log[typo_at:]]  # type: ignore[call-overload]
    return [*log[:typo_at], *fix, *later]


def delays(text: str, *, wpm: float = 70.0, seed: int = 1) -> list[int]:
    """The waits between keys of ``by_hand(text)`` without its typo (for a browser)."""
    log = by_hand(text, wpm=wpm, seed=seed, typo_at=None)
    times = [int(t) for t, _ in log]  # type: ignore[call-overload]
    return [b - a for a, b in itertools.pairwise(times)]
