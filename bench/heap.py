"""Run a module with tracemalloc at hand; SIGUSR1 writes a heap snapshot.

``python -m bench.heap OUT module [args…]``: the first SIGUSR1 starts tracing
(start-up runs untraced, at full speed); each SIGUSR1 collects garbage and
dumps a ``tracemalloc`` snapshot to ``OUT.0``, ``OUT.1``… (then an empty
``OUT.N.done`` once the file is complete). A snapshot holds what was allocated
since tracing started and is still alive, so the last one minus the first is
what a bench's step added (``GatewayProcess.snapshot``, ``bench.connections
--heap``). Tracing costs memory and CPU of its own: read the snapshots, not
the traced process's RSS or CPU.
"""

from __future__ import annotations

import gc
import runpy
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

FRAMES = 8  # of each allocation's stack: enough to tell the caller of a library


def snapshot_path(out: str, index: int) -> Path:
    return Path(f"{out}.{index}")


def done_path(out: str, index: int) -> Path:
    return Path(f"{out}.{index}.done")


def main() -> None:
    out, module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    taken = 0

    def dump(signum: int, frame: FrameType | None) -> None:
        nonlocal taken
        del signum, frame
        if not tracemalloc.is_tracing():
            tracemalloc.start(FRAMES)
        gc.collect()
        tracemalloc.take_snapshot().dump(str(snapshot_path(out, taken)))
        done_path(out, taken).touch()
        taken += 1

    signal.signal(signal.SIGUSR1, dump)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
