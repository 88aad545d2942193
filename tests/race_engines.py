"""Two race engines ("a" and "b") on one in-memory cache, pub/sub and event log.

For unit tests of what crosses nodes (forwarding, pushes, fencing) without
sockets or servers; the clock is the test's, so leases and ticks move when
the test says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from gateway.races.engine import RaceEngine
from gateway.races.inbox import Replies
from gateway.races.members import Watchers
from gateway.races.messages import Matched, RaceCommand
from gateway.races.store import RaceStore
from tests.conftest import Clock, make_settings
from typogram.adapters.memory_cache import MemoryCache
from typogram.adapters.memory_events import InProcessEventLog
from typogram.adapters.memory_pubsub import MemoryPubSub
from typogram.adapters.memory_scripts import MemoryFencedWrites
from typogram.fencing import FencedWrites


@dataclass(frozen=True)
class Engines:
    cache: MemoryCache
    pubsub: MemoryPubSub
    a: RaceEngine
    b: RaceEngine
    here: Watchers | None  # a's own sessions' watchers (``watched=True``)
    there: Watchers | None  # b's


def store_n1(cache: MemoryCache, clock: Clock, fences: FencedWrites | None = None) -> RaceStore:
    """Node ``n1``'s race store on ``cache`` (fenced writes over it unless given)."""
    fenced = fences if fences is not None else MemoryFencedWrites(cache)
    return RaceStore(cache, fences=fenced, node_id="n1", state_ttl_s=60, lease_s=3, clock=clock)


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
                fences=MemoryFencedWrites(cache),
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


Serve = Callable[[str, RaceCommand], Awaitable[Replies | None]]
Pushes = Callable[[str, str, bytes], None]


async def not_owned(race_id: str, command: RaceCommand) -> Replies | None:
    return None


@dataclass
class InboxHandlerFake:
    """A ``RaceInbox``'s handler for tests: serves with ``serve``, hands pushes to
    ``pushes`` when given, and records the owner notices it hears."""

    serve: Serve = not_owned
    pushes: Pushes | None = None
    owners: list[tuple[str, str]] = field(default_factory=list)
    matches: list[Matched] = field(default_factory=list)

    async def serve_forwarded(self, race_id: str, command: RaceCommand) -> Replies | None:
        return await self.serve(race_id, command)

    async def matched(self, message: Matched) -> None:
        self.matches.append(message)

    def owner_moved(self, race_id: str, node: str) -> None:
        self.owners.append((race_id, node))

    def forwarded(self, race_id: str, node: str) -> None:
        pass

    def pushes_received(self, race_id: str, kind: str, push: bytes) -> None:
        if self.pushes is not None:
            self.pushes(race_id, kind, push)
