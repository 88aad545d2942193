"""The gateway against real sockets on a free port, with the in-memory adapters."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gateway.connection.connection import Connection
from gateway.connection.wsinternals import LazyDeque
from gateway.server import Gateway, NodePorts
from tests.gateway_ports import memory_ports
from typogram import keys, topics
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.ports import Cache, EventLog, PubSub
from typogram.settings import Settings
from typogram.tokens import Claims, TokenService, TokenType

TIMEOUT = 5.0
SECRET = "gateway-test-secret-" + "x" * 32


@dataclass
class Node:
    gateway: Gateway
    url: str
    ports: NodePorts  # in memory (``tests.gateway_ports.memory_ports``)
    registry: CollectorRegistry
    stop: asyncio.Event
    versions: Versions

    @property
    def tokens(self) -> TokenService:
        return self.ports.tokens

    @property
    def cache(self) -> Cache:
        return self.ports.cache

    @property
    def pubsub(self) -> PubSub:
        return self.ports.pubsub

    @property
    def events(self) -> EventLog:
        return self.ports.events

    def token(self, user: str, *, name: str = "", version: int = 0, role: str = "user") -> str:
        token, _ = self.tokens.issue(
            user, TokenType.ACCESS, name=name or user, version=version, role=role
        )
        return token

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


class Versions(dict[str, int]):
    """The gateway's token check, from a dict of users' token versions (unknown: any)."""

    async def check(self, claims: Claims, *, fresh: bool = False) -> None:
        if claims.version < self.get(claims.subject, 0):
            raise AppError(ErrorCode.UNAUTHORIZED, "token has been revoked")


Start = Callable[..., Awaitable[Node]]


def node_settings(**overrides: Any) -> Settings:
    """A test node's settings: a free port, short close and drain timeouts."""
    return Settings(
        environment="test",
        jwt_secret=SECRET,
        ws_port=0,
        ws_close_timeout_s=0.5,
        gateway_drain_timeout_s=2.0,
    ).replace(**overrides)


@pytest.fixture
async def start_node() -> AsyncIterator[Start]:
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Node:
            settings = node_settings(**{"ws_hello_timeout_s": 1.0, **overrides})
            versions = Versions()
            ports = dataclasses.replace(await memory_ports(stack, settings), revocation=versions)
            registry = CollectorRegistry()
            gateway = await stack.enter_async_context(Gateway(settings, ports, registry=registry))
            stop = asyncio.Event()
            serving = asyncio.create_task(gateway.serve(stop))

            async def halt() -> None:
                stop.set()
                await asyncio.wait_for(serving, TIMEOUT)

            stack.push_async_callback(halt)
            url = f"ws://127.0.0.1:{gateway.port}/ws"
            return Node(gateway, url, ports, registry, stop, versions)

        yield start


async def send(ws: ClientConnection, t: str, d: Any = None, id: int | None = None) -> None:
    frame: dict[str, Any] = {"t": t, "d": d if d is not None else {}}
    if id is not None:
        frame["id"] = id
    await ws.send(orjson.dumps(frame).decode())


async def recv(ws: ClientConnection, t: str | None = None) -> dict[str, Any]:
    """The next frame (of type ``t`` when given, skipping others)."""
    while True:
        frame: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if t is None or frame["t"] == t:
            return frame


async def closed_with(ws: ClientConnection) -> int | None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    return ws.close_code


async def hello(node: Node, user: str, **kwargs: Any) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(node.url, open_timeout=TIMEOUT)
    d: dict[str, Any] = {"token": node.token(user, **kwargs)}
    await send(ws, "hello", d, id=1)
    welcome = await recv(ws)
    assert welcome["t"] == "welcome", welcome
    return ws, welcome


# -- hello ---------------------------------------------------------------------------


async def test_hello_welcomes_a_valid_token(start_node: Start) -> None:
    node = await start_node()
    ws, welcome = await hello(node, "u1", name="Ada")
    assert welcome["re"] == 1
    assert welcome["d"]["user"] == {"id": "u1", "name": "Ada", "guest": False}
    assert welcome["d"]["resumed"] is False
    assert welcome["d"]["heartbeat_s"] == node.gateway.settings.ws_heartbeat_s
    assert node.gateway.statistics()["connections"] == 1
    assert await node.cache.get(keys.user_presence("u1")) == b"online"
    await ws.close()


