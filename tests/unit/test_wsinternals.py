"""The ``websockets`` internals ``gateway.connection.wsinternals`` relies on, on real sockets.

Fails when a ``websockets`` release renames, retypes or re-signs any of them,
or when a frame written the direct way stops reading back as the frame sent.
"""

from __future__ import annotations

import asyncio
import inspect
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosedError
from websockets.protocol import State

from gateway.connection.wsinternals import (
    LanedConnection,
    abort,
    direct_writer,
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
