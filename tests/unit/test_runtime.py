"""``workers.runtime``: batches of concurrent events, retries alone, DLQ, no-dedupe groups."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from tests.conftest import make_settings
from typogram import keys
from typogram.adapters.memory import MemoryCache
from typogram.metrics import KernelMetrics
from typogram.platform import Platform
from typogram.ports import Event, Header
from workers.runtime import BatchAborted, Batcher, Group, GroupRunner


class RecordingLog:
    def __init__(self) -> None:
        self.dead: list[tuple[str, bytes]] = []

    async def publish_raw(
        self, topic: str, value: bytes, key: str | None = None, headers: Sequence[Header] = ()
    ) -> None:
        self.dead.append((topic, value))


def event(n: int) -> Event:
    return Event(type="t", data={"n": n}, key=str(n), id=f"e{n}")


async def stub_platform() -> Any:
    cache = MemoryCache()
    await cache.__aenter__()
    return SimpleNamespace(
        settings=make_settings(worker_max_retries=2, worker_retry_backoff_s=0.0),
        metrics=KernelMetrics(CollectorRegistry()),
        cache=cache,
        events=RecordingLog(),
    )


async def test_concurrent_adds_share_one_flush_and_each_waits_for_it() -> None:
    flushed: list[list[int]] = []
    gate = asyncio.Event()

    async def flush(topic: str, events: list[Event]) -> None:
        await gate.wait()
        flushed.append([e.data["n"] for e in events])

    batcher = Batcher(flush, linger_s=0.001)
    adds = [asyncio.create_task(batcher.add("t", event(n))) for n in range(5)]
    await asyncio.sleep(0.01)
    assert not any(task.done() for task in adds)  # nobody returns before its batch is done
    gate.set()
    await asyncio.gather(*adds)
    assert flushed == [[0, 1, 2, 3, 4]] and (batcher.batches, batcher.events) == (1, 5)


async def test_events_arriving_during_a_flush_go_in_the_next_one() -> None:
    flushed: list[list[int]] = []

    async def flush(topic: str, events: list[Event]) -> None:
        flushed.append([e.data["n"] for e in events])
        await asyncio.sleep(0.01)

    batcher = Batcher(flush, linger_s=0.0, max_batch=2)
    first = [asyncio.create_task(batcher.add("t", event(n))) for n in range(3)]
    await asyncio.sleep(0.005)
    late = asyncio.create_task(batcher.add("t", event(3)))
    await asyncio.gather(*first, late)
    assert flushed == [[0, 1], [2, 3]]


async def test_a_failed_flush_raises_in_every_event_of_its_batch() -> None:
    async def flush(topic: str, events: list[Event]) -> None:
        raise ValueError("database down")

    batcher = Batcher(flush, linger_s=0.0)
    results = await asyncio.gather(
        *(batcher.add("t", event(n)) for n in range(3)), return_exceptions=True
    )
    assert [type(r) for r in results] == [ValueError] * 3


async def test_cancelling_the_flushing_caller_aborts_the_others() -> None:
    async def flush(topic: str, events: list[Event]) -> None:
        await asyncio.sleep(10)

    batcher = Batcher(flush, linger_s=0.0)
    leader = asyncio.create_task(batcher.add("t", event(0)))
    await asyncio.sleep(0)
    follower = asyncio.create_task(batcher.add("t", event(1)))
    await asyncio.sleep(0.01)
    leader.cancel()
    with pytest.raises(BatchAborted):
        await follower
    with pytest.raises(asyncio.CancelledError):
        await leader
    # The batcher is usable again afterwards.
    done: list[int] = []

    async def quick(topic: str, events: list[Event]) -> None:
        done.extend(e.data["n"] for e in events)

    batcher._flush = quick
    await batcher.add("t", event(2))
    assert done == [2]


async def test_a_poison_event_goes_to_the_dlq_alone_and_its_batch_mates_succeed() -> None:
    calls: list[list[int]] = []
    applied: list[int] = []

    async def handle_batch(platform: Platform, topic: str, events: Sequence[Event]) -> None:
        ns = [e.data["n"] for e in events]
        calls.append(ns)
        if 13 in ns:
            raise ValueError("poison")
        applied.extend(ns)

    async def handle(platform: Platform, topic: str, ev: Event) -> None:
        await handle_batch(platform, topic, [ev])

    platform = await stub_platform()
    group = Group(name="g", topics=("t",), handle=handle, handle_batch=handle_batch)
    runner = GroupRunner(cast(Platform, platform), group)
    raws = [event(n).encode() for n in (11, 12, 13, 14)]
    await asyncio.gather(*(runner.process("t", raw) for raw in raws))
    assert sorted(calls[0]) == [11, 12, 13, 14]  # the first attempt: one batch
    assert all(len(c) == 1 for c in calls[1:])  # every retry alone
    assert sorted(applied) == [11, 12, 14]
    assert [topic for topic, _ in platform.events.dead] == ["t.dlq"]
    assert Event.decode(platform.events.dead[0][1]).data == {"n": 13}
    # Processed events are marked: a redelivery is skipped without calling the handler.
    calls.clear()
    await runner.process("t", raws[0])
    assert calls == []


async def test_a_group_without_dedupe_runs_its_handler_on_every_delivery() -> None:
    seen: list[int] = []

    async def handle(platform: Platform, topic: str, ev: Event) -> None:
        seen.append(ev.data["n"])

    platform = await stub_platform()
    runner = GroupRunner(
        cast(Platform, platform), Group(name="g", topics=("t",), handle=handle, dedupe=False)
    )
    for _ in range(2):
        await runner.process("t", event(1).encode())
    assert seen == [1, 1]
    assert await platform.cache.get(keys.event_done("g", "e1")) is None
