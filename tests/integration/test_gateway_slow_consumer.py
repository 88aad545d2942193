"""A client that stops reading is closed with 4008 within seconds; a slow one is not.

The gateway caps its sockets' kernel send buffer (``ws_send_buffer_bytes``):
without the cap Linux grows it up to ``net.ipv4.tcp_wmem``'s maximum (4 MiB)
before the gateway's own send queue starts to fill, so a consumer that
stopped reading in a busy room went unnoticed for most of a minute.
"""

from __future__ import annotations

import asyncio
import socket
import time

from websockets.asyncio.client import ClientConnection, connect

from gateway.connection.connection import Connection
from tests.integration.test_gateway import (
    TIMEOUT,
    Node,
    Start,
    _until,
    closed_with,
    hello,
    recv,
    send,
    start_node,
)
from typogram import keys
from typogram.protocol import push_payload

__all__ = ["start_node"]  # the fixture, imported so pytest finds it here

ROOM = "busy"
CLOSE_GOAL_S = 10.0


async def _tiny_window_client(node: Node, user: str) -> ClientConnection:
    """Joined to ``ROOM`` over a socket with a 4 KiB receive buffer."""
    host, port = node.url.removeprefix("ws://").split("/")[0].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    ws = await connect(node.url, sock=sock, max_queue=1, compression=None)
    await send(ws, "hello", {"token": node.token(user)})
    await recv(ws, "welcome")
    await send(ws, "room.join", {"room": ROOM})
    await recv(ws, "room.joined")
    return ws


async def _listener(node: Node, user: str) -> ClientConnection:
    ws, _ = await hello(node, user)
    await send(ws, "room.join", {"room": ROOM})
    await recv(ws, "room.joined")
    return ws


def _server_socket(node: Node) -> socket.socket:
    """The gateway's end of its one connection."""
    (conn,) = node.gateway.hub.connections
    assert isinstance(conn, Connection)
    sock: socket.socket = conn._ws.transport.get_extra_info("socket")
    return sock


async def _publish(node: Node, count: int, per_s: float, size: int) -> None:
    """``count`` room pushes of ``size`` bytes at ``per_s``, as a busy room's fan-out."""
    started = time.monotonic()
    for n in range(count):
        payload = push_payload("room.notice", {"room": ROOM, "n": n, "blob": "x" * size})
        await node.pubsub.publish(keys.channel_room(ROOM), payload)
        await asyncio.sleep(max(0.0, started + (n + 1) / per_s - time.monotonic()))


async def _count_notices(ws: ClientConnection, count: int) -> list[int]:
    seen: list[int] = []
    while len(seen) < count:
        frame = await recv(ws, "room.notice")
        seen.append(frame["d"]["n"])
    return seen


async def test_a_client_that_stops_reading_is_closed_within_10_s(start_node: Start) -> None:
    node = await start_node()  # the default queue (256 frames) and send buffer cap
    listener = await _listener(node, "listener")
    stalled = await _tiny_window_client(node, "stalled")
    stalled.transport.pause_reading()  # never reads again
    stopped = time.monotonic()
    rate, total = 150.0, 150 * 12  # ~150 KB/s for 12 s: a busy room
    publishing = asyncio.create_task(_publish(node, total, rate, 1000))
    receiving = asyncio.create_task(_count_notices(listener, total))
    # Closed means gone: counted as a 4008 close once the socket is released, though
    # the client reads nothing (not even the close frame behind the data it left unread).
    await asyncio.wait_for(
        _until(lambda: node.metric("typogram_gateway_closes_total", code="4008") == 1),
        CLOSE_GOAL_S + 5,
    )
    closed_after = time.monotonic() - stopped
    assert closed_after < CLOSE_GOAL_S, f"closed after {closed_after:.1f} s"
    assert node.metric("typogram_gateway_slow_consumer_closes_total") == 1
    assert node.gateway.statistics()["connections"] == 1
    await publishing
    seen = await asyncio.wait_for(receiving, TIMEOUT)
    assert seen == list(range(total))  # the others received every push, in order
    stalled.transport.resume_reading()
    assert await closed_with(stalled) in {4008, 1006}
    await listener.close()


async def test_a_slow_reader_in_a_normal_room_stays(start_node: Start) -> None:
    """A mobile client: a small window, reads in bursts with pauses of seconds."""
    node = await start_node()
    mobile = await _tiny_window_client(node, "mobile")
    total = 20 * 8  # 20 pushes of 500 bytes a second for 8 s: a lively room
    publishing = asyncio.create_task(_publish(node, total, 20.0, 500))
    seen: list[int] = []
    while len(seen) < total:
        if len(seen) in (30, 100):
            mobile.transport.pause_reading()  # a tunnel: nothing read for 3 s
            await asyncio.sleep(3.0)
            mobile.transport.resume_reading()
        seen.append((await recv(mobile, "room.notice"))["d"]["n"])
        await asyncio.sleep(0.01)  # a slow reader
    await publishing
    assert seen == list(range(total))
    assert node.metric("typogram_gateway_slow_consumer_closes_total") == 0
    await send(mobile, "ping", id=7)
    assert (await recv(mobile, "pong"))["re"] == 7
    await mobile.close()


async def test_the_send_buffer_cap_is_set_on_accepted_sockets(start_node: Start) -> None:
    node = await start_node(ws_send_buffer_bytes=65536)
    ws, _ = await hello(node, "alice")
    sock = _server_socket(node)
    # Linux doubles the value asked for (bookkeeping overhead) and stops autotuning it.
    assert 65536 <= sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) <= 2 * 65536
    await ws.close()


async def test_a_zero_send_buffer_leaves_the_kernel_default(start_node: Start) -> None:
    node = await start_node(ws_send_buffer_bytes=0)
    ws, _ = await hello(node, "alice")
    sock = _server_socket(node)
    probe = socket.socket()
    try:  # an untouched socket's size: what autotuning starts from
        default = probe.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    finally:
        probe.close()
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) >= default
    await ws.close()
