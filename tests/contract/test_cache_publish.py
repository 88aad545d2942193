"""``Cache.append_numbered(..., publish=…)``: a room push numbered, logged and published.

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
from typogram.adapters.redis import RedisCache, RedisPubSub
from typogram.ports import Cache, PubSub
from typogram.protocol import parse_push, push_payload

CHANNEL = "ch:room:lobby"


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.integration),
        pytest.param("redis-cache-memory-pubsub", marks=pytest.mark.integration),
    ]
)
async def backends(
    request: pytest.FixtureRequest, unique_prefix: str
) -> AsyncIterator[tuple[Cache, PubSub]]:
    async with AsyncExitStack() as stack:
        if request.param == "memory":
            cache: Cache = await stack.enter_async_context(MemoryCache())
            pubsub: PubSub = await stack.enter_async_context(MemoryPubSub())
            yield cache, pubsub
            return
        url = request.getfixturevalue("redis_url")
        cache = await stack.enter_async_context(RedisCache(url, prefix=unique_prefix))
        if request.param == "redis":
            pubsub = RedisPubSub(url, prefix=unique_prefix, client_name=f"t-{unique_prefix}")
        else:
            pubsub = MemoryPubSub()
        pubsub = await stack.enter_async_context(pubsub)
        yield cache, pubsub
        client = redis.asyncio.Redis.from_url(url)
        async for key in client.scan_iter(match=f"{unique_prefix}*"):
            await client.delete(key)
        await client.aclose()


async def test_pushes_are_published_numbered_in_order(backends: tuple[Cache, PubSub]) -> None:
    cache, pubsub = backends
    inbox = Inbox()
    await pubsub.subscribe(CHANNEL, inbox)
    payloads = [push_payload("chat.message", {"text": f"m{i}", "i": i}) for i in range(20)]
    before = time.time()
    numbers = await asyncio.gather(
        *(
            cache.append_numbered(
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


async def test_history_and_publish_in_one_step(backends: tuple[Cache, PubSub]) -> None:
    cache, pubsub = backends
    inbox = Inbox()
    await pubsub.subscribe(CHANNEL, inbox)
    payload = push_payload("chat.message", {"text": "hi"})
    number = await cache.append_numbered(
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


async def test_without_publish_nothing_is_published(backends: tuple[Cache, PubSub]) -> None:
    cache, pubsub = backends
    inbox = Inbox()
    await pubsub.subscribe(CHANNEL, inbox)
    await pubsub.subscribe("ch:marker", inbox)
    await cache.append_numbered("room:lobby:seq", "room:lobby:log", b'{"t":"x","d":{}}', 5, 30)
    await pubsub.publish("ch:marker", b"end")
    assert await inbox.wait_for(1) == [("ch:marker", b"end")]
