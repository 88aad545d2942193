"""Human-like keystroke logs, and the bots the anti-cheat checks must catch.

A corpus generator for calibrating and benchmarking ``typogram.anticheat``
(``python -m bench.anticheat``) and for tests that need a log a person could
have typed. Logs are ``[[t_ms, key], ...]`` as clients send them, ``key`` one
character or ``"Backspace"``, times from the first key.

The human model follows published observations of transcription typing
(docs/benchmarks.md, "Anti-cheat", lists the sources and which number comes
from which):

* Speed: a typist's nominal speed is drawn from the distribution measured
  on 168,000 online typists (mean ≈ 52 WPM, SD ≈ 20 WPM; Dhakal et al.,
  CHI 2018), clipped to 18-170 WPM.
* Inter-key intervals are right-skewed: log-normal around the typist's
  pace (Salthouse 1986; the ex-Gaussian/log-normal fits of later work),
  with a spread (sd of log IKI) of 0.25-0.45 per typist.
* Structure: the interval into a word's first letter is longer (the
  word-initiation effect, Salthouse 1986); letter pairs typed by the two
  hands are faster than pairs on one hand, pairs on one finger slowest
  (Gentner 1983; Dhakal et al. 2018); frequent pairs are faster; and every
  typist has pairs of their own that are faster or slower than the layout
  predicts (the idiosyncrasy keystroke biometrics rests on).
* Bursts and pauses: speed drifts (an autoregressive process, as in
  Roeser et al.'s mixture models of copy typing) and a few word boundaries
  carry a hesitation of several hundred ms.
* Errors: 0.5-6 % of characters are mistyped (a neighbouring key), noticed
  after 0-2 more keys and corrected with Backspace, as the ~1.17 keystrokes
  per character of Dhakal et al. imply.

The model is a model: detection and false-positive rates measured on it say
how the checks behave on logs with these properties, not on every person.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from typogram.rhythm import FINGERS, FREQUENT_PAIRS

BACKSPACE = "Backspace"

_NEIGHBOURS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbour(ch: str, rng: random.Random) -> str:
    """A key next to ``ch`` (the usual slip), or a random letter."""
    for row in _NEIGHBOURS:
        at = row.find(ch.lower())
        if at >= 0:
            options = [row[i] for i in (at - 1, at + 1) if 0 <= i < len(row)]
            return rng.choice(options)
    return rng.choice("etaoinsr")


@dataclass(slots=True)
class Typist:
    """One person's typing habits; ``type`` turns a text into their keystroke log."""

    wpm: float  # nominal pace (words of 5 characters per minute)
    sigma: float  # spread of log inter-key intervals around the pace
    word_start: float  # multiplier on the interval into a word's first letter
    other_hand: float  # multiplier for a pair typed by the two hands
    same_finger: float  # multiplier for two keys on one finger
    pause_rate: float  # chance of a hesitation at a word boundary
    pause_ms: float  # median hesitation
    error_rate: float  # chance a character is mistyped
    drift: float  # step of the speed's random walk (log scale, per key)
    seed: int
    _pairs: dict[str, float] = field(default_factory=dict)

    @classmethod
    def draw(cls, rng: random.Random, *, wpm: float | None = None) -> Typist:
        """A typist from the population (``wpm`` fixes the speed)."""
        speed = wpm if wpm is not None else min(170.0, max(18.0, rng.gauss(52.0, 20.0)))
        skill = min(1.0, max(0.0, (speed - 20) / 120))  # 0 slow .. 1 very fast
        return cls(
            wpm=speed,
            sigma=rng.uniform(0.25, 0.45) - 0.05 * skill,
            word_start=math.exp(rng.uniform(0.10, 0.45)),
            other_hand=math.exp(-rng.uniform(0.05, 0.25)),
            same_finger=math.exp(rng.uniform(0.1, 0.4)),
            pause_rate=rng.uniform(0.01, 0.08),
            pause_ms=rng.uniform(350, 1200),
            error_rate=rng.uniform(0.005, 0.06) * (1.3 - 0.8 * skill),
            drift=rng.uniform(0.02, 0.08),
            seed=rng.getrandbits(32),
        )

    def _pair(self, a: str, b: str) -> float:
        """This typist's own factor for the pair ``ab`` (fixed for the typist)."""
        pair = a + b
        factor = self._pairs.get(pair)
        if factor is None:
            own = random.Random(f"{self.seed}:{pair}").gauss(0.0, 0.15)
            factor = self._pairs[pair] = math.exp(own)
        return factor

    def _structure(self, a: str, b: str) -> float:
        """Multiplier on the interval from key ``a`` to key ``b``."""
        factor = self._pair(a, b)
        if b == " ":
            return factor * 0.95
        if a == " ":
            return factor * self.word_start
        if b.isupper() or not b.isalnum():
            factor *= 1.3  # shift, punctuation
        fa, fb = FINGERS.get(a.lower()), FINGERS.get(b.lower())
        if fa is None or fb is None:
            return factor * 1.1
        if a.lower() == b.lower():
            return factor * 0.9
        if fa[0] != fb[0]:
            factor *= self.other_hand
        elif fa[1] == fb[1]:
            factor *= self.same_finger
        if (a + b).lower() in FREQUENT_PAIRS:
            factor *= 0.85
        return factor

    def type(
        self, text: str, rng: random.Random, *, until_ms: int | None = None, start_ms: int = 0
    ) -> list[list[object]]:
        """The log of this typist typing ``text`` (to its end, or until ``until_ms``)."""
        # The pace's median interval: the noise, structure, errors and pauses add the rest.
        base = 12_000 / self.wpm / math.exp(self.sigma**2 / 2) / 1.12
        log: list[list[object]] = []
        t = float(start_ms)
        level = 0.0
        previous = ""
        i = 0

        def press(key: str, gap: float) -> bool:
            nonlocal t
            if log:
                t += max(1.0, gap)
            if until_ms is not None and t > until_ms:
                return False
            log.append([int(t), key])
            return True

        def gap_to(a: str, b: str) -> float:
            nonlocal level
            level = 0.9 * level + rng.gauss(0.0, self.drift)
            noise = math.exp(rng.gauss(0.0, self.sigma) + level)
            gap = base * noise * (self._structure(a, b) if a else 1.0)
            if a == " " and rng.random() < self.pause_rate:
                gap += math.exp(rng.gauss(math.log(self.pause_ms), 0.5))
            return gap

        while i < len(text):
            ch = text[i]
            if ch != " " and rng.random() < self.error_rate:
                wrong = _neighbour(ch, rng)
                if not press(wrong, gap_to(previous, wrong)):
                    return log
                previous, typed_on = wrong, 1
                # Keep going for a key or two before noticing.
                for extra in text[i + 1 : i + 1 + rng.choice((0, 0, 1, 1, 2))]:
                    if not press(extra, gap_to(previous, extra)):
                        return log
                    previous, typed_on = extra, typed_on + 1
                notice = base * rng.uniform(1.5, 3.0)
                for n in range(typed_on):
                    step = notice if n == 0 else base * math.exp(rng.gauss(-0.1, 0.2))
                    if not press(BACKSPACE, step):
                        return log
                previous = BACKSPACE
            if not press(ch, gap_to(previous, ch) if previous != BACKSPACE else base * 1.2):
                return log
            previous = ch
            i += 1
        return log


