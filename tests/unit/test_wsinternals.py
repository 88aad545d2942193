"""The ``websockets`` internals ``gateway.connection.wsinternals`` relies on, on real sockets.

Fails when a ``websockets`` release renames, retypes or re-signs any of them,
or when a frame written the direct way stops reading back as the frame sent.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import tomllib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.requirements import Requirement
from websockets.asyncio import connection as ws_connection
from websockets.asyncio import messages as ws_messages
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosedError
from websockets.protocol import State

from gateway.connection.wsinternals import (
    LanedConnection,
    LazyDeque,
    abort,
    direct_writer,
    forget_handshake,
    pong_future,
)

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def _pair(
    compression: str | None = None,
) -> AsyncIterator[tuple[LanedConnection, ClientConnection]]:
    """A real server connection (the gateway's base class) and its client."""
    accepted: asyncio.Future[LanedConnection] = asyncio.get_running_loop().create_future()
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        assert isinstance(ws, LanedConnection)
        accepted.set_result(ws)
        await done.wait()

    async with serve(
        handler, "127.0.0.1", 0, create_connection=LanedConnection, compression=compression
    ) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/", compression=compression) as client:
            ws = await asyncio.wait_for(accepted, 5)
            try:
                yield ws, client
            finally:
                done.set()


def test_the_installed_websockets_is_the_supported_one() -> None:
    """The pin in pyproject.toml names the releases this module was checked against."""
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    requirement = next(
        r for r in map(Requirement, project["dependencies"]) if r.name == "websockets"
    )
    assert requirement.specifier.contains(version("websockets")), requirement
    assert any(s.operator == "<" for s in requirement.specifier), "needs an upper bound"


async def test_the_attributes_have_the_expected_shapes() -> None:
    async with _pair() as (ws, _client):
        messages = ws.recv_messages
        assert isinstance(messages.get_in_progress, bool)
        assert isinstance(len(messages.frames), int)
        assert ws.send_in_progress is None
        transport = ws.transport
        assert isinstance(transport, asyncio.Transport)
        assert isinstance(transport.get_write_buffer_size(), int)
        assert callable(transport.write) and callable(transport.abort)
        assert ws.protocol.state is State.OPEN
        assert ws.protocol.extensions == []
        assert list(inspect.signature(ws.protocol.send_text).parameters)[:1] == ["data"]
        assert list(inspect.signature(ws.send_data).parameters) == []
        assert list(inspect.signature(ws.process_event).parameters) == ["event"]


async def test_the_lane_takes_frames_only_while_the_reader_waits_with_nothing_queued() -> None:
    async with _pair() as (ws, client):
        offered: list[bytes] = []

        def lane(data: Any) -> bool:
            offered.append(bytes(data))
            return data.startswith(b"take")

        ws.lane = lane
        # Nobody reads yet: frames are queued, never offered.
        await client.send("queued first")
        await asyncio.sleep(0.05)
        assert offered == [] and len(ws.recv_messages.frames) == 1
        assert await ws.recv() == "queued first"
        reading = asyncio.ensure_future(ws.recv())
        await asyncio.sleep(0.01)
        assert ws.recv_messages.get_in_progress
        await client.send("take me")
        await client.send("leave me")
        assert await asyncio.wait_for(reading, 5) == "leave me"
        assert offered == [b"take me", b"leave me"]


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_a_directly_written_frame_reads_back(compression: str | None) -> None:
    async with _pair(compression) as (ws, client):
        assert bool(ws.protocol.extensions) == (compression is not None)
        write = direct_writer(ws, 64 * 1024)
        for payload in (b'{"t":"x"}', b"y" * 200, b"z" * 70_000):
            assert write(payload)
            assert await asyncio.wait_for(client.recv(decode=False), 5) == payload
        assert not direct_writer(ws, 0)(b"held back")  # over the buffer limit: not written
        await ws.send("after", text=True)
        assert await asyncio.wait_for(client.recv(), 5) == "after"


async def test_no_direct_write_once_the_socket_is_closing() -> None:
    async with _pair() as (ws, _client):
        write = direct_writer(ws, 64 * 1024)
        await ws.close()
        assert ws.protocol.state is not State.OPEN
        assert not write(b"too late")


async def test_ping_returns_a_future_resolved_by_the_pong() -> None:
    async with _pair() as (ws, _client):
        pong = pong_future(await ws.ping())
        latency = await asyncio.wait_for(pong, 5)
        assert isinstance(latency, float) and pong.done()


async def test_abort_cuts_the_connection() -> None:
    async with _pair() as (ws, client):
        abort(ws)
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(client.recv(), 5)


def test_websockets_uses_only_what_the_lazy_buffers_offer() -> None:
    """``LazyDeque`` has ``append``, ``popleft``, ``extendleft`` and ``len``; the list
    standing for ``drain_waiters`` has ``append``, ``remove`` and iteration."""
    queue_ops = set(re.findall(r"self\.queue\.(\w+)", inspect.getsource(ws_messages)))
    assert queue_ops <= {"append", "popleft", "extendleft"}, queue_ops
    waiter_ops = set(re.findall(r"self\.drain_waiters\.(\w+)", inspect.getsource(ws_connection)))
    assert waiter_ops <= {"append", "remove"}, waiter_ops


@given(
    moves=st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.integers()),
            st.tuples(st.just("popleft"), st.none()),
            st.tuples(st.just("extendleft"), st.lists(st.integers(), max_size=4)),
        ),
        max_size=40,
    )
)
def test_a_lazy_deque_is_a_deque_that_exists_only_while_items_wait(
    moves: list[tuple[str, Any]],
) -> None:
    lazy: LazyDeque[int] = LazyDeque()
    reference: deque[int] = deque()
    for op, arg in moves:
        if op == "popleft":
            if reference:
                assert lazy.popleft() == reference.popleft()
            else:
                with pytest.raises(IndexError):
                    lazy.popleft()
        else:
            getattr(lazy, op)(arg)
            getattr(reference, op)(arg)
        assert len(lazy) == len(reference) and bool(lazy) == bool(reference)
        assert (lazy._items is None) == (not reference)  # no deque while empty


