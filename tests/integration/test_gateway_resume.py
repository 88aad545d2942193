"""Cross-node resume: two gateway nodes in one process sharing a cache and a pub/sub.

Parametrized on the in-memory adapters and on a real Redis, so the session
store's batches and the room push log run on both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio
from prometheus_client import CollectorRegistry
from websockets.asyncio.client import ClientConnection, connect

from gateway.server import Gateway
from tests.gateway_ports import memory_ports, redis_ports
from tests.integration.test_gateway import (
    TIMEOUT,
    _until,
    closed_with,
    node_settings,
    recv,
    send,
)
from typogram import keys
from typogram.tokens import TokenService, TokenType

Nodes = Callable[..., Awaitable[list[Gateway]]]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def nodes(request: pytest.FixtureRequest, unique_prefix: str) -> AsyncIterator[Nodes]:
    """``await nodes(2, **settings)``: gateways sharing one cache, pub/sub, event log and
    queues (their tokens signed with the base settings' secret)."""
    base = node_settings()
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "memory":
            ports = await memory_ports(stack, base)
        else:
            url = request.getfixturevalue("redis_url")
            ports = await redis_ports(stack, base, url, unique_prefix)
            stack.push_async_callback(_delete_keys, url, unique_prefix)

        async def start(count: int, **overrides: Any) -> list[Gateway]:
            settings = base.replace(**overrides)
            out = []
            for _ in range(count):
                gateway = await stack.enter_async_context(
                    Gateway(settings, ports, registry=CollectorRegistry())
                )
                stop = asyncio.Event()
                serving = asyncio.create_task(gateway.serve(stop))
                gateway.stop_event = stop  # type: ignore[attr-defined]
                gateway.serving = serving  # type: ignore[attr-defined]
                stack.push_async_callback(_halt, stop, serving)
                out.append(gateway)
            return out

        yield start


async def _halt(stop: asyncio.Event, serving: asyncio.Task[None]) -> None:
    stop.set()
    await asyncio.wait_for(serving, TIMEOUT)


async def _delete_keys(url: str, prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(url)
    async for key in client.scan_iter(match=f"{prefix}*"):
        await client.delete(key)
    await client.aclose()


def _url(gateway: Gateway) -> str:
    return f"ws://127.0.0.1:{gateway.port}/ws"


def _token(gateway: Gateway, user: str, role: str = "user") -> str:
    token, _ = TokenService(gateway.settings).issue(user, TokenType.ACCESS, name=user, role=role)
    return token


async def _hello(
    gateway: Gateway, user: str, resume: dict[str, Any] | None = None, role: str = "user"
) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(_url(gateway), open_timeout=TIMEOUT)
    d: dict[str, Any] = {"token": _token(gateway, user, role)}
    if resume is not None:
        d["resume"] = resume
    await send(ws, "hello", d, id=1)
    welcome = await recv(ws)
    assert welcome["t"] == "welcome", welcome
    return ws, welcome["d"]


async def _in_lobby(
    gateway: Gateway, user: str, role: str = "user"
) -> tuple[ClientConnection, str]:
    ws, welcome = await _hello(gateway, user, role=role)
    await send(ws, "room.join", {"room": "lobby"}, id=2)
    await recv(ws, "room.joined")
    return ws, welcome["session"]


async def _chat(ws: ClientConnection, text: str) -> None:
    await send(ws, "chat.send", {"room": "lobby", "text": text}, id=3)
    await recv(ws, "chat.sent")


async def _messages(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [await recv(ws, "chat.message") for _ in range(count)]


async def test_resume_on_another_node_after_a_drain_gets_everything_missed(nodes: Nodes) -> None:
    a, b = await nodes(2)
    alice, session = await _in_lobby(a, "alice")
    bob, _ = await _in_lobby(b, "bob")
    await recv(alice, "room.presence")
    await _chat(bob, "one")
    seen = (await _messages(alice, 1))[0]
    a.stop_event.set()  # type: ignore[attr-defined]  # node A drains: 1012
    assert await closed_with(alice) == 1012
    await asyncio.wait_for(a.serving, TIMEOUT)  # type: ignore[attr-defined]
    for text in ("two", "three"):
        await _chat(bob, text)

    again, welcome = await _hello(b, "alice", {"session": session, "seq": seen["s"]})
    assert welcome["resumed"] is True and welcome["session"] == session
    await _chat(bob, "four")
    frames = [await recv(again)]
    while frames[-1]["d"].get("text") != "four":
        frames.append(await recv(again))
    # Replayed and live pushes (room.presence among them) in one numbering.
    assert [f["s"] for f in frames] == list(range(seen["s"] + 1, seen["s"] + 1 + len(frames)))
    chats = [f["d"]["text"] for f in frames if f["t"] == "chat.message"]
    assert chats == ["two", "three", "four"]
    for ws in (again, bob):
        await ws.close()


async def test_resume_elsewhere_takes_the_session_over_from_a_live_node(nodes: Nodes) -> None:
    a, b = await nodes(2)
    alice, session = await _in_lobby(a, "alice")
    bob, _ = await _in_lobby(b, "bob")
    await recv(alice, "room.presence")
    await _chat(bob, "one")
    seen = (await _messages(alice, 1))[0]
    await _chat(bob, "two")

    again, welcome = await _hello(b, "alice", {"session": session, "seq": seen["s"]})
    assert welcome["resumed"] is True and welcome["session"] == session
    assert await closed_with(alice) == 4002
    got = await recv(again, "chat.message")
    assert got["d"]["text"] == "two" and got["s"] == seen["s"] + 1
    await _chat(bob, "three")
    assert (await recv(again, "chat.message"))["d"]["text"] == "three"
    assert a.statistics()["sessions"] == 0
    for ws in (again, bob):
        await ws.close()


async def test_a_gap_elsewhere_gives_resumed_false_and_snapshots(nodes: Nodes) -> None:
    a, b = await nodes(2, ws_replay_frames=2)
    alice, session = await _in_lobby(a, "alice")
    bob, _ = await _in_lobby(b, "bob")
    a.stop_event.set()  # type: ignore[attr-defined]
    await closed_with(alice)
    await asyncio.wait_for(a.serving, TIMEOUT)  # type: ignore[attr-defined]
    for text in ("1", "2", "3", "4"):
        await _chat(bob, text)  # more than the room's push log keeps
    again, welcome = await _hello(b, "alice", {"session": session, "seq": 0})
    assert welcome["resumed"] is False and welcome["session"] == session
    snapshot = await recv(again, "room.joined")
    assert [m["text"] for m in snapshot["d"]["history"]] == ["1", "2", "3", "4"]
    for ws in (again, bob):
        await ws.close()


async def test_nobody_else_resumes_a_session_on_another_node(nodes: Nodes) -> None:
    a, b = await nodes(2)
    alice, session = await _in_lobby(a, "alice")
    mallory, welcome = await _hello(b, "mallory", {"session": session, "seq": 0})
    assert welcome["resumed"] is False and welcome["session"] != session
    await send(alice, "ping", id=9)
    assert (await recv(alice, "pong"))["re"] == 9
    for ws in (alice, mallory):
        await ws.close()


async def test_a_normal_close_deletes_the_stored_session(nodes: Nodes) -> None:
    a, b = await nodes(2)
    alice, session = await _in_lobby(a, "alice")
    cache = a._hub.store.cache
    assert await cache.get(keys.session_state(session)) is not None
    await alice.close()
    await asyncio.wait_for(_until(lambda: a.statistics()["sessions"] == 0), TIMEOUT)
    assert await cache.get(keys.session_state(session)) is None
    again, welcome = await _hello(b, "alice", {"session": session, "seq": 0})
    assert welcome["resumed"] is False and welcome["session"] != session
    await again.close()
