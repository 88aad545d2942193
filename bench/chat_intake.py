"""CPU per ``chat.send`` taken in by one gateway process, clients in the same process.

A node built as ``typogram serve`` builds it (``gateway.server.gateway_of``) on the
embedded platform (in-memory ports, SQLite in a temporary folder) serves real
sockets; ``--clients`` ``websockets`` clients, each alone in its room, send
``chat.send`` one at a time and wait for their own ``chat.message`` before the
next, so every frame arrives while its connection's reader waits (the case the
inbound lane serves). Reports process CPU µs per message: the server's intake,
room and push path plus the clients' cost, which is the same for every tree, so
two trees' difference is their server's. CPU time moves far less with what else
the machine runs than latency does (it still moves: compare alternating runs)::

    python -m bench.chat_intake
    python -m bench.chat_intake --clients 50 --messages 20000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

import orjson
import uvloop
from websockets.asyncio.client import ClientConnection, connect

from gateway.server import gateway_of
from typogram.platform import open_platform
from typogram.settings import load


async def _client(url: str, token: str, room: str) -> ClientConnection:
    ws = await connect(url, compression=None)
    await ws.send(orjson.dumps({"t": "hello", "id": 1, "d": {"token": token}}).decode())
    assert orjson.loads(await ws.recv())["t"] == "welcome"
    await ws.send(orjson.dumps({"t": "room.join", "id": 2, "d": {"room": room}}).decode())
    while orjson.loads(await ws.recv())["t"] != "room.joined":
        pass
    return ws


async def _chat(ws: ClientConnection, room: str, messages: int) -> None:
    frame = orjson.dumps({"t": "chat.send", "d": {"room": room, "text": "x" * 100}}).decode()
    for _ in range(messages):
        await ws.send(frame)
        while orjson.loads(await ws.recv())["t"] != "chat.message":
            pass


async def main(clients: int, messages: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = load(
            env={},
            environment="test",
            data_dir=data_dir,
            ws_port=0,
            ws_rate_per_s=1_000_000,
            ws_rate_burst=1_000_000,
            gateway_chat_slow_mode_s=0,
            log_level="WARNING",
        )
        async with (
            open_platform(settings, migrate=True) as platform,
            gateway_of(platform) as gateway,
        ):
            stop = asyncio.Event()
            serving = asyncio.create_task(gateway.serve(stop))
            url = f"ws://127.0.0.1:{gateway.port}/ws"
            rooms = [f"room-{n:05d}" for n in range(clients)]
            sockets = [
                await _client(url, platform.tokens.issue_guest(room)[0], room) for room in rooms
            ]
            await asyncio.gather(*(_chat(ws, r, 50) for ws, r in zip(sockets, rooms, strict=True)))
            per = messages // clients
            for _ in range(rounds):
                cpu, wall = time.process_time(), time.perf_counter()
                await asyncio.gather(
                    *(_chat(ws, r, per) for ws, r in zip(sockets, rooms, strict=True))
                )
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                lane = gateway.statistics()["frames_on_lane"]
                print(
                    f"{per * clients} messages: {1e6 * cpu / (per * clients):.1f} µs CPU each, "
                    f"{per * clients / wall:,.0f}/s, frames on the lane so far {lane}",
                    flush=True,
                )
            for ws in sockets:
                await ws.close()
            stop.set()
            await serving


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    uvloop.run(main(args.clients, args.messages, args.rounds))
