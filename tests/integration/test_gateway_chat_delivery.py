"""Chat delivery guarantees: no gap after a join, nothing delivered when a send fails,
``unavailable`` at once when a node is out of capacity (its loop lags, or it is at its
in-flight bound), and not before."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from websockets.asyncio.client import ClientConnection

from gateway.server import Gateway
from tests.gateway_ports import memory_ports, redis_ports
from tests.integration.test_gateway import SECRET, recv, send
from tests.integration.test_gateway_resume import Nodes, _delete_keys, _hello, nodes
from typogram.adapters.memory import InProcessEventLog, MemoryCache
from typogram.adapters.memory_scripts import MemoryPushLog
from typogram.settings import Settings

__all__ = ["nodes"]

ROOMS = 30
LIFTED: dict[str, Any] = {"ws_rate_per_s": 10_000.0, "ws_rate_burst": 10_000}


async def _join(ws: ClientConnection, room: str) -> dict[str, Any]:
    await send(ws, "room.join", {"room": room}, id=2)
    return await recv(ws, "room.joined")


@pytest.fixture
async def two_processes(
    redis_url: str, unique_prefix: str
) -> AsyncIterator[tuple[Gateway, Gateway]]:
    """Two nodes on Redis with their own cache and pub/sub each, as two processes have."""
    settings = Settings(environment="test", jwt_secret=SECRET, ws_port=0, **LIFTED)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(_delete_keys, redis_url, unique_prefix)
        events = await stack.enter_async_context(InProcessEventLog())
        out = []
        for _ in range(2):
            ports = await redis_ports(stack, settings, redis_url, unique_prefix, events=events)
            gateway = Gateway(settings, ports, registry=CollectorRegistry())
            out.append(await stack.enter_async_context(gateway))
        yield out[0], out[1]


@pytest.mark.integration
async def test_a_message_sent_right_after_a_join_reaches_the_joiner(
    two_processes: tuple[Gateway, Gateway],
) -> None:
    a, b = two_processes
    alice, _ = await _hello(a, "alice")
    bob, _ = await _hello(b, "bob")
    for i in range(ROOMS):
        room = f"fresh-{i}"
        await _join(alice, room)
        await _join(bob, room)  # the moment room.joined arrives, alice speaks
        await send(alice, "chat.send", {"room": room, "text": f"m{i}"})
        got = await recv(bob, "chat.message")
        assert (got["d"]["room"], got["d"]["text"]) == (room, f"m{i}")
    # Exactly once each, and bob never heard his own arrivals.
    await send(alice, "chat.send", {"room": "fresh-0", "text": "end"})
    rest = []
    while (frame := await recv(bob))["d"].get("text") != "end":
        rest.append(frame)
    assert [f for f in rest if f["t"] == "chat.message"] == []
    assert all(f["d"].get("user", {}).get("id") != "bob" for f in rest)
    for ws in (alice, bob):
        await ws.close()


async def test_a_join_during_a_stream_of_messages_has_no_gap_and_no_duplicate(
    nodes: Nodes,
) -> None:
    a, b = await nodes(2, **LIFTED)
    alice, _ = await _hello(a, "alice")
    await _join(alice, "busy")
    count = 120

    async def talk() -> None:
        for i in range(count):
            await send(alice, "chat.send", {"room": "busy", "text": str(i)})
            if i % 10 == 0:
                await asyncio.sleep(0.001)

    talking = asyncio.create_task(talk())
    await asyncio.sleep(0.005)
    bob, _ = await _hello(b, "bob")
    joined = await _join(bob, "busy")
    seen = [int(m["text"]) for m in joined["d"]["history"]]
    while not seen or seen[-1] != count - 1:
        seen.append(int((await recv(bob, "chat.message"))["d"]["text"]))
    await talking
    assert seen == list(range(seen[0], count)), seen
    for ws in (alice, bob):
        await ws.close()


# -- failures and saturation (in-memory nodes with a cache that misbehaves) ---------


class FaultyCache(MemoryCache):
    """Writes to a room's history fail while ``failing`` (as a Redis pool that ran dry);
    room appends wait for ``gate`` while it is clear (a stalled backend)."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def list_push(self, key: str, *args: Any, **kwargs: Any) -> None:
        if self.failing and key.endswith(":history"):
            raise ConnectionError("No connection available.")
        await super().list_push(key, *args, **kwargs)


class FaultyPushLog(MemoryPushLog):
    """Room appends through ``FaultyCache``'s switches: they wait for its ``gate`` and
    fail with history while it is ``failing``."""

    def __init__(self, cache: FaultyCache) -> None:
        super().__init__(cache)
        self.faulty = cache

    async def append_numbered(self, *args: Any, **kwargs: Any) -> int:
        await self.faulty.gate.wait()
        if self.faulty.failing and kwargs.get("also"):
            raise ConnectionError("No connection available.")
        return await super().append_numbered(*args, **kwargs)


