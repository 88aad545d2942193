"""``python -m bench.chaos [--runs N] [--small] [--set NAME=VALUE …] [scenario …]``: run
chaos scenarios, print each run's figures and, per scenario, the spread over the runs; exit
1 when an invariant broke. Without names, every scenario runs (``bench/chaos/scenarios.py``).
``--set rate=200`` overrides a size or setting of the named scenarios (a number)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bench.chaos.outcome import Outcome, summary
from bench.chaos.scenarios import SCENARIOS


async def _main(names: list[str], runs: int, small: bool, overrides: dict[str, float]) -> bool:
    held = True
    for name in names:
        scenario = SCENARIOS[name]
        outcomes: list[Outcome] = []
        for run in range(runs):
            async with asyncio.timeout(scenario.limit_s):
                outcome = await scenario(small=small, **overrides)
            outcomes.append(outcome)
            print(f"run {run + 1}: {outcome.line()}", flush=True)
            held = held and not outcome.problems
        print(f"{name}, {runs} run(s):")
        print("\n".join(summary(outcomes)), flush=True)
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(SCENARIOS)} (all)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--small", action="store_true", help="the sizes the test suite runs")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="e.g. rate=200"
    )
    args = parser.parse_args()
    overrides: dict[str, float] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = int(value) if value.isdigit() else float(value)
        except ValueError:
            parser.error(f"--set {item}: NAME=NUMBER expected")
    for name in args.names or list(SCENARIOS):
        if unknown := SCENARIOS[name].unknown(overrides):
            parser.error(f"--set: {name} has no parameter {', '.join(unknown)}")
    if unknown := [name for name in args.names if name not in SCENARIOS]:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    logging.basicConfig(level=logging.ERROR)  # the outage lines are expected here
    with open("/proc/loadavg") as loadavg:
        print(f"load average before: {loadavg.read().strip()}", flush=True)
    held = asyncio.run(_main(args.names or list(SCENARIOS), args.runs, args.small, overrides))
    with open("/proc/loadavg") as loadavg:
        print(f"load average after: {loadavg.read().strip()}")
    sys.exit(0 if held else 1)


if __name__ == "__main__":
    main()
