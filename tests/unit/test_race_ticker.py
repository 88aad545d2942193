"""The race ticker: snapshots only for changed races, idle races skipped until something is due."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from gateway.races.inbox import Replies
from gateway.races.store import RaceStore
from gateway.races.ticker import RaceTicker
from rooms import race
from rooms.race_state import RaceConfig, RaceState
from tests.conftest import Clock, until
from tests.race_engines import store_n1
from typogram import keys
from typogram.adapters.memory_cache import MemoryCache
from typogram.adapters.memory_pubsub import MemoryPubSub
from typogram.adapters.memory_scripts import MemoryFencedWrites

T0 = 1_000_000.0  # seconds
GO_MS = int(T0 * 1000) + 1_000


@dataclass
class Effects:
    """The engine's side of a ticker: records the effects it is asked to carry out."""

    later: list[tuple[str, race.Effect]]

    async def carry_out(self, race_id: str, effect: race.Effect, replies: Replies) -> None:
        self.later.append((race_id, effect))


def running(race_id: str) -> RaceState:
    state = RaceState(race_id, "abcde " * 20, 1, "easy", "en", RaceConfig(countdown_ms=1_000))
    for user in ("ada", "bob"):
        state, _ = race.handle(state, race.Join(user, user), int(T0 * 1000))
    state, _ = race.handle(state, race.Start(), int(T0 * 1000))
    return state


async def test_idle_races_are_not_ticked_until_something_is_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(T0)
    owned = {"r1": running("r1"), "r2": running("r2")}
    later: list[tuple[str, race.Effect]] = []

    ticks: list[str] = []
    real_handle = race.handle

    def counting(state: RaceState, event: race.Event, now_ms: int) -> race.Step:
        if isinstance(event, race.Tick):
            ticks.append(state.race_id)
        return real_handle(state, event, now_ms)

    monkeypatch.setattr(race, "handle", counting)
    async with MemoryCache() as cache, MemoryPubSub() as pubsub:
        seen: list[dict[str, Any]] = []
        await pubsub.subscribe(
            keys.channel_race("r1"), lambda _channel, payload: seen.append(orjson.loads(payload))
        )
        store = store_n1(cache, clock)
        ticker = RaceTicker(
            tick_ms=50, owned=owned, store=store, pubsub=pubsub, clock=clock, effects=Effects(later)
        )
        part = {"r1", "r2"}

        async def tick() -> None:
            await ticker._tick(part)
            await ticker.settle()  # its pushes are published in a task of their own

        clock.now = T0 + 1.5  # past start_at: both run, both changed
        await tick()
        assert sorted(ticks) == ["r1", "r2"] and [m["t"] for m in seen] == ["race.state"]
        assert seen[0]["d"]["phase"] == "running"

        ticks.clear()
        clock.now += 0.05
        await tick()  # nothing changed, nothing due: no Tick at all
        assert ticks == [] and len(seen) == 1

        progressed, _ = real_handle(owned["r1"], race.Progress("ada", 4, 0), GO_MS + 600)
        owned["r1"] = progressed  # the engine replaced the state: tick it again
        clock.now += 0.05
        await tick()
        assert ticks == ["r1"] and len(seen) == 2 and seen[1]["d"]["players"][0]["pos"] == 4

        ticks.clear()
        gone, _ = real_handle(owned["r2"], race.Disconnect("bob"), GO_MS + 700)
        owned["r2"] = gone
        await tick()  # a change: ticked once (snapshot), then idle again
        await tick()
        assert ticks == ["r2"]

        ticks.clear()
        clock.now = (GO_MS + 700 + gone.config.resume_ms) / 1000  # bob's window closes
        await tick()
        assert ticks == ["r2"] and owned["r2"].racers["bob"].forfeited
        assert later == []  # ada still types: the race goes on

        await tick()  # the forfeit's snapshot
        ticks.clear()
        await tick()
        assert ticks == []
        ticker.discard("r2")
        await tick()  # forgotten, so ticked like a new race
        assert ticks == ["r2"]


def counted_ticker(
    owned: dict[str, RaceState], store: RaceStore, pubsub: MemoryPubSub, clock: Clock
) -> tuple[RaceTicker, list[int]]:
    """A 10 ms ticker whose slices are counted (the size of each) as they run."""

    ticker = RaceTicker(
        tick_ms=10, owned=owned, store=store, pubsub=pubsub, clock=clock, effects=Effects([])
    )
    slices: list[int] = []
    real_tick = ticker._tick

    async def counting(part: set[str]) -> None:
        slices.append(len(part))
        await real_tick(part)

    ticker._tick = counting  # type: ignore[method-assign]
    return ticker, slices


async def test_a_node_owning_no_race_does_not_tick_until_one_is_added() -> None:
    clock = Clock(T0)
    owned: dict[str, RaceState] = {}

    async with MemoryCache() as cache, MemoryPubSub() as pubsub:
        store = store_n1(cache, clock)
        ticker, slices = counted_ticker(owned, store, pubsub, clock)
        task = asyncio.create_task(ticker.run())
        try:
            await asyncio.sleep(0.1)  # ten ticks' worth of time
            assert slices == []
            owned["r1"] = running("r1")
            ticker.add("r1")
            await asyncio.sleep(0.1)
            assert len(slices) >= 5 and sum(slices) >= 1  # ticking again, r1 among them
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await ticker.settle()


class HeldFences(MemoryFencedWrites):
    """Fenced writes that wait until ``release`` is set (Redis busy)."""

    def __init__(self, cache: MemoryCache) -> None:
        super().__init__(cache)
        self.release = asyncio.Event()
        self.writes = 0

    async def write_held(self, *args: Any, **kwargs: Any) -> list[str]:
        self.writes += 1
        await self.release.wait()
        return list(await super().write_held(*args, **kwargs))


async def test_a_slow_write_behind_does_not_hold_the_ticks_back() -> None:
    clock = Clock(T0)
    owned = {"r1": running("r1")}

    async with MemoryCache() as cache, MemoryPubSub() as pubsub:
        await cache.set(keys.race_owner("r1"), b"n1")
        fences = HeldFences(cache)
        store = store_n1(cache, clock, fences)
        ticker, slices = counted_ticker(owned, store, pubsub, clock)
        store.mark("r1")
        ticker.add("r1")
        task = asyncio.create_task(ticker.run())
        try:
            await until(lambda: fences.writes == 1)
            held_at = len(slices)
            await until(lambda: len(slices) >= held_at + 3 * 5)  # three more ticks, write out
            assert fences.writes == 1  # one write-behind at a time: the others wait their turn
            fences.release.set()
            await until(lambda: store.flushes == 1)
            assert await cache.get(keys.race_state("r1")) is not None
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            fences.release.set()
            await ticker.settle()
