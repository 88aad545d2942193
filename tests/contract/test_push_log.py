"""``typogram.push_log.PushLog``: a room push numbered, logged and published, over the
cache whose keys it writes (read back with ``Cache.list_range``).

Run on the memory adapters, on Redis cache + Redis pub/sub (one script on the
server) and on Redis cache + memory pub/sub (published after the script).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import orjson
import pytest
import redis.asyncio

from tests.contract.test_pubsub import Inbox
from typogram.adapters.memory import MemoryCache, MemoryPubSub
from typogram.adapters.memory_scripts import MemoryPushLog
from typogram.adapters.redis import RedisCache, RedisPubSub
from typogram.adapters.redis_scripts import RedisPushLog
from typogram.ports import Cache, PubSub
from typogram.protocol import parse_push, push_payload
from typogram.push_log import PushLog

CHANNEL = "ch:room:lobby"
Backends = tuple[Cache, PushLog, PubSub]


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.integration),
        pytest.param("redis-cache-memory-pubsub", marks=pytest.mark.integration),
    ]
)
async def backends(request: pytest.FixtureRequest, unique_prefix: str) -> AsyncIterator[Backends]:
    """The cache, the push log over it and the pub/sub it publishes on."""
    async with AsyncExitStack() as stack:
        if request.param == "memory":
            memory = await stack.enter_async_context(MemoryCache())
            pubsub: PubSub = await stack.enter_async_context(MemoryPubSub())
            yield memory, MemoryPushLog(memory), pubsub
            return
        url = request.getfixturevalue("redis_url")
        cache = await stack.enter_async_context(RedisCache(url, prefix=unique_prefix))
        if request.param == "redis":
            pubsub = RedisPubSub(url, prefix=unique_prefix, client_name=f"t-{unique_prefix}")
        else:
            pubsub = MemoryPubSub()
        pubsub = await stack.enter_async_context(pubsub)
        yield cache, RedisPushLog(cache), pubsub
        client = redis.asyncio.Redis.from_url(url)
        async for key in client.scan_iter(match=f"{unique_prefix}*"):
            await client.delete(key)
        await client.aclose()


async def test_pushes_are_published_numbered_in_order(backends: Backends) -> None:
    cache, log, pubsub = backends
    inbox = Inbox()
    await pubsub.subscribe(CHANNEL, inbox)
    payloads = [push_payload("chat.message", {"text": f"m{i}", "i": i}) for i in range(20)]
    before = time.time()
    numbers = await asyncio.gather(
        *(
            log.append_numbered(
                "room:lobby:seq", "room:lobby:log", p, 50, ttl=30, publish=(pubsub, CHANNEL)
            )
            for p in payloads
        )
    )
    assert sorted(numbers) == list(range(1, 21))
    received = await inbox.wait_for(20)
    pushes = [parse_push(message) for _, message in received]
    # Publications leave in number order, and each carries what was logged under it.
    assert [push.number for push in pushes] == list(range(1, 21))
    logged = {
        int(n): body
        for n, _, body in (e.partition(b" ") for e in await cache.list_range("room:lobby:log"))
    }
    for push in pushes:
        frame = orjson.loads(push.frame(7))
        assert frame == {**orjson.loads(logged[push.number]), "s": 7}
        assert before - 1 <= push.sent_at <= time.time() + 1


async def test_history_and_publish_in_one_step(backends: Backends) -> None:
    cache, pushes, pubsub = backends
    inbox = Inbox()
    await pubsub.subscribe(CHANNEL, inbox)
    payload = push_payload("chat.message", {"text": "hi"})
    number = await pushes.append_numbered(
        "room:lobby:seq",
        "room:lobby:log",
        payload,
        5,
        ttl=30,
        also=("room:lobby:history", b'{"text":"hi"}', 2),
        publish=(pubsub, CHANNEL),
    )
    assert number == 1
    assert await cache.list_range("room:lobby:history") == [b'1 {"text":"hi"}']
    [(channel, message)] = await inbox.wait_for(1)
    assert channel == CHANNEL and parse_push(message).number == 1


async def test_without_publish_nothing_is_published(backends: Backends) -> None:
    _, pushes, pubsub = backends
    inbox = Inbox()
    await pubsub.subscribe(CHANNEL, inbox)
    await pubsub.subscribe("ch:marker", inbox)
    await pushes.append_numbered("room:lobby:seq", "room:lobby:log", b'{"t":"x","d":{}}', 5, 30)
    await pubsub.publish("ch:marker", b"end")
    assert await inbox.wait_for(1) == [("ch:marker", b"end")]


async def test_append_numbered_counts_and_keeps_the_newest(backends: Backends) -> None:
    cache, pushes, _ = backends
    numbers = [
        await pushes.append_numbered("room:1:seq", "room:1:log", f"m{i}".encode(), 3, ttl=30)
        for i in range(1, 5)
    ]
    assert numbers == [1, 2, 3, 4]
    assert await cache.list_range("room:1:log") == [b"2 m2", b"3 m3", b"4 m4"]
    for key in ("room:1:seq", "room:1:log"):
        left = await cache.ttl(key)
        assert left is not None and 29 < left <= 30


async def test_bad_arguments_raise_and_store_nothing(backends: Backends) -> None:
    cache, pushes, _ = backends
    for max_len, also, ttl in ((0, None, 30.0), (5, ("h", b"x", 0), 30.0), (5, None, 0.0)):
        with pytest.raises(ValueError):
            await pushes.append_numbered("room:1:seq", "room:1:log", b"m", max_len, ttl, also=also)
    assert await cache.get("room:1:seq") is None
    assert await cache.list_range("room:1:log") == []
