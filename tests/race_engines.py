"""Two race engines ("a" and "b") on one in-memory cache, pub/sub and event log.

For unit tests of what crosses nodes (forwarding, pushes, fencing) without
sockets or servers; the clock is the test's, so leases and ticks move when
the test says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from gateway.races.engine import RaceEngine
from gateway.races.members import Watchers
from tests.conftest import Clock, make_settings
from typogram.adapters.memory_cache import MemoryCache
from typogram.adapters.memory_events import InProcessEventLog
from typogram.adapters.memory_pubsub import MemoryPubSub


@dataclass(frozen=True)
class Engines:
    cache: MemoryCache
    pubsub: MemoryPubSub
    a: RaceEngine
    b: RaceEngine
    here: Watchers | None  # a's own sessions' watchers (``watched=True``)
    there: Watchers | None  # b's


@asynccontextmanager
async def two_engines(
    clock: Clock, *, lease_s: float = 30.0, watched: bool = False
) -> AsyncIterator[Engines]:
    """Both engines started; stopped without releasing their leases on exit.
    ``watched``: each delivers its races' pushes to local ``Watchers``."""
    settings = make_settings(race_lease_s=lease_s, race_forward_timeout_s=2.0)
    async with (
        MemoryCache(clock=clock) as cache,
        MemoryPubSub() as pubsub,
        InProcessEventLog() as events,
    ):
        here, there = (Watchers(pubsub), Watchers(pubsub)) if watched else (None, None)
        a, b = (
            RaceEngine(
                settings,
                node_id=node,
                cache=cache,
                pubsub=pubsub,
                events=events,
                clock=clock,
                local=local,
            )
            for node, local in (("a", here), ("b", there))
        )
        await a.start()
        await b.start()
        try:
            yield Engines(cache, pubsub, a, b, here, there)
        finally:
            await a.stop(release=False)
            await b.stop(release=False)