async def test_the_buffers_are_lazy_and_frames_still_arrive_in_order() -> None:
    async with _pair() as (ws, client):
        assert isinstance(ws.recv_messages.frames.queue, LazyDeque)
        assert ws.drain_waiters == []
        for n in range(40):  # past max_queue (16): reading pauses, then resumes
            await client.send(f"m{n}")
        await client.send(["frag", "ment", "ed"])
        await asyncio.sleep(0.05)
        assert [await ws.recv() for _ in range(40)] == [f"m{n}" for n in range(40)]
        assert await ws.recv() == "fragmented"
        assert not len(ws.recv_messages.frames)


async def test_a_paused_writer_waits_in_the_drain_list_and_resumes() -> None:
    async with _pair() as (ws, client):
        blob = "x" * 65536

        async def flood() -> None:
            for _ in range(400):  # far more than the kernel buffers on both ends hold
                await ws.send(blob)

        sending = asyncio.ensure_future(flood())
        for _ in range(1000):  # the client reads nothing: the server pauses
            if ws.drain_waiters:
                break
            await asyncio.sleep(0.01)
        assert len(ws.drain_waiters) == 1 and not sending.done()
        for _ in range(400):
            assert await asyncio.wait_for(client.recv(), 5) == blob
        await asyncio.wait_for(sending, 5)
        assert ws.drain_waiters == []


async def test_a_connection_works_on_after_forgetting_its_handshake() -> None:
    async with _pair() as (ws, client):
        assert ws.request is not None and list(ws.request.headers.raw_items())
        forget_handshake(ws)
        assert ws.response is None and not list(ws.request.headers.raw_items())
        await client.send("after")
        assert await asyncio.wait_for(ws.recv(), 5) == "after"
        await ws.send("back")
        assert await asyncio.wait_for(client.recv(), 5) == "back"
        await ws.close()
        await asyncio.wait_for(ws.wait_closed(), 5)