async def test_an_idle_connection_holds_no_writer_and_no_handshake(start_node: Start) -> None:
    """What an attached, idle socket keeps: its reader, not a writer task, not the
    handshake's headers, not ``websockets``' deques."""
    node = await start_node()
    sockets = [(await hello(node, f"idle{n}"))[0] for n in range(3)]
    await send(sockets[0], "ping", id=2)
    assert (await recv(sockets[0], "pong"))["re"] == 2
    connections = list(node.gateway.hub.connections)
    assert len(connections) == 3
    for conn in connections:
        assert isinstance(conn, Connection)
        assert conn._writer is None and conn.queued == 0
        server = conn._ws
        assert server.response is None and server.request is not None
        assert not list(server.request.headers.raw_items())
        assert isinstance(server.recv_messages.frames.queue, LazyDeque)
        assert not len(server.recv_messages.frames) and server.drain_waiters == []
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "ws-writer"]
    for ws in sockets:  # and they still work
        await send(ws, "ping", id=3)
        assert (await recv(ws, "pong"))["re"] == 3
        await ws.close()


async def test_hello_accepts_guest_tokens(start_node: Start) -> None:
    node = await start_node()
    token, claims = node.tokens.issue_guest("Guesty")
    async with connect(node.url) as ws:
        await send(ws, "hello", {"token": token})
        welcome = await recv(ws)
        assert welcome["d"]["user"] == {"id": claims.subject, "name": "Guesty", "guest": True}


async def test_bad_token_is_refused_with_4001(start_node: Start) -> None:
    node = await start_node()
    async with connect(node.url) as ws:
        await send(ws, "hello", {"token": "not-a-jwt"}, id=9)
        reply = await recv(ws)
        assert reply["t"] == "error" and reply["re"] == 9
        assert reply["d"]["code"] == "unauthorized"
        assert await closed_with(ws) == 4001


async def test_refresh_token_does_not_open_a_socket(start_node: Start) -> None:
    node = await start_node()
    token, _ = node.tokens.issue("u1", TokenType.REFRESH)
    async with connect(node.url) as ws:
        await send(ws, "hello", {"token": token})
        assert (await recv(ws))["d"]["code"] == "unauthorized"
        assert await closed_with(ws) == 4001


async def test_no_hello_in_time_closes_with_4001(start_node: Start) -> None:
    node = await start_node(ws_hello_timeout_s=0.2)
    async with connect(node.url) as ws:
        assert (await recv(ws))["d"]["code"] == "unauthorized"
        assert await closed_with(ws) == 4001


async def test_another_message_before_hello_is_refused(start_node: Start) -> None:
    node = await start_node()
    async with connect(node.url) as ws:
        await send(ws, "room.join", {"room": "lobby"}, id=3)
        reply = await recv(ws)
        assert (reply["re"], reply["d"]["code"]) == (3, "unauthorized")
        assert await closed_with(ws) == 4001


async def test_an_outdated_token_version_is_refused(start_node: Start) -> None:
    node = await start_node()
    node.versions["u1"] = 2
    async with connect(node.url) as ws:
        await send(ws, "hello", {"token": node.token("u1", version=1)})
        assert (await recv(ws))["d"]["code"] == "unauthorized"
        assert await closed_with(ws) == 4001
    ws, _ = await hello(node, "u1", version=2)
    await ws.close()


async def test_wrong_path_is_404(start_node: Start) -> None:
    node = await start_node()
    with pytest.raises(Exception, match="404"):
        await connect(node.url.replace("/ws", "/nope"))


# -- rooms, chat, presence ---------------------------------------------------------------


async def test_two_clients_chat_in_a_room(start_node: Start) -> None:
    node = await start_node()
    got: list[tuple[str, bytes]] = []

    async def record(topic: str, value: bytes) -> None:
        got.append((topic, value))

    consumer = asyncio.create_task(node.events.consume("test", [topics.CHAT_MESSAGES], record))
    await asyncio.sleep(0)
    a, _ = await hello(node, "alice")
    b, _ = await hello(node, "bob")
    await send(a, "room.join", {"room": "lobby"}, id=1)
    joined = await recv(a, "room.joined")
    assert joined["re"] == 1
    assert joined["d"] == {
        "room": "lobby",
        "members": [{"id": "alice", "name": "alice", "guest": False}],
        "history": [],
    }
    await send(b, "room.join", {"room": "lobby"}, id=1)
    assert [m["id"] for m in (await recv(b, "room.joined"))["d"]["members"]] == ["alice", "bob"]
    presence = await recv(a, "room.presence")
    assert presence["d"]["joined"][0]["id"] == "bob" and isinstance(presence["s"], int)

    await send(b, "chat.send", {"room": "lobby", "text": " hi there "}, id=2)
    # The message comes through the room channel, before the acknowledgement.
    from_b = {frame["t"]: frame for frame in [await recv(b), await recv(b)]}
    sent = from_b["chat.sent"]
    assert sent["re"] == 2
    for message in (await recv(a, "chat.message"), from_b["chat.message"]):
        assert message["d"]["text"] == "hi there"
        assert message["d"]["user"]["id"] == "bob"
        assert message["d"]["id"] == sent["d"]["id"]
        assert "s" in message

    c, _ = await hello(node, "carol")
    await send(c, "room.join", {"room": "lobby"})
    history = (await recv(c, "room.joined"))["d"]["history"]
    assert [m["text"] for m in history] == ["hi there"]

    await send(b, "room.leave", {"room": "lobby"}, id=3)
    assert (await recv(b, "room.left"))["re"] == 3
    assert [u["id"] for u in (await recv(a, "room.presence"))["d"]["joined"]] == ["carol"]
    assert [u["id"] for u in (await recv(a, "room.presence"))["d"]["left"]] == ["bob"]

    try:
        await asyncio.wait_for(_until(lambda: len(got) == 1), TIMEOUT)
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
    assert orjson.loads(got[0][1])["data"]["text"] == "hi there"
    for ws in (a, b, c):
        await ws.close()


