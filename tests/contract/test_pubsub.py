"""One contract for the ``PubSub`` port, run on ``MemoryPubSub`` and on a real Redis.

"Nothing was delivered" is checked without sleeping: after the message that
must not arrive, a marker is published on another channel; messages reach a
subscriber in publication order, so once the marker is in, the other would be.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio

from typogram.adapters.memory import MemoryPubSub
from typogram.adapters.redis import RedisPubSub
from typogram.ports import PubSub

WAIT_S = 5.0
PubSubFactory = Callable[[], PubSub]


class Inbox:
    """A listener that records what it gets and lets a test wait for it."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._changed = asyncio.Event()

    def __call__(self, channel: str, message: bytes) -> None:
        self.messages.append((channel, message))
        self._changed.set()

    async def wait_for(self, count: int) -> list[tuple[str, bytes]]:
        async def wait() -> None:
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), WAIT_S)
        return self.messages


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def make_pubsub(request: pytest.FixtureRequest, unique_prefix: str) -> PubSubFactory:
    if request.param == "memory":
        return MemoryPubSub
    url = request.getfixturevalue("redis_url")
    return lambda: RedisPubSub(url, prefix=unique_prefix, client_name=f"typogram-{unique_prefix}")


@pytest.fixture
async def pubsub(make_pubsub: PubSubFactory) -> AsyncIterator[PubSub]:
    async with make_pubsub() as entered:
        yield entered


async def barrier(pubsub: PubSub) -> None:
    """Return once everything published before this call has been delivered."""
    marker = Inbox()
    await pubsub.subscribe("barrier", marker)
    await pubsub.publish("barrier", b"")
    await marker.wait_for(1)
    await pubsub.unsubscribe("barrier", marker)


async def test_publish_reaches_a_subscriber(pubsub: PubSub) -> None:
    inbox = Inbox()
    await pubsub.subscribe("ch:room:1", inbox)
    await pubsub.publish("ch:room:1", b"hello")
    assert await inbox.wait_for(1) == [("ch:room:1", b"hello")]
    await pubsub.ping()


async def test_listeners_are_reference_counted(pubsub: PubSub) -> None:
    first, second = Inbox(), Inbox()
    await pubsub.subscribe("ch:race:7", first)
    await pubsub.subscribe("ch:race:7", second)
    await pubsub.publish("ch:race:7", b"1")
    await first.wait_for(1)
    await second.wait_for(1)

    await pubsub.unsubscribe("ch:race:7", first)
    await pubsub.publish("ch:race:7", b"2")
    assert await second.wait_for(2) == [("ch:race:7", b"1"), ("ch:race:7", b"2")]
    assert pubsub.statistics()["channels"] == 1

    await pubsub.unsubscribe("ch:race:7", second)
    await pubsub.unsubscribe("ch:race:7", second)  # unknown listeners are ignored
    assert pubsub.statistics()["channels"] == 0
    await pubsub.publish("ch:race:7", b"3")
    await barrier(pubsub)
    assert len(first.messages) == 1 and len(second.messages) == 2


async def test_resubscribing_after_the_last_listener_left(pubsub: PubSub) -> None:
    inbox = Inbox()
    for round_ in range(3):
        await pubsub.subscribe("ch:user:1", inbox)
        await pubsub.publish("ch:user:1", str(round_).encode())
        await inbox.wait_for(round_ + 1)
        await pubsub.unsubscribe("ch:user:1", inbox)
    assert [m for _, m in inbox.messages] == [b"0", b"1", b"2"]


async def test_channels_are_isolated(pubsub: PubSub) -> None:
    a, b = Inbox(), Inbox()
    await pubsub.subscribe("ch:room:a", a)
    await pubsub.subscribe("ch:room:b", b)
    await pubsub.publish("ch:room:a", b"for a")
    await barrier(pubsub)
    assert a.messages == [("ch:room:a", b"for a")] and b.messages == []


async def test_publish_many_keeps_order_per_channel(pubsub: PubSub) -> None:
    a, b = Inbox(), Inbox()
    await pubsub.subscribe("ch:room:a", a)
    await pubsub.subscribe("ch:room:b", b)
    batch = [("ch:room:a" if n % 3 else "ch:room:b", str(n).encode()) for n in range(30)]
    await pubsub.publish_many(batch)
    await pubsub.publish_many([])
    assert await a.wait_for(20) == [m for m in batch if m[0] == "ch:room:a"]
    assert await b.wait_for(10) == [m for m in batch if m[0] == "ch:room:b"]
    stats = pubsub.statistics()
    assert stats["published"] == 30 and stats["delivered"] == 30


async def test_a_failing_listener_does_not_stop_the_others(pubsub: PubSub) -> None:
    def broken(channel: str, message: bytes) -> None:
        raise RuntimeError("listener bug")

    inbox = Inbox()
    await pubsub.subscribe("ch:room:1", broken)
    await pubsub.subscribe("ch:room:1", inbox)
    await pubsub.publish("ch:room:1", b"a")
    await pubsub.publish("ch:room:1", b"b")
    assert [m for _, m in await inbox.wait_for(2)] == [b"a", b"b"]
    assert pubsub.statistics()["listener_errors"] == 2


async def test_use_after_close_raises(make_pubsub: PubSubFactory) -> None:
    pubsub = make_pubsub()
    with pytest.raises(RuntimeError):
        await pubsub.publish("ch", b"x")  # not entered yet
    async with pubsub:
        await pubsub.publish("ch", b"x")
    with pytest.raises(RuntimeError):
        await pubsub.publish("ch", b"x")
    with pytest.raises(RuntimeError):
        await pubsub.subscribe("ch", Inbox())


# -- Redis-specific -------------------------------------------------------------


@pytest.mark.integration
async def test_redis_delivers_across_processes(redis_url: str, unique_prefix: str) -> None:
    async with (
        RedisPubSub(redis_url, prefix=unique_prefix) as node_a,
        RedisPubSub(redis_url, prefix=unique_prefix) as node_b,
        RedisPubSub(redis_url, prefix=unique_prefix + "other:") as elsewhere,
    ):
        inbox, stray = Inbox(), Inbox()
        await node_b.subscribe("ch:room:1", inbox)
        await elsewhere.subscribe("ch:room:1", stray)
        await node_a.publish("ch:room:1", b"from a")
        assert await inbox.wait_for(1) == [("ch:room:1", b"from a")]
        await barrier(elsewhere)
        assert stray.messages == []  # another prefix is another deployment


@pytest.mark.integration
async def test_redis_subscriber_reconnects_and_resubscribes(
    redis_url: str, unique_prefix: str
) -> None:
    name = f"typogram-{unique_prefix.rstrip(':')}"
    async with RedisPubSub(redis_url, prefix=unique_prefix, client_name=name) as pubsub:
        inbox = Inbox()
        await pubsub.subscribe("ch:room:1", inbox)
        admin = redis.asyncio.Redis.from_url(redis_url)
        try:
            # Kill only our subscriber connection, as a network blip or restart would.
            clients = await admin.client_list(_type="pubsub")
            ids = [c["id"] for c in clients if c.get("name") == name]
            assert len(ids) == 1, "one subscriber connection per adapter"
            await admin.client_kill_filter(_id=ids[0])
        finally:
            await admin.aclose()

        async def publish_until_delivered() -> None:
            while not inbox.messages:
                await pubsub.publish("ch:room:1", b"after")
                await asyncio.sleep(0.05)

        await asyncio.wait_for(publish_until_delivered(), WAIT_S)
        assert pubsub.statistics()["reconnects"] >= 1
