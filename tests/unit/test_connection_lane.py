"""``chat.send`` on a connection's lane (``Connection._lane``), on a node built by the
composition root over the in-memory ports, with a fake socket: the test offers frames
to the lane (as ``websockets``' frame callback does while the reader waits) and feeds
others to the reader. A room's push log can be held shut, so a lane-started send stays
in flight while the next frames arrive -- the case where order could break."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, Counter
from websockets.exceptions import ConnectionClosedOK
from websockets.protocol import State

from gateway.connection.connection import Connection
from gateway.server import Gateway
from gateway.sessions.session import Session
from tests.conftest import make_settings, until
from tests.gateway_ports import memory_ports
from tests.unit import test_dispatch as dispatch_tests
from typogram.push_log import PushLog
from typogram.tasks import Supervisor
from typogram.tokens import Claims, TokenType

NOW = 1_900_000_000.0
ROOM = "lobby"


class HeldPushLog:
    """The in-memory push log, held shut while ``open`` is clear, failing with ``failure``."""

    def __init__(self, inner: PushLog) -> None:
        self.inner = inner
        self.open = asyncio.Event()
        self.open.set()
        self.failure: Exception | None = None

    async def append_numbered(self, *args: Any, **kwargs: Any) -> int:
        await self.open.wait()
        if self.failure is not None:
            raise self.failure
        return await self.inner.append_numbered(*args, **kwargs)


class _Protocol:
    """``websockets``' protocol object as the direct write uses it: with an extension
    negotiated, a frame's payload goes to ``send_text`` unframed."""

    state = State.OPEN
    extensions = ["an extension: payloads arrive unframed"]

    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []

    def send_text(self, data: bytes) -> None:
        self.written.append(orjson.loads(data))


class _Transport:
    def get_write_buffer_size(self) -> int:
        return 0


class Socket:
    """The server connection as ``Connection`` sees it: frames fed to its reader (``None``
    closes the stream), frames written back."""

    send_in_progress = None
    remote_address = ("127.0.0.1", 40000)
    state = State.OPEN
    close_code = None

    def __init__(self) -> None:
        self.protocol = _Protocol()
        self.transport = _Transport()
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()

    def send_data(self) -> None:
        pass

    def feed(self, frame: dict[str, Any] | None) -> None:
        self._inbox.put_nowait(None if frame is None else orjson.dumps(frame).decode())

    async def recv(self) -> str:
        frame = await self._inbox.get()
        if frame is None:
            raise ConnectionClosedOK(None, None)
        return frame

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.state = State.CLOSED

    def replies(self) -> list[tuple[int | None, str]]:
        """What was written back but pushes (those are numbered: ``s``)."""
        return [(f.get("re"), f["t"]) for f in self.protocol.written if "s" not in f]


class Link(dispatch_tests.Link):
    """Another member's socket: the frames pushed to it."""

    def heard(self) -> list[str]:
        return [f["d"]["text"] for f in self.frames if f["t"] == "chat.message"]


@dataclass
class Node:
    gateway: Gateway
    pushes: HeldPushLog
    failures: Counter

    def session(self, user: str) -> Session:
        claims = Claims(user, TokenType.ACCESS, 1, user, "user", "jti", int(NOW) + 3600)
        return self.gateway.hub.sessions.create(claims)

    async def member(self, user: str) -> Link:
        """A member of ``ROOM`` on a plain link."""
        session = self.session(user)
        session.link = link = Link()
        await self.gateway.hub.chat.join(session, ROOM, _ignore)
        return link

    async def connection(self, user: str = "ada") -> tuple[Connection, Socket]:
        """An attached connection in ``ROOM``."""
        sock = Socket()
        conn = Connection(sock, self.gateway.hub)  # type: ignore[arg-type]
        session = self.session(user)
        session.link, conn.session = conn, session
        await self.gateway.hub.chat.join(session, ROOM, _ignore)
        return conn, sock


def _ignore(kind: str, data: Mapping[str, Any]) -> None:
    pass


