"""A request that meets an unreachable backend is answered ``unavailable``, not ``internal``.

Redis failing over or restarting shows as connection errors for a few
seconds (``typogram.outages``); the client is told to retry, as REST's 503
tells it. Any other failure stays ``internal``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.exceptions
from prometheus_client import CollectorRegistry

from gateway.server import Gateway
from tests.integration.test_gateway import SECRET, recv, send
from tests.integration.test_gateway_resume import _hello
from typogram.adapters.memory import InProcessEventLog, MemoryCache, MemoryPubSub
from typogram.settings import Settings
from typogram.tokens import TokenService

pytestmark = pytest.mark.integration


class BrokenReads(MemoryCache):
    """Reading a list raises ``failure`` while it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.failure: Exception | None = None

    async def list_range(self, *args: Any, **kwargs: Any) -> list[bytes]:
        if self.failure is not None:
            raise self.failure
        return await super().list_range(*args, **kwargs)


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[Gateway, BrokenReads]]:
    settings = Settings(environment="test", jwt_secret=SECRET, ws_port=0)
    async with contextlib.AsyncExitStack() as stack:
        cache = await stack.enter_async_context(BrokenReads())
        pubsub = await stack.enter_async_context(MemoryPubSub())
        events = await stack.enter_async_context(InProcessEventLog())
        node = Gateway(
            settings,
            tokens=TokenService(settings),
            cache=cache,
            pubsub=pubsub,
            events=events,
            registry=CollectorRegistry(),
        )
        yield await stack.enter_async_context(node), cache


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (redis.exceptions.ConnectionError("No master found for 'typogram'"), "unavailable"),
        (redis.exceptions.BusyLoadingError("Redis is loading the dataset"), "unavailable"),
        (ConnectionRefusedError(111, "Connection refused"), "unavailable"),
        (ValueError("a bug"), "internal"),
    ],
)
async def test_a_backend_outage_is_unavailable_and_a_bug_internal(
    gateway: tuple[Gateway, BrokenReads], failure: Exception, code: str
) -> None:
    node, cache = gateway
    ws, _ = await _hello(node, "alice")
    cache.failure = failure
    await send(ws, "room.join", {"room": "lobby"}, id=5)
    answer = await recv(ws)
    assert answer["t"] == "error" and answer["re"] == 5, answer
    assert answer["d"]["code"] == code, answer
    cache.failure = None  # the connection is still usable afterwards
    await send(ws, "room.join", {"room": "lobby"}, id=6)
    assert (await recv(ws, "room.joined"))["d"]["room"] == "lobby"
    await ws.close()