def words_text(rng: random.Random, count: int, lang: str = "en") -> str:
    """``count`` common words of ``lang``, as a words test would give them."""
    from typogram.texts import pool

    words = pool(lang, "medium")
    return " ".join(rng.choice(words) for _ in range(count))


# -- bots ----------------------------------------------------------------------------
#
# Each bot types ``text`` perfectly at a chosen speed, stopping at ``until_ms``
# in a time test, and differs only in how it spaces its keys.

Gaps = Callable[[random.Random, int], list[float]]


def _log_of(text: str, gaps: list[float], until_ms: int | None) -> list[list[object]]:
    log: list[list[object]] = []
    t = 0.0
    for index, ch in enumerate(text):
        if index:
            t += max(1.0, gaps[index - 1])
        if until_ms is not None and t > until_ms:
            break
        log.append([int(t), ch])
    return log


def uniform(wpm: float) -> Gaps:
    """Every key the same interval apart."""
    return lambda rng, n: [12_000 / wpm] * n


def uniform_random(wpm: float) -> Gaps:
    """Intervals drawn evenly from ±50 % around the pace."""
    mean = 12_000 / wpm
    return lambda rng, n: [rng.uniform(0.5 * mean, 1.5 * mean) for _ in range(n)]


def gaussian(mean_ms: float, sd_ms: float) -> Gaps:
    """Normally distributed intervals (the issue's bot: mean 49 ms, sd 20 ms)."""
    return lambda rng, n: [rng.gauss(mean_ms, sd_ms) for _ in range(n)]


def lognormal(wpm: float, sigma: float = 0.4, pause_rate: float = 0.0) -> Gaps:
    """Right-skewed intervals like a person's, drawn independently of the keys, with
    hesitations at random places when ``pause_rate`` > 0."""
    median = 12_000 / wpm / math.exp(sigma**2 / 2)

    def gaps(rng: random.Random, n: int) -> list[float]:
        out = []
        for _ in range(n):
            gap = median * math.exp(rng.gauss(0.0, sigma))
            if rng.random() < pause_rate:
                gap += math.exp(rng.gauss(math.log(700), 0.5))
            out.append(gap)
        return out

    return gaps


def transplanted(wpm: float) -> Gaps:
    """A real-looking log of *another* text, its intervals replayed on this one and
    scaled to ``wpm`` (the timing of a person, detached from the keys)."""

    def gaps(rng: random.Random, n: int) -> list[float]:
        other = words_text(rng, n // 4 + 10)
        source = Typist.draw(rng).type(other, rng)
        times = [float(t) for t, key in source if key != BACKSPACE]  # type: ignore[arg-type]
        raw = [b - a for a, b in itertools.pairwise(times)]
        while len(raw) < n:
            raw += raw
        scale = 12_000 / wpm / (sum(raw[:n]) / n)
        return [g * scale for g in raw[:n]]

    return gaps


def bot_log(
    gaps: Gaps, text: str, rng: random.Random, until_ms: int | None = None
) -> list[list[object]]:
    return _log_of(text, gaps(rng, len(text)), until_ms)


def scaled(log: list[list[object]], factor: float) -> list[list[object]]:
    """``log`` replayed ``1 / factor`` times as fast (times multiplied by ``factor``)."""
    return [[int(int(t) * factor), key] for t, key in log]  # type: ignore[call-overload]