@contextlib.asynccontextmanager
async def _faulty_gateway(**overrides: Any) -> AsyncIterator[tuple[Gateway, FaultyCache]]:
    settings = Settings(environment="test", jwt_secret=SECRET, ws_port=0, **overrides)
    async with contextlib.AsyncExitStack() as stack:
        cache = FaultyCache()
        ports = await memory_ports(stack, settings, cache=cache)
        ports = dataclasses.replace(ports, pushes=FaultyPushLog(cache))
        gateway = await stack.enter_async_context(
            Gateway(settings, ports, registry=CollectorRegistry())
        )
        yield gateway, cache


@pytest.fixture
async def faulty() -> AsyncIterator[tuple[Gateway, FaultyCache]]:
    async with _faulty_gateway(gateway_chat_max_inflight=1) as started:
        yield started


@pytest.fixture
async def stalled() -> AsyncIterator[tuple[Gateway, FaultyCache]]:
    """Default capacity settings, the per-connection rate lifted."""
    async with _faulty_gateway(**LIFTED) as started:
        yield started


async def _pair(gateway: Gateway) -> tuple[ClientConnection, ClientConnection]:
    alice, _ = await _hello(gateway, "alice")
    bob, _ = await _hello(gateway, "bob")
    await _join(alice, "lobby")
    await _join(bob, "lobby")
    await recv(alice, "room.presence")  # bob's arrival
    return alice, bob


async def test_a_failed_write_delivers_nothing_and_answers_unavailable(
    faulty: tuple[Gateway, FaultyCache],
) -> None:
    gateway, cache = faulty
    alice, bob = await _pair(gateway)
    cache.failing = True
    await send(alice, "chat.send", {"room": "lobby", "text": "lost"}, id=7)
    failed = await recv(alice)
    assert failed["t"] == "error" and failed["re"] == 7
    assert failed["d"]["code"] == "unavailable"
    cache.failing = False
    await send(alice, "chat.send", {"room": "lobby", "text": "kept"}, id=8)
    for ws in (alice, bob):  # the next message anyone sees is the one that worked
        assert (await recv(ws, "chat.message"))["d"]["text"] == "kept"
    await send(bob, "room.join", {"room": "lobby"}, id=9)  # snapshot: history too
    history = (await recv(bob, "room.joined"))["d"]["history"]
    assert [m["text"] for m in history] == ["kept"]
    for ws in (alice, bob):
        await ws.close()


async def test_a_saturated_node_answers_unavailable_at_once(
    faulty: tuple[Gateway, FaultyCache],
) -> None:
    gateway, cache = faulty
    alice, bob = await _pair(gateway)
    cache.gate.clear()  # the backend stalls: alice's send occupies the only slot
    try:
        await send(alice, "chat.send", {"room": "lobby", "text": "slow"}, id=1)
        await asyncio.sleep(0.05)
        started = asyncio.get_running_loop().time()
        await send(bob, "chat.send", {"room": "lobby", "text": "refused"}, id=2)
        refused = await recv(bob, "error")
        assert refused["re"] == 2 and refused["d"]["code"] == "unavailable"
        assert asyncio.get_running_loop().time() - started < 1.0
    finally:
        cache.gate.set()
    assert (await recv(alice, "chat.sent"))["re"] == 1
    assert (await recv(bob, "chat.message"))["d"]["text"] == "slow"
    await send(bob, "chat.send", {"room": "lobby", "text": "now"}, id=3)
    assert (await recv(bob, "chat.sent"))["re"] == 3
    for ws in (alice, bob):
        await ws.close()


async def test_sends_wait_on_a_stalled_backend_until_the_loop_lags(
    stalled: tuple[Gateway, FaultyCache],
) -> None:
    gateway, cache = stalled
    floor = gateway.capacity.floor
    alice, bob = await _pair(gateway)
    senders = [(await _hello(gateway, f"s{n}"))[0] for n in range(floor + 4)]
    for ws in senders:
        await _join(ws, "lobby")
    cache.gate.clear()  # the backend stalls: every send stays in flight
    try:
        for n, ws in enumerate(senders):
            await send(ws, "chat.send", {"room": "lobby", "text": f"m{n}"}, id=100 + n)
        await asyncio.sleep(0.2)  # all of them reach the stalled backend
        # More in flight than a lagging node takes, and nothing refused: the loop keeps time.
        assert gateway.capacity.refused == 0
        gateway.capacity.observe(1.0)  # now it runs a second late
        (exported,) = gateway.metrics.loop_lag.collect()
        assert exported.samples[0].value == 1.0  # typogram_gateway_loop_lag_seconds
        await send(bob, "chat.send", {"room": "lobby", "text": "refused"}, id=2)
        refused = await recv(bob, "error")
        assert refused["re"] == 2 and refused["d"]["code"] == "unavailable"
        assert gateway.capacity.refused == 1
    finally:
        cache.gate.set()
    for n, ws in enumerate(senders):  # every queued send was delivered, none refused
        assert (await recv(ws, "chat.sent"))["re"] == 100 + n
    for _ in range(6):  # the lag decays as the loop keeps time again
        gateway.capacity.observe(0.0)
    await send(bob, "chat.send", {"room": "lobby", "text": "now"}, id=3)
    assert (await recv(bob, "chat.sent"))["re"] == 3
    await asyncio.gather(*(ws.close() for ws in (alice, bob, *senders)))
