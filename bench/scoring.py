"""Scoring on the submit path: ``replay`` + ``score`` + ``judge`` per keystroke log, in µs.

Pure CPU, no server: the work ``POST /api/v1/results`` does per submission
(a race finish does the same). Logs come from ``bench.typists`` (human-like,
with corrected errors and pauses), timed with ``time.process_time`` so other
jobs on the machine matter less than for wall-clock numbers. Cases:

* ``words-25`` / ``words-50`` -- a words test typed to the end at ~75 WPM,
* ``time-60`` -- a 60-second time test at ~80 WPM on a 1,500-character text.

Each case runs twice: for a newcomer, and for an established user (judged
against a rhythm profile of ten earlier results, which the accepted result is
then folded into and encoded for the cache, as ``rest.results`` does).

Run::

    python -m bench.scoring
    python -m bench.scoring --seconds 2 --repeat 5
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.typists import Typist, words_text
from typogram import anticheat, rhythm, typing

LIMITS = anticheat.Limits()


def _case(mode: str, count: int, seed: int, *, established: bool) -> Callable[[], Any]:
    rng = random.Random(seed)
    typist = Typist.draw(rng, wpm=78.0)
    profile = None
    if established:
        for _ in range(10):
            earlier = words_text(rng, 25)
            profile = rhythm.fold(
                profile, typing.score(typing.replay(earlier, typist.type(earlier, rng)))
            )
    if mode == "words":
        text = words_text(rng, count)
        log = typist.type(text, rng)
        seconds = None
    else:
        text = words_text(rng, 300)
        log = typist.type(text, rng, until_ms=count * 1000 + 400)
        seconds = count

    def run() -> Any:
        run = typing.replay(text, log)
        result = typing.score(run, seconds=seconds)
        verdict = anticheat.judge(run, result, LIMITS, profile=profile)
        if profile is not None:
            rhythm.encode(rhythm.fold(profile, result))
        return verdict

    run.keys = len(log)  # type: ignore[attr-defined]
    return run


def _timed(body: Callable[[], Any], seconds: float) -> float:
    """µs per call of ``body`` over ``seconds`` of CPU."""
    calls = 0
    started = time.process_time()
    while (spent := time.process_time() - started) < seconds:
        for _ in range(20):
            body()
        calls += 20
    return spent / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case")
    args = parser.parse_args()
    cases = {
        f"{name}{suffix}": _case(mode, count, seed, established=bool(suffix))
        for name, mode, count, seed in (
            ("words-25", "words", 25, 1),
            ("words-50", "words", 50, 2),
            ("time-60", "time", 60, 3),
        )
        for suffix in ("", " +profile")
    }
    print(f"{'case':<18} {'keys':>5} {'µs per score (runs)':<36} median")
    for name, body in cases.items():
        runs = [_timed(body, args.seconds) for _ in range(args.repeat)]
        shown = ", ".join(f"{r:.0f}" for r in runs)
        keys = body.keys  # type: ignore[attr-defined]
        print(f"{name:<18} {keys:>5} {shown:<36} {statistics.median(runs):.0f}")


if __name__ == "__main__":
    main()
