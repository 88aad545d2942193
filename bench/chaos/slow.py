"""A consumer that stops reading, in a busy room: closed with 4008, the others unharmed.

One ``typogram gateway`` (embedded backends). Chatters talk in one room at a
steady pace; every message carries the moment it was sent, so a listener
measures delivery latency. First a baseline; then a client joins the room
with a tiny receive buffer and never reads again. Its send queue fills and
the gateway closes it with 4008 (``ws_send_queue_size``, 256 frames by
default), without stalling the room:

* ``closed_after_s``: from the slow client's last read to its 4008 (goal
  < 10 s; ``goal_met`` 1 or 0). What it takes is the bytes the kernel
  buffers for the socket first: the gateway fixes its sockets' send buffer
  (``ws_send_buffer_bytes``, 128 KiB, which Linux doubles); with
  ``TYPOGRAM_WS_SEND_BUFFER_BYTES=0`` Linux grows it up to
  ``net.ipv4.tcp_wmem``'s maximum (4 MiB by default) and the queue starts
  filling only after half a minute. The invariant is a close within
  ``CLOSE_LIMIT_S``;
* ``p99_ms`` before and while the slow client sat in the room, and their
  ratio (goal ≤ 1.1; on a shared two-core machine the invariant checked is
  ≤ 2 + 20 ms, the figure says how close the goal is).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import time

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from bench.chaos.outcome import Outcome
from bench.common import GatewayProcess, free_port, guest_tokens, migrated_dir, percentile
from gateway.metrics import CLOSES
from tests.race_players import Player, close_players, connected_player

ROOM = "busy"
CLOSE_GOAL_S = 10.0
CLOSE_LIMIT_S = 90.0


async def slow_consumer(
    chatters: int = 20, rate_per_s: float = 10.0, phase_s: float = 5.0
) -> Outcome:
    outcome = Outcome("slow_consumer")
    data_dir = await asyncio.to_thread(migrated_dir)
    metrics_port = free_port()
    node = await asyncio.to_thread(
        GatewayProcess, data_dir, log_level="ERROR", metrics_port=metrics_port
    )
    players: list[Player] = []
    try:
        tokens = guest_tokens(chatters + 2, "s")
        for index, token in enumerate(tokens[:-1]):
            player = await connected_player(node.url, token, f"c{index}", 0)
            players.append(player)
            await player.client.request("room.join", {"room": ROOM})
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tasks:
            for player in players[1:]:
                tasks.create_task(_talk(player, 1 / rate_per_s, stop))
            await asyncio.sleep(1.0)  # warm up
            base_from = time.monotonic()
            await asyncio.sleep(phase_s)
            base_to = time.monotonic()
            slow, stopped_reading = await _slow_client(node.url, tokens[-1])
            code, closed_at = await _closed_by_server(metrics_port, CLOSE_LIMIT_S)
            await slow.close()
            slow_to = max(time.monotonic(), stopped_reading + phase_s)
            await asyncio.sleep(slow_to - time.monotonic())
            stop.set()
        listener = players[0]
        before = _latencies(listener, base_from, base_to)
        during = _latencies(listener, stopped_reading, slow_to)
    finally:
        await close_players(players)
        await asyncio.to_thread(node.stop, 10.0)
        shutil.rmtree(data_dir, ignore_errors=True)
    p99_before, p99_during = percentile(before, 99), percentile(during, 99)
    closed_after = None if closed_at is None else closed_at - stopped_reading
    outcome.figures |= {
        "messages_per_s": round(len(during) / max(0.001, slow_to - stopped_reading), 1),
        "close_code": code,
        "closed_after_s": None if closed_after is None else round(closed_after, 2),
        "goal_met": int(closed_after is not None and closed_after < CLOSE_GOAL_S),
        "p99_before_ms": round(p99_before, 1),
        "p99_during_ms": round(p99_during, 1),
        "p99_ratio": round(p99_during / p99_before, 2) if p99_before else None,
    }
    outcome.check(code == 4008, f"the slow client was closed with {code}, not 4008")
    outcome.check(
        closed_after is not None and closed_after < CLOSE_LIMIT_S,
        f"not closed within {CLOSE_LIMIT_S:g} s",
    )
    outcome.check(p99_during <= 2 * p99_before + 20, f"p99 {p99_before:.0f} → {p99_during:.0f} ms")
    return outcome


async def _talk(player: Player, period_s: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        text = f"{time.monotonic():.6f} " + "x" * 400  # a long line: the room is busy
        await player.client.send("chat.send", {"room": ROOM, "text": text})
        await asyncio.sleep(period_s)


def _latencies(listener: Player, start: float, end: float) -> list[float]:
    """Delivery latency (ms) of every message sent between ``start`` and ``end``."""
    found = []
    for arrived, frame in listener.frames:
        if frame.t != "chat.message":
            continue
        sent = float(str(frame.d["text"]).split(" ", 1)[0])
        if start <= sent < end:
            found.append((arrived - sent) * 1000)
    return found or [0.0]


async def _slow_client(url: str, token: str) -> tuple[ClientConnection, float]:
    """Joined to the room, then never reading again (a 4 KiB receive buffer)."""
    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    ws = await connect(url, sock=sock, max_queue=1, compression=None)
    await ws.send(orjson.dumps({"t": "hello", "d": {"token": token}}).decode())
    await _read_until(ws, lambda f: f.get("t") == "welcome")
    await ws.send(orjson.dumps({"t": "room.join", "id": 1, "d": {"room": ROOM}}).decode())
    await _read_until(ws, lambda f: f.get("re") == 1)
    return ws, time.monotonic()


async def _read_until(ws: ClientConnection, wanted: object) -> None:
    async with asyncio.timeout(10):
        while not wanted(orjson.loads(await ws.recv())):  # type: ignore[operator]
            pass


async def _closed_by_server(metrics_port: int, within_s: float) -> tuple[int | None, float | None]:
    """Poll the node's metrics listener until it counts a 4008 close (the client reads nothing,
    so it cannot see the close frame behind the data it left unread)."""
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{metrics_port}") as client:
        while time.monotonic() < deadline:
            text = (await client.get("/metrics")).text
            for line in text.splitlines():
                counted = line.startswith(f"{CLOSES}_total{{") and 'code="4008"' in line
                if counted and float(line.rsplit(" ", 1)[1]) >= 1:
                    return 4008, time.monotonic()
            await asyncio.sleep(0.05)
    return None, None
