"""The pure race core on its own: ``rooms.race.handle`` calls per second of CPU.

No server, no I/O: one running race of five (a 995-character text, as in
``bench/races.py``) driven the way the gateway drives it, timed with
``time.process_time`` so other jobs on the machine matter less than for
wall-clock numbers. Cases:

* ``progress`` -- each racer's ``Progress`` in turn, ``pos`` +2, 100 ms apart
  (every call changes the state),
* ``tick idle`` -- a ``Tick`` on a race where nothing changed and nothing is due,
* ``tick changed`` -- ``Progress`` then ``Tick`` (the tick emits a ``race.state``),
  reported per pair,
* ``snapshot`` -- ``rooms.race_state.snapshot`` of the running race.

Run::

    python -m bench.race_core
    python -m bench.race_core --seconds 2 --repeat 5
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from rooms import race
from rooms.race_state import RaceConfig, RaceState, snapshot

TEXT = ("the quick brown fox jumps over a lazy dog " * 24)[:995].strip()
PLAYERS = 5
T0 = 1_000_000


def running_race() -> RaceState:
    state = RaceState("r1", TEXT, 1, "easy", "en", RaceConfig(countdown_ms=1000))
    for n in range(PLAYERS):
        state, _effects = race.handle(state, race.Join(f"u{n}", f"user {n}"), T0)
    state, _effects = race.handle(state, race.Start(), T0)
    state, _effects = race.handle(state, race.Tick(), T0 + 1_000)  # running, snapshot taken
    return state


def _timed(body: Callable[[int], int], seconds: float) -> float:
    """Run ``body(n)`` (returns how many operations it did) for ``seconds`` of CPU; ops/s."""
    done, n = 0, 0
    started = time.process_time()
    while (spent := time.process_time() - started) < seconds:
        done += body(n)
        n += 1
    return done / spent


def bench_progress(seconds: float) -> float:
    base = running_race()
    users = [f"u{n}" for n in range(PLAYERS)]
    state, now, pos = base, T0 + 1_000, 0

    def body(_: int) -> int:
        nonlocal state, now, pos
        if pos + 2 > len(TEXT):
            state, now, pos = base, T0 + 1_000, 0
        pos += 2
        now += 100
        for user in users:
            state, _effects = race.handle(state, race.Progress(user, pos, 0), now)
        return PLAYERS

    return _timed(body, seconds)


def bench_tick_idle(seconds: float) -> float:
    state = running_race()
    tick = race.Tick()

    def body(n: int) -> int:
        for i in range(100):
            race.handle(state, tick, T0 + 2_000 + n + i)
        return 100

    return _timed(body, seconds)


def bench_tick_changed(seconds: float) -> float:
    base = running_race()
    state, now, pos = base, T0 + 1_000, 0
    tick = race.Tick()

    def body(_: int) -> int:
        nonlocal state, now, pos
        if pos + 2 > len(TEXT):
            state, now, pos = base, T0 + 1_000, 0
        pos += 2
        now += 100
        state, _effects = race.handle(state, race.Progress("u0", pos, 0), now)
        state, effects = race.handle(state, tick, now + 10)
        assert effects, "a changed race snapshots on the tick"
        return 1

    return _timed(body, seconds)


def bench_snapshot(seconds: float) -> float:
    state = running_race()
    state, _effects = race.handle(state, race.Progress("u0", 2, 0), T0 + 1_500)

    def body(_: int) -> int:
        for _i in range(100):
            snapshot(state)
        return 100

    return _timed(body, seconds)


CASES: dict[str, Callable[[float], float]] = {
    "progress": bench_progress,
    "tick idle": bench_tick_idle,
    "tick changed": bench_tick_changed,
    "snapshot": bench_snapshot,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per case and run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best is kept")
    args = parser.parse_args()
    print("| case | calls/s (best) | µs / call |")
    print("|---|---:|---:|")
    for name, case in CASES.items():
        best = max(case(args.seconds) for _ in range(args.repeat))
        print(f"| {name} | {best:,.0f} | {1e6 / best:.2f} |", flush=True)


if __name__ == "__main__":
    main()
