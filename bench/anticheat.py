"""Anti-cheat report: how many bots the checks catch, how many people they wrong.

Every log is replayed, scored and judged exactly as ``POST /api/v1/results``
does (``typogram.typing`` + ``typogram.anticheat`` with the default limits),
on the tests that have boards: words-25, words-50, time-15 and time-60
(English, medium). A log counts as *detected* when the verdict is ``flag``
or ``reject``.

* Human-like logs: ``bench.typists.Typist`` (speed, rhythm, errors and
  corrections from published typing statistics; docs/benchmarks.md). Each
  typist's *best so far* (for the history rule) is the best raw WPM of two
  earlier tests the same typist typed.
* Bots (new accounts, no history, unless said): see ``STRATEGIES``; speeds
  are drawn from 60-200 WPM, where cheating pays. ``mimic`` is the human
  model itself driven at 120-170 WPM: no timing check can tell it from a
  person, so it is reported apart and not counted in the bots' rate.

Run::

    python -m bench.anticheat
    python -m bench.anticheat --humans 4000 --bots 400 --seed 2
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import typists as T
from typogram import anticheat, typing

LIMITS = anticheat.Limits()
# Board tests and how often they are taken (words-25 the most).
TESTS: tuple[tuple[str, int, int | None, float], ...] = (
    ("words-25", 25, None, 0.35),
    ("words-50", 50, None, 0.15),
    ("time-15", 200, 15, 0.25),
    ("time-60", 400, 60, 0.25),
)

Log = list[Any]  # a keystroke log: [ms, key] pairs as the API takes them


@dataclass(frozen=True, slots=True)
class Case:
    kind: str
    text: str
    seconds: int | None


def draw_case(rng: random.Random) -> Case:
    pick = rng.random()
    chosen = TESTS[-1]
    for test in TESTS:
        pick -= test[3]
        if pick <= 0:
            chosen = test
            break
    kind, words, seconds, _ = chosen
    return Case(kind, T.words_text(rng, words), seconds)


def judged(case: Case, log: Log, best: float | None) -> tuple[str, float, tuple[str, ...]]:
    run = typing.replay(case.text, log)
    result = typing.score(run, seconds=case.seconds)
    verdict, _ = anticheat.judge(run, result, LIMITS, best_wpm=best)
    return verdict.action, result.raw_wpm, verdict.codes


def _until(case: Case) -> int | None:
    return None if case.seconds is None else case.seconds * 1000 + 300


def best_of(typist: T.Typist, rng: random.Random, tests: int = 2) -> float:
    """The typist's best raw WPM over ``tests`` earlier words-25 tests."""
    best = 0.0
    for _ in range(tests):
        text = T.words_text(rng, 25)
        result = typing.score(typing.replay(text, typist.type(text, rng)))
        best = max(best, result.raw_wpm)
    return best


# A strategy: (rng, case) -> (log, the account's best WPM so far or None).
Strategy = Callable[[random.Random, Case], tuple[Log, float | None]]


def _bot(make: Callable[[random.Random], T.Gaps]) -> Strategy:
    def run(rng: random.Random, case: Case) -> tuple[Log, float | None]:
        until = None if case.seconds is None else case.seconds * 1000
        return T.bot_log(make(rng), case.text, rng, until), None

    return run


def _speed(rng: random.Random) -> float:
    return rng.uniform(60, 200)


def _replayed_faster(rng: random.Random, case: Case) -> tuple[Log, float | None]:
    """A person's own log of this text replayed 1.5-2 times as fast, on their account."""
    typist = T.Typist.draw(rng)
    best = best_of(typist, rng)
    log = typist.type(
        case.text, rng, until_ms=None if case.seconds is None else case.seconds * 2000
    )
    faster: Log = T.scaled(log, rng.uniform(0.5, 0.67))
    if case.seconds is not None:
        faster = [k for k in faster if k[0] <= case.seconds * 1000 + 300]
    return faster, best


def _mimic(rng: random.Random, case: Case) -> tuple[Log, float | None]:
    typist = T.Typist.draw(rng, wpm=rng.uniform(120, 170))
    return typist.type(case.text, rng, until_ms=_until(case)), None


STRATEGIES: dict[str, Strategy] = {
    "uniform (one interval)": _bot(lambda rng: T.uniform(_speed(rng))),
    "uniform ±50 %": _bot(lambda rng: T.uniform_random(_speed(rng))),
    "gaussian 49±20 ms": _bot(lambda rng: T.gaussian(49, 20)),
    "gaussian ±35 %": _bot(lambda rng: (lambda m: T.gaussian(m, 0.35 * m))(12_000 / _speed(rng))),
    "log-normal i.i.d.": _bot(lambda rng: T.lognormal(_speed(rng))),
    "log-normal + pauses": _bot(lambda rng: T.lognormal(_speed(rng), pause_rate=0.03)),
    "human timing, other text": _bot(lambda rng: T.transplanted(_speed(rng))),
    "own log replayed faster": _replayed_faster,
}


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % confidence interval of a rate (Wilson score)."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--humans", type=int, default=2000, help="human-like logs")
    parser.add_argument("--bots", type=int, default=200, help="logs per bot strategy")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.monotonic()

    flagged: dict[str, int] = {}
    by_kind: dict[str, list[int]] = {}
    for _ in range(args.humans):
        case = draw_case(rng)
        typist = T.Typist.draw(rng)
        typist_best = best_of(typist, rng)
        action, _, codes = judged(
            case, typist.type(case.text, rng, until_ms=_until(case)), typist_best
        )
        counts = by_kind.setdefault(case.kind, [0, 0])
        counts[1] += 1
        if action != "accept":
            counts[0] += 1
            for code in codes:
                flagged[code] = flagged.get(code, 0) + 1
    wrong = sum(c[0] for c in by_kind.values())
    low, high = wilson(wrong, args.humans)
    print(
        f"human-like logs: {args.humans}, flagged or refused {wrong} = {pct(wrong / args.humans)}"
        f" (95 % CI {pct(low)}-{pct(high)})"
    )
    for kind, (bad, n) in sorted(by_kind.items()):
        print(f"  {kind:<9} {bad:>4} / {n:<5} {pct(bad / n)}")
    if flagged:
        print("  reasons: " + ", ".join(f"{c} {n}" for c, n in sorted(flagged.items())))

    print()
    header = f"{'bot strategy':<28} {'logs':>5} {'refused':>9} {'flagged':>9} {'detected':>9}"
    print(header + "  median WPM")
    caught = total = 0
    for name, strategy in [*STRATEGIES.items(), ("mimic (the human model)", _mimic)]:
        refused = flags = 0
        speeds: list[float] = []
        for _ in range(args.bots):
            case = draw_case(rng)
            log, best = strategy(rng, case)
            action, wpm, _ = judged(case, log, best)
            speeds.append(wpm)
            refused += action == "reject"
            flags += action == "flag"
        speeds.sort()
        detected = refused + flags
        if name in STRATEGIES:
            caught, total = caught + detected, total + args.bots
        print(
            f"{name:<28} {args.bots:>5} {pct(refused / args.bots):>9} {pct(flags / args.bots):>9}"
            f" {pct(detected / args.bots):>9}  {speeds[len(speeds) // 2]:.0f}"
        )
    print(f"{'all bot strategies':<28} {total:>5} {'':>9} {'':>9} {pct(caught / total):>9}")
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
