"""Redis Sentinel failover under load: how long until cache, pub/sub and queues work again.

``python -m bench.redis_failover --runs 3`` starts a Redis master, a replica
and three sentinels of its own (``tests/clusters.py``; Debian's
``redis-server``, ``redis-sentinel``), puts the platform's Redis adapters
under a steady load (rate-limit counters, cache writes and reads, PUBLISH to
a subscribed channel, match-queue claims), SIGKILLs the master and reports,
per run, the time from the kill until:

* ``promoted``: the sentinels name a new master;
* ``cache``: a cache command succeeds again;
* ``pubsub``: a message published after the kill reaches the subscriber
  (the subscriber connection found the new master and subscribed again);
* ``queue``: a match-queue script succeeds again;

and what was lost: counter increments acknowledged by the old master that
the new one does not have (replication is asynchronous), and messages
published successfully that never arrived. The killed node rejoins as a
replica before the next run. ``run_once`` is shared with the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from typogram.adapters.redis import RedisCache, RedisPubSub
from typogram.adapters.redis_queues import RedisMatchQueues
from typogram.settings import Settings, load

LOAD_PERIOD_S = 0.005  # one round of every load kind this often
RECOVERY_LIMIT_S = 60.0


class Group(Protocol):
    """What a run needs of the cluster (``tests.clusters.RedisSentinelGroup``)."""

    @property
    def sentinels(self) -> list[str]: ...
    def kill_master(self) -> int: ...
    def wait_failover(self, old_port: int, timeout_s: float = ...) -> int: ...
    def rejoin(self, port: int) -> None: ...


@dataclass
class Figures:
    promoted_s: float | None = None
    cache_s: float | None = None
    pubsub_s: float | None = None
    queue_s: float | None = None
    failed_commands: int = 0
    lost_increments: int = 0
    lost_messages: int = 0
    resubscribes: int = 0


@dataclass
class _Load:
    killed_at: float = 0.0
    last_acked: int = 0  # the counter's highest value acknowledged before the kill
    first_after: int | None = None  # its first value acknowledged after the kill
    published: set[int] = field(default_factory=set)
    received: dict[int, float] = field(default_factory=dict)  # seq → when it arrived
    published_at: dict[int, float] = field(default_factory=dict)


def sentinel_settings(sentinels: list[str], prefix: str) -> Settings:
    return load(
        env={},
        environment="test",
        redis_url="redis://",
        redis_sentinels=tuple(sentinels),
        redis_prefix=prefix,
        backend_connect_timeout_s=1.0,
    )


async def run_once(group: Group, settings: Settings) -> Figures:
    """One kill of the master under load; the killed node rejoins before returning."""
    figures, load_state = Figures(), _Load()
    channel = "failover"
    async with (
        RedisCache.from_settings(settings) as cache,
        RedisPubSub.from_settings(settings) as publisher,
        RedisPubSub.from_settings(settings) as subscriber,
        RedisMatchQueues(cache) as queue,  # on the cache's connection, as on the platform
    ):

        def on_message(_channel: str, payload: bytes) -> None:
            load_state.received.setdefault(int(payload), time.monotonic())

        await subscriber.subscribe(channel, on_message)
        stop = asyncio.Event()

        async def cache_load() -> None:
            while not stop.is_set():
                try:
                    (value,) = await cache.incr_each(["rate"], ttl=600)
                    await cache.set("last", str(value).encode(), ttl=600)
                    await cache.get("last")
                    if not load_state.killed_at:
                        load_state.last_acked = value
                    elif load_state.first_after is None:
                        load_state.first_after = value
                        figures.cache_s = time.monotonic() - load_state.killed_at
                except Exception:  # down or failing over: counted, tried again
                    figures.failed_commands += 1
                await asyncio.sleep(LOAD_PERIOD_S)

        async def publish_load() -> None:
            seq = 0
            while not stop.is_set():
                seq += 1
                with contextlib.suppress(Exception):
                    await publisher.publish(channel, str(seq).encode())
                    load_state.published.add(seq)
                    load_state.published_at[seq] = time.monotonic()
                await asyncio.sleep(LOAD_PERIOD_S)

        async def queue_load() -> None:
            user = f"u{uuid.uuid4().hex[:8]}"
            while not stop.is_set():
                try:
                    await queue.claim(user, "race", 60)
                    await queue.release(user, "race")
                    if load_state.killed_at and figures.queue_s is None:
                        figures.queue_s = time.monotonic() - load_state.killed_at
                except Exception:
                    figures.failed_commands += 1
                await asyncio.sleep(LOAD_PERIOD_S * 4)

        def pubsub_recovered() -> float | None:
            for seq, arrived in load_state.received.items():
                if load_state.published_at.get(seq, 0.0) > load_state.killed_at:
                    return arrived - load_state.killed_at
            return None

        async with asyncio.TaskGroup() as tasks:
            for work in (cache_load(), publish_load(), queue_load()):
                tasks.create_task(work)
            await asyncio.sleep(1.0)  # steady state first
            old = await asyncio.to_thread(group.kill_master)
            load_state.killed_at = time.monotonic()
            await asyncio.to_thread(group.wait_failover, old, RECOVERY_LIMIT_S)
            figures.promoted_s = time.monotonic() - load_state.killed_at
            deadline = load_state.killed_at + RECOVERY_LIMIT_S
            while time.monotonic() < deadline:
                figures.pubsub_s = pubsub_recovered()
                if None not in (figures.pubsub_s, figures.cache_s, figures.queue_s):
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.5)  # deliveries in flight arrive
            stop.set()
        figures.resubscribes = int(subscriber.statistics()["reconnects"])
    if load_state.first_after is not None:
        figures.lost_increments = max(0, load_state.last_acked + 1 - load_state.first_after)
    figures.lost_messages = len(load_state.published - set(load_state.received))
    await asyncio.to_thread(group.rejoin, old)
    return figures


def _spread(found: list[float | None]) -> str:
    values = [v for v in found if v is not None]
    if len(values) < len(found):
        return f"did not recover in {len(found) - len(values)} run(s)"
    return f"{min(values):.2f}-{max(values):.2f} (median {statistics.median(values):.2f})"


async def _main(runs: int, down_after_ms: int) -> None:
    from tests.clusters import RedisSentinelGroup

    with tempfile.TemporaryDirectory() as root:
        group = RedisSentinelGroup(Path(root), down_after_ms=down_after_ms)
        group.start()
        try:
            results = []
            for run in range(runs):
                settings = sentinel_settings(group.sentinels, f"fo{uuid.uuid4().hex[:6]}:")
                figures = await run_once(group, settings)
                results.append(figures)
                print(f"run {run + 1}: {figures}", flush=True)
        finally:
            group.stop()
    print(f"down-after-milliseconds {down_after_ms}, {runs} runs, seconds from the kill:")
    for name in ("promoted_s", "cache_s", "pubsub_s", "queue_s"):
        print(f"  {name:12} {_spread([getattr(f, name) for f in results])}")
    print(f"  failed commands {[f.failed_commands for f in results]}")
    print(f"  lost increments {[f.lost_increments for f in results]}")
    print(f"  lost messages   {[f.lost_messages for f in results]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--down-after-ms", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(_main(args.runs, args.down_after_ms))


if __name__ == "__main__":
    main()