def frame(kind: str, data: dict[str, Any], id: int | None = None) -> dict[str, Any]:
    """A client frame as the clients' encoders write it: ``t`` first."""
    return {"t": kind, **({} if id is None else {"id": id}), "d": data}


def raw(kind: str, data: dict[str, Any], id: int | None = None) -> bytes:
    return orjson.dumps(frame(kind, data, id))


def send(text: str, id: int | None = None, room: str = ROOM) -> bytes:
    return raw("chat.send", {"room": room, "text": text}, id)


async def turns(n: int = 20) -> None:
    """Let the loop run a while (a held send stays held)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def node_with(**settings: object) -> AsyncIterator[Node]:
    config = make_settings(**settings)
    failures = Counter("t_lane_task_failures", "test", ["task"], registry=CollectorRegistry())
    async with contextlib.AsyncExitStack() as stack:
        ports = await memory_ports(stack, config)
        pushes = HeldPushLog(ports.pushes)
        held = dataclasses.replace(ports, pushes=pushes, tasks=Supervisor(failures))
        yield Node(Gateway(config, held, clock=lambda: NOW), pushes, failures)


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async for built in node_with():
        yield built


async def test_a_send_on_the_lane_is_served_as_the_reader_would(node: Node) -> None:
    bob = await node.member("bob")
    conn, sock = await node.connection()
    assert conn._lane(send("hello", id=5))
    assert node.gateway.hub.lane_frames == 1
    await conn._sent()
    assert sock.replies() == [(5, "chat.sent")]
    assert bob.heard() == ["hello"]
    assert [f["d"]["text"] for f in sock.protocol.written if f["t"] == "chat.message"] == [
        "hello"
    ]  # the sender's own copy
    assert conn._lane(send("no id"))  # the next one takes the lane again
    await conn._sent()
    assert sock.replies() == [(5, "chat.sent")] and bob.heard() == ["hello", "no id"]


async def held(node: Node) -> tuple[Link, Connection, Socket, asyncio.Task[None]]:
    """Bob in the room, ada's connection reading, and the room's push log held shut."""
    bob = await node.member("bob")
    conn, sock = await node.connection()
    reader = asyncio.create_task(conn._read())
    node.pushes.open.clear()
    return bob, conn, sock, reader


async def test_a_frame_after_a_lane_send_waits_until_the_send_is_done(node: Node) -> None:
    bob, conn, sock, reader = await held(node)
    assert conn._lane(send("last words", id=1))
    sock.feed(frame("room.leave", {"room": ROOM}, id=2))  # through the reader
    await turns()
    assert sock.replies() == [] and ROOM in conn.session.rooms  # type: ignore[union-attr]
    node.pushes.open.set()
    await until(lambda: len(sock.replies()) == 2)
    assert sock.replies() == [(1, "chat.sent"), (2, "room.left")]
    assert bob.heard() == ["last words"]
    sock.feed(None)
    await asyncio.wait_for(reader, 5)


async def test_while_a_lane_send_runs_the_lane_declines_every_frame(node: Node) -> None:
    bob, conn, sock, reader = await held(node)
    assert conn._lane(send("m1", id=1))
    assert not conn._lane(send("m2", id=2))
    assert not conn._lane(raw("race.progress", {"race": "r" * 32, "pos": 1}))
    assert node.gateway.hub.lane_frames == 1
    for n in range(2, 6):  # the declined burst takes the reader's queue
        sock.feed(frame("chat.send", {"room": ROOM, "text": f"m{n}"}, id=n))
    await turns()
    assert sock.replies() == []
    node.pushes.open.set()
    await until(lambda: len(sock.replies()) == 5)
    assert sock.replies() == [(n, "chat.sent") for n in range(1, 6)]
    assert bob.heard() == [f"m{n}" for n in range(1, 6)]
    sock.feed(None)
    await asyncio.wait_for(reader, 5)


async def test_the_reader_ends_only_after_the_lane_send() -> None:
    async for node in node_with():
        bob, conn, sock, reader = await held(node)
        assert conn._lane(send("goodbye", id=1))
        sock.feed(None)  # the client goes away meanwhile
        await turns()
        assert not reader.done()
        node.pushes.open.set()
        await asyncio.wait_for(reader, 5)
        assert bob.heard() == ["goodbye"] and conn._sending is None


async def test_a_send_still_running_when_the_connection_stops_is_cancelled(node: Node) -> None:
    bob = await node.member("bob")
    conn, _ = await node.connection()
    node.pushes.open.clear()
    assert conn._lane(send("never", id=1))
    await turns()
    await conn._stop_sending()
    node.pushes.open.set()
    await turns()
    assert bob.heard() == [] and conn._sending is None
    assert node.failures.labels("chat-send")._value.get() == 0


async def test_the_lane_applies_the_rate_limit() -> None:
    async for node in node_with(ws_rate_per_s=0.001, ws_rate_burst=1, ws_rate_strikes=5):
        bob = await node.member("bob")
        conn, sock = await node.connection()
        assert conn._lane(send("one", id=1))
        await conn._sent()
        assert conn._lane(send("two", id=2))  # taken, and refused
        assert conn._sending is None and node.gateway.hub.lane_frames == 1
        assert sock.protocol.written[-1]["t"] == "error"
        assert sock.protocol.written[-1]["d"]["code"] == "rate_limited"
        assert bob.heard() == ["one"]


async def test_malformed_sends_are_left_to_the_reader(node: Node) -> None:
    conn, sock = await node.connection()
    for bad in (
        raw("chat.send", {"room": 1, "text": "x"}, id=3),
        raw("chat.send", {"room": ROOM, "text": "hidden\u200bcharacter"}, id=3),
        b'{"t":"chat.send","id":3,"d":{"room":"\xff","text":"x"}}',
        b'{"t":"chat.send"',
        raw("chat.sendx", {"room": ROOM, "text": "x"}),
        raw("room.leave", {"room": ROOM}),
    ):
        assert not conn._lane(bad)
    assert not conn._lane(memoryview(send("fragments come as memoryviews")))
    assert node.gateway.hub.lane_frames == 0 and sock.protocol.written == []
    reader = asyncio.create_task(conn._read())
    sock.feed(frame("chat.send", {"room": ROOM, "text": "hidden\u200bcharacter"}, id=3))
    await until(lambda: sock.replies() == [(3, "error")])
    assert sock.protocol.written[-1]["d"]["code"] == "bad_request"
    sock.feed(None)
    await asyncio.wait_for(reader, 5)


async def test_a_refused_send_on_the_lane_is_answered_with_its_id(node: Node) -> None:
    conn, sock = await node.connection()
    assert conn._lane(send("where?", id=4, room="elsewhere"))
    await conn._sent()
    node.pushes.failure = ConnectionError("the push log is away")
    assert conn._lane(send("now?", id=6))
    await conn._sent()
    codes = [(f.get("re"), f["d"]["code"]) for f in sock.protocol.written if f["t"] == "error"]
    assert codes == [(4, "not_found"), (6, "unavailable")]
    assert node.failures.labels("chat-send")._value.get() == 0


async def test_a_lane_send_over_the_nodes_capacity_is_refused() -> None:
    async for node in node_with(gateway_chat_max_inflight=1):
        conn, sock = await node.connection("ada")
        other, _ = await node.connection("cy")
        node.pushes.open.clear()
        assert other._lane(send("first", id=1))  # holds the node's one slot
        await turns()
        assert conn._lane(send("second", id=2))
        await conn._sent()
        assert sock.replies() == [(2, "error")]
        assert sock.protocol.written[-1]["d"]["code"] == "unavailable"
        node.pushes.open.set()
        await other._sent()


async def test_a_lane_send_that_fails_past_its_answers_is_reported(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn, _ = await node.connection()

    def broken(*args: object) -> None:
        raise RuntimeError("a bug in answering")

    monkeypatch.setattr(Connection, "_failed", broken)  # slots: patched on the class
    assert conn._lane(send("where?", id=4, room="elsewhere"))
    await until(lambda: conn._sending is not None and conn._sending.done())
    assert conn._lane(send("next", id=5))  # the lane reaps the failed one and goes on
    assert node.failures.labels("chat-send")._value.get() == 1
    await conn._sent()