async def test_chat_errors_are_replies(start_node: Start) -> None:
    node = await start_node(gateway_chat_max_text=10)
    ws, _ = await hello(node, "u1")
    await send(ws, "chat.send", {"room": "lobby", "text": "hi"}, id=4)
    assert (await recv(ws))["d"]["code"] == "not_found"
    await send(ws, "room.join", {"room": "lobby"})
    await recv(ws, "room.joined")
    await send(ws, "chat.send", {"room": "lobby", "text": "x" * 11}, id=5)
    reply = await recv(ws, "error")
    assert (reply["re"], reply["d"]["code"]) == (5, "bad_request")
    other, _ = await hello(node, "u2")  # only staff moderate the lobby
    await send(other, "room.join", {"room": "lobby"})
    await recv(other, "room.joined")
    await send(other, "chat.mute", {"room": "lobby", "user": "u1"}, id=6)
    assert (await recv(other, "error"))["d"]["code"] == "forbidden"
    for conn in (ws, other):
        await conn.close()


async def test_presence_set_and_query(start_node: Start) -> None:
    node = await start_node()
    a, _ = await hello(node, "alice")
    await send(a, "presence.set", {"status": "racing"}, id=1)
    assert (await recv(a))["d"] == {"status": "racing"}
    b, _ = await hello(node, "bob")
    for ws in (a, b):  # presence is answered for users who share a room
        await send(ws, "room.join", {"room": "den"}, id=9)
        await recv(ws, "room.joined")
    await send(b, "presence.query", {"users": ["alice", "bob", "zed"]}, id=2)
    state = await recv(b, "presence.state")
    assert state["d"]["users"] == {"alice": "racing", "bob": "online", "zed": "offline"}
    await a.close()
    await asyncio.wait_for(_until(lambda: node.gateway.statistics()["sessions"] == 1), TIMEOUT)
    await send(b, "presence.query", {"users": ["alice"]}, id=3)
    assert (await recv(b, "presence.state"))["d"]["users"] == {"alice": "offline"}
    await b.close()


# -- bad input -------------------------------------------------------------------------------


async def test_bad_frames_get_bad_request_and_the_socket_stays_open(start_node: Start) -> None:
    node = await start_node()
    ws, _ = await hello(node, "u1")
    await ws.send("not json")
    assert (await recv(ws))["d"]["code"] == "bad_request"
    await send(ws, "no.such.type", {}, id=7)
    reply = await recv(ws)
    assert (reply["re"], reply["d"]["code"]) == (7, "bad_request")
    await send(ws, "room.join", {"room": "bad room!"}, id=8)
    assert (await recv(ws))["re"] == 8
    await send(ws, "ping", id=9)
    assert (await recv(ws))["t"] == "pong"
    await ws.close()


async def test_a_garbage_flood_closes_with_4003(start_node: Start) -> None:
    node = await start_node(ws_max_bad_frames=5)
    ws, _ = await hello(node, "u1")
    for _ in range(5):
        await ws.send("{{{")
    assert await closed_with(ws) == 4003


async def test_an_oversize_frame_closes_with_1009(start_node: Start) -> None:
    node = await start_node(ws_max_frame_bytes=1024)
    ws, _ = await hello(node, "u1")
    await ws.send("x" * 2048)
    assert await closed_with(ws) == 1009


async def test_a_message_flood_is_rate_limited_then_closed(start_node: Start) -> None:
    node = await start_node(ws_rate_per_s=1.0, ws_rate_burst=3, ws_rate_strikes=5)
    ws, _ = await hello(node, "u1")
    for _ in range(3):
        await send(ws, "ping")
    await send(ws, "ping")
    frames = [await recv(ws) for _ in range(4)]
    assert frames[-1]["d"]["code"] == "rate_limited"
    for _ in range(5):
        await send(ws, "ping")
    assert await closed_with(ws) == 4029


async def _until(predicate: Callable[[], bool]) -> None:
    """Poll a condition the gateway exposes no event for; callers bound it with wait_for."""
    while True:
        if predicate():
            return
        await asyncio.sleep(0.01)
