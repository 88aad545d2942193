"""Anti-cheat report: how many bots the checks catch, how many people they wrong.

Every log is replayed, scored and judged exactly as ``POST /api/v1/results``
does (``typogram.typing`` + ``typogram.anticheat`` with the default limits),
on the tests that have boards: words-25, words-50, time-15 and time-60
(English, medium). A log counts as *detected* when the verdict is ``flag``
or ``reject``.

* Accounts: what the server knows of a user comes from ``HISTORY`` earlier
  words-25 tests: the best raw WPM (the history rule) and the rhythm
  profile (``typogram.rhythm``) of those the checks accepted.
* Human-like logs: ``bench.typists.Typist`` (speed, rhythm, errors and
  corrections from published typing statistics; docs/benchmarks.md), each
  on an account whose history the same typist typed.
* Bots: see ``STRATEGIES``, in three situations (``SCENARIOS``): a new
  account (no history; 60-200 WPM, where cheating pays), the player's own
  account (the history typed by the player, the bot at the player's pace to
  1.3 times it: under the history rule's ratio), and an account the bot
  built itself (every one of its history's results let through). "own log
  replayed faster" is a person's own log replayed 1.5-2 times as fast on
  their account. ``mimic`` is the human model itself driven at 120-170 WPM
  on a new account: no timing check can tell it from a person, so it is
  reported apart and not counted in the bots' rate.

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
from typogram import anticheat, rhythm, typing

LIMITS = anticheat.Limits()
HISTORY = 10  # earlier tests behind an account (the default typing_history_min_results)
Log = list[Any]  # a keystroke log: [ms, key] pairs as the API takes them
# Board tests and how often they are taken (words-25 the most).
TESTS: tuple[tuple[str, int, int | None, float], ...] = (
    ("words-25", 25, None, 0.35),
    ("words-50", 50, None, 0.15),
    ("time-15", 200, 15, 0.25),
    ("time-60", 400, 60, 0.25),
)


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


def judged(case: Case, log: Log, account: Account | None) -> tuple[str, float, tuple[str, ...]]:
    run = typing.replay(case.text, log)
    result = typing.score(run, seconds=case.seconds)
    best, profile = (account.best, account.profile) if account else (None, None)
    verdict, _ = anticheat.judge(run, result, LIMITS, best_wpm=best, profile=profile)
    return verdict.action, result.raw_wpm, verdict.codes


def _until(case: Case) -> int | None:
    return None if case.seconds is None else case.seconds * 1000 + 300


@dataclass(frozen=True, slots=True)
class Account:
    """What the server knows of an account (``None`` fields: not enough history)."""

    best: float | None
    profile: rhythm.Profile | None
    pace: float  # the mean raw WPM of its history


def account_of(
    make_log: Callable[[str], Log], rng: random.Random, *, judge: bool = True
) -> Account:
    """The account ``make_log`` built by typing ``HISTORY`` words-25 tests, each judged
    as the server would and folded in when accepted (``judge=False``: all folded)."""
    best, profile = 0.0, None
    speeds: list[float] = []
    for _ in range(HISTORY):
        text = T.words_text(rng, 25)
        run = typing.replay(text, make_log(text))
        result = typing.score(run)
        if judge:
            established = len(speeds) >= LIMITS.rhythm_min_results
            verdict, _ = anticheat.judge(
                run,
                result,
                LIMITS,
                best_wpm=best if established else None,
                profile=profile,
            )
            if verdict.action != "accept":
                continue
        best = max(best, result.raw_wpm)
        profile = rhythm.fold(profile, result)
        speeds.append(result.raw_wpm)
    pace = sum(speeds) / len(speeds) if speeds else 0.0
    if len(speeds) < LIMITS.rhythm_min_results:
        return Account(None, None, pace)
    return Account(best, profile, pace)


def person_account(typist: T.Typist, rng: random.Random) -> Account:
    return account_of(lambda text: typist.type(text, rng), rng)


# A bot strategy: (rng, case, wpm) -> its log of the case at about ``wpm``.
Strategy = Callable[[random.Random, Case, float], Log]


def _bot(make: Callable[[float], T.Gaps]) -> Strategy:
    def run(rng: random.Random, case: Case, wpm: float) -> Log:
        until = None if case.seconds is None else case.seconds * 1000
        return T.bot_log(make(wpm), case.text, rng, until)

    return run


def _speed(rng: random.Random) -> float:
    return rng.uniform(60, 200)


def _gaussian(wpm: float) -> T.Gaps:
    mean = 12_000 / wpm
    return T.gaussian(mean, 0.35 * mean)


STRATEGIES: dict[str, Strategy] = {
    "uniform (one interval)": _bot(T.uniform),
    "uniform ±50 %": _bot(T.uniform_random),
    "gaussian 49±20 ms": _bot(lambda wpm: T.gaussian(49, 20)),  # ~245 WPM, whatever is asked
    "gaussian ±35 %": _bot(_gaussian),
    "log-normal i.i.d.": _bot(T.lognormal),
    "log-normal + pauses": _bot(lambda wpm: T.lognormal(wpm, pause_rate=0.03)),
    "human timing, other text": _bot(T.transplanted),
}


def replayed_faster(rng: random.Random, case: Case) -> tuple[Log, Account]:
    """A person's own log of this text replayed 1.5-2 times as fast, on their account."""
    typist = T.Typist.draw(rng)
    account = person_account(typist, rng)
    log = typist.type(
        case.text, rng, until_ms=None if case.seconds is None else case.seconds * 2000
    )
    faster: Log = T.scaled(log, rng.uniform(0.5, 0.67))
    if case.seconds is not None:
        faster = [k for k in faster if k[0] <= case.seconds * 1000 + 300]
    return faster, account


