"""What a gateway node is given (``gateway.server.NodePorts``), opened for tests that run
nodes without a whole platform: the in-memory adapters, or Redis under the test's key
prefix. Tests on a ``Platform`` build their nodes with ``gateway.server.gateway_of``.

Each opener enters what it opens on the caller's ``AsyncExitStack``, so the ports stay
open until the stack closes, after the nodes built on them.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from gateway.server import NodePorts
from typogram.adapters.memory import (
    InProcessEventLog,
    MemoryCache,
    MemoryMatchQueues,
    MemoryPubSub,
)
from typogram.adapters.memory_scripts import MemoryFencedWrites, MemoryPushLog
from typogram.adapters.redis import RedisCache, RedisPubSub
from typogram.adapters.redis_queues import RedisMatchQueues
from typogram.adapters.redis_scripts import RedisFencedWrites, RedisPushLog
from typogram.ports import EventLog
from typogram.settings import Settings
from typogram.tokens import TokenService


async def memory_ports(
    stack: AsyncExitStack, settings: Settings, *, cache: MemoryCache | None = None
) -> NodePorts:
    """One process's in-memory ports; ``cache``: one the test made (entered here), with
    the fenced writes and the push log over it."""
    cache = await stack.enter_async_context(cache if cache is not None else MemoryCache())
    return NodePorts(
        tokens=TokenService(settings),
        cache=cache,
        fences=MemoryFencedWrites(cache),
        pushes=MemoryPushLog(cache),
        pubsub=await stack.enter_async_context(MemoryPubSub()),
        events=await stack.enter_async_context(InProcessEventLog()),
        queues=await stack.enter_async_context(MemoryMatchQueues()),
    )


async def redis_ports(
    stack: AsyncExitStack,
    settings: Settings,
    url: str,
    prefix: str,
    *,
    events: EventLog | None = None,
) -> NodePorts:
    """One process's ports on Redis under ``prefix``: a cache (with the fenced writes, the
    push log and the match queues over it, on its connection) and a pub/sub; ``events``:
    an event log the test's nodes share (default an in-process one of their own)."""
    cache = await stack.enter_async_context(RedisCache(url, prefix=prefix))
    if events is None:
        events = await stack.enter_async_context(InProcessEventLog())
    return NodePorts(
        tokens=TokenService(settings),
        cache=cache,
        fences=RedisFencedWrites(cache),
        pushes=RedisPushLog(cache),
        pubsub=await stack.enter_async_context(RedisPubSub(url, prefix=prefix)),
        events=events,
        queues=await stack.enter_async_context(RedisMatchQueues(cache)),
    )
