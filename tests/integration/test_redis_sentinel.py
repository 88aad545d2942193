"""Redis with Sentinel: the adapters follow the master through a failover under load.

A master, a replica and three sentinels of their own (``tests/clusters.py``).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.exceptions import ReadOnlyError, ResponseError

from bench.redis_failover import run_once, sentinel_settings
from tests.clusters import RedisSentinelGroup
from typogram.adapters.redis import RedisCache, RedisPubSub
from typogram.adapters.redis_batch import CommandBatcher
from typogram.adapters.redis_queues import RedisMatchQueues
from typogram.errors import BackendUnavailable
from typogram.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(redis_sentinel_group: RedisSentinelGroup, unique_prefix: str) -> Settings:
    return sentinel_settings(redis_sentinel_group.sentinels, unique_prefix)


async def test_every_adapter_finds_the_master_through_the_sentinels(settings: Settings) -> None:
    got = asyncio.Event()
    async with (
        RedisCache.from_settings(settings) as cache,
        RedisPubSub.from_settings(settings) as pubsub,
        RedisMatchQueues(cache) as queue,
    ):
        await cache.set("k", b"v", ttl=60)
        assert await cache.get("k") == b"v"
        await pubsub.subscribe("ch", lambda _c, _payload: got.set())
        await pubsub.publish("ch", b"hello")
        await asyncio.wait_for(got.wait(), 5)
        assert await queue.claim("u1", "race-1", 60) is None
        assert await queue.where("u1") == "r:race-1"


async def test_no_sentinel_answering_is_a_clear_start_up_error(unique_prefix: str) -> None:
    settings = sentinel_settings(["127.0.0.1:1"], unique_prefix)
    with pytest.raises(BackendUnavailable, match=r"sentinel://127\.0\.0\.1:1/typogram"):
        async with RedisCache.from_settings(settings):
            pass


async def test_a_demoted_master_drops_the_connection_so_the_next_command_reconnects(
    redis_sentinel_group: RedisSentinelGroup,
) -> None:
    """READONLY means the server became a replica: the lean connection must not stay."""
    replica = next(p for p in redis_sentinel_group.ports if p != redis_sentinel_group.master_port())
    batcher = CommandBatcher(f"redis://127.0.0.1:{replica}", 2.0)
    try:
        assert await batcher.call("PING") == b"PONG"
        with pytest.raises((ReadOnlyError, ResponseError), match="READONLY"):
            await batcher.call("SET", f"k{uuid.uuid4().hex}", b"v")
        assert await batcher.call("PING") == b"PONG"
        assert batcher.connects == 2  # the READONLY reply closed the first connection
    finally:
        await batcher.aclose()


async def test_cache_pubsub_and_queues_carry_on_when_the_master_is_killed_under_load(
    redis_sentinel_group: RedisSentinelGroup, settings: Settings
) -> None:
    figures = await run_once(redis_sentinel_group, settings)
    assert figures.promoted_s is not None
    assert figures.cache_s is not None  # rate-limit counters and cache writes work again
    assert figures.queue_s is not None  # match-queue scripts run on the new master
    assert figures.pubsub_s is not None  # the subscriber resubscribed on the new master
    assert figures.resubscribes >= 1