def _mimic(rng: random.Random, case: Case) -> Log:
    typist = T.Typist.draw(rng, wpm=rng.uniform(120, 170))
    return typist.type(case.text, rng, until_ms=_until(case))


# Where a bot plays: (rng, strategy) -> (the account, the WPM the bot runs at).
Scenario = Callable[[random.Random, Strategy], tuple[Account | None, float]]


def new_account(rng: random.Random, strategy: Strategy) -> tuple[Account | None, float]:
    return None, _speed(rng)


def own_account(rng: random.Random, strategy: Strategy) -> tuple[Account | None, float]:
    """The player's account, its history typed by the player; the bot runs at the
    player's own pace to 1.3 times it (under the history rule's ratio)."""
    account = person_account(T.Typist.draw(rng), rng)
    return account, max(15.0, account.pace) * rng.uniform(1.0, 1.3)


def bots_account(rng: random.Random, strategy: Strategy) -> tuple[Account | None, float]:
    """An account the bot built at one speed, every result of it let through (the
    most a history a bot built can hold)."""
    wpm = _speed(rng)

    def log(text: str) -> Log:
        return strategy(rng, Case("words-25", text, None), wpm)

    return account_of(log, rng, judge=False), wpm


SCENARIOS: dict[str, Scenario] = {
    "new accounts (no history)": new_account,
    "the player's own account (history typed by the player)": own_account,
    "accounts the bot built": bots_account,
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
        account = person_account(typist, rng)
        log = typist.type(case.text, rng, until_ms=_until(case))
        action, _, codes = judged(case, log, account)
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

    header = f"{'bot strategy':<28} {'logs':>5} {'refused':>9} {'flagged':>9} {'detected':>9}"
    for title, scenario in SCENARIOS.items():
        print(f"\n{title}\n{header}  median WPM")
        caught = total = 0
        for name, strategy in STRATEGIES.items():
            outcomes = []
            for _ in range(args.bots):
                case = draw_case(rng)
                played_on, wpm = scenario(rng, strategy)
                outcomes.append(judged(case, strategy(rng, case, wpm), played_on))
            caught, total = caught + _row(name, outcomes), total + args.bots
        if scenario is own_account:
            cases = [draw_case(rng) for _ in range(args.bots)]
            outcomes = [judged(case, *replayed_faster(rng, case)) for case in cases]
            caught, total = caught + _row("own log replayed faster", outcomes), total + args.bots
        print(f"{'all bot strategies':<28} {total:>5} {'':>9} {'':>9} {pct(caught / total):>9}")
        if scenario is new_account:
            cases = [draw_case(rng) for _ in range(args.bots)]
            _row("mimic (the human model)", [judged(c, _mimic(rng, c), None) for c in cases])
    print(f"({time.monotonic() - started:.0f} s)")


def _row(name: str, outcomes: list[tuple[str, float, tuple[str, ...]]]) -> int:
    """Print one strategy's line; returns how many of its logs were detected."""
    n = len(outcomes)
    refused = sum(action == "reject" for action, _, _ in outcomes)
    flags = sum(action == "flag" for action, _, _ in outcomes)
    speeds = sorted(wpm for _, wpm, _ in outcomes)
    print(
        f"{name:<28} {n:>5} {pct(refused / n):>9} {pct(flags / n):>9}"
        f" {pct((refused + flags) / n):>9}  {speeds[n // 2]:.0f}"
    )
    return refused + flags


if __name__ == "__main__":
    main()
