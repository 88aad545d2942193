"""A request that meets an unreachable backend is answered ``unavailable``, not ``internal``.

Redis failing over or restarting shows as connection errors for a few
seconds (``typogram.outages``); the client is told to retry, as REST's 503
tells it. Any other failure stays ``internal``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.exceptions

from gateway.server import Gateway
from tests.integration.test_gateway import recv, send
from tests.integration.test_gateway_chat_delivery import FaultyCache, _faulty_gateway
from tests.integration.test_gateway_resume import _hello

pytestmark = pytest.mark.integration


class BrokenReads:
    """Makes a cache's list reads raise ``failure`` while it is set."""

    def __init__(self, cache: FaultyCache) -> None:
        self.failure: Exception | None = None
        read = cache.list_range

        async def list_range(*args: Any, **kwargs: Any) -> list[bytes]:
            if self.failure is not None:
                raise self.failure
            return await read(*args, **kwargs)

        cache.list_range = list_range  # type: ignore[method-assign]


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[Gateway, BrokenReads]]:
    async with _faulty_gateway() as (node, cache):
        yield node, BrokenReads(cache)


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
