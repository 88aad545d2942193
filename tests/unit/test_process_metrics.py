"""Event-loop lag and GC pauses are observed (``typogram.process_metrics``)."""

from __future__ import annotations

import asyncio
import gc
import time

from prometheus_client import CollectorRegistry

from typogram.metrics import KernelMetrics
from typogram.process_metrics import GcPauses, LoopMonitor


def _count(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(f"{name}_count", labels or None)
    return value or 0.0


async def test_a_blocked_loop_shows_as_lag() -> None:
    registry = CollectorRegistry()
    metrics = KernelMetrics(registry)
    async with LoopMonitor(metrics.loop_lag, interval_s=0.01) as monitor:
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # noqa: ASYNC251 -- the loop is stuck on purpose: the timer fires late
        await asyncio.sleep(0.05)
    assert monitor.worst_s >= 0.15
    assert _count(registry, "typogram_event_loop_lag_seconds") >= 2


def test_every_collection_is_timed_by_generation_while_entered() -> None:
    registry = CollectorRegistry()
    metrics = KernelMetrics(registry)
    with GcPauses(metrics.gc_pause) as pauses:
        gc.collect()
        gc.collect(0)
    assert pauses.collections >= 2
    assert _count(registry, "typogram_gc_pause_seconds", generation="2") >= 1
    assert _count(registry, "typogram_gc_pause_seconds", generation="0") >= 1
    seen = pauses.collections
    gc.collect()  # no longer watched
    assert pauses.collections == seen and pauses._callback not in gc.callbacks
