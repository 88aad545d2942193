"""Run a module under cProfile timed by CPU time, not wall time.

``python -m bench.cpu_profile OUT module [args…]``. On a shared machine a
wall-clock profile charges a function for the time the process sat
descheduled (a socket write that wakes a client on the same core looks
slow); process CPU time charges only what this process ran. The clock costs
~0.7 µs per call, so totals inflate: compare proportions, not absolute times.

With ``BENCH_PROFILE_ON_SIGNAL=1`` the profiler starts off and
SIGUSR1 / SIGUSR2 switch it on / off, so a bench profiles only its
measured steps (``GatewayProcess.profiling``); the stats are written at exit.
"""

from __future__ import annotations

import cProfile
import os
import runpy
import signal
import sys
import time
from types import FrameType


def main() -> None:
    out, module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    profiler = cProfile.Profile(time.process_time)

    def switch(signum: int, frame: FrameType | None) -> None:
        del frame
        if signum == signal.SIGUSR1:
            profiler.enable()
        else:
            profiler.disable()

    if os.environ.get("BENCH_PROFILE_ON_SIGNAL") == "1":
        signal.signal(signal.SIGUSR1, switch)
        signal.signal(signal.SIGUSR2, switch)
    else:
        profiler.enable()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        profiler.disable()
        profiler.dump_stats(out)


if __name__ == "__main__":
    main()
