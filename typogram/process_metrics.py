"""Sampled health of the process itself: event-loop lag and garbage-collection pauses.

Both are sampled or event-driven, never on a hot path: the loop monitor is
one timer a few times a second; the GC hook runs only when a collection
does (rarely, with the thresholds ``roles.serve`` sets).
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any, Final, Self

from prometheus_client import Histogram

from typogram.tasks import Supervisor

LOOP_SAMPLE_S: Final = 0.25


class LoopMonitor:
    """Observes how late the loop wakes a ``LOOP_SAMPLE_S`` timer; owns one task."""

    def __init__(
        self,
        histogram: Histogram,
        interval_s: float = LOOP_SAMPLE_S,
        *,
        tasks: Supervisor | None = None,
    ) -> None:
        self._histogram = histogram
        self._tasks = tasks if tasks is not None else Supervisor()
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self.worst_s = 0.0  # the largest lag seen

    async def __aenter__(self) -> Self:
        self._task = self._tasks.start("loop-monitor", self._run(), lasting=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])  # never swallows our own cancellation

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            planned = loop.time() + self._interval_s
            await asyncio.sleep(self._interval_s)
            late = max(0.0, loop.time() - planned)
            self.worst_s = max(self.worst_s, late)
            self._histogram.observe(late)


class GcPauses:
    """Times every garbage collection through ``gc.callbacks`` while entered."""

    def __init__(self, histogram: Histogram) -> None:
        self._children = [histogram.labels(str(generation)) for generation in range(3)]
        self._started = 0.0
        self.collections = 0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            self._children[min(int(info.get("generation", 0)), 2)].observe(
                time.perf_counter() - self._started
            )
            self._started = 0.0
            self.collections += 1

    def __enter__(self) -> Self:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
