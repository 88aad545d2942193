"""CPU per delivered room push inside one gateway process, without the network.

A room of ``--members`` sessions on this node, each attached to a real
``gateway.connection.connection.Connection`` over a stand-in socket whose transport counts
bytes instead of writing them; every push goes through the real path
(``Fanout`` → ``Session.deliver`` → numbering, watermark, replay buffer →
``Connection.send`` → framing). Reports process CPU µs per delivery, which
does not depend on what else the machine runs, so it isolates what the
gateway's Python costs per recipient (the socket write and the kernel come on
top; ``bench.chat`` measures everything)::

    python -m bench.deliver
    python -m bench.deliver --members 5 --pushes 50000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from types import SimpleNamespace
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from websockets.protocol import State

from gateway.chat.fanout import Fanout
from gateway.connection.connection import Connection
from gateway.metrics import GatewayMetrics
from gateway.sessions.session import SessionRegistry, Watermark
from typogram import keys
from typogram.adapters.memory import MemoryPubSub
from typogram.protocol import numbered_payload, push_payload
from typogram.settings import load
from typogram.tokens import Claims, TokenType


class _Transport:
    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_write_buffer_size(self) -> int:
        return 0


class _Protocol:
    state = State.OPEN
    extensions: list[Any] = []

    def send_text(self, data: bytes) -> None:
        raise AssertionError("plain connections frame on the direct path")


class _Socket:
    """What ``Connection`` touches of a ``websockets`` server connection."""

    send_in_progress = None

    def __init__(self) -> None:
        self.transport = _Transport()
        self.protocol = _Protocol()


def run(members: int, pushes: int) -> dict[str, float]:
    settings = load(None, {})
    hub: Any = SimpleNamespace(settings=settings, metrics=GatewayMetrics(CollectorRegistry()))
    registry = SessionRegistry(
        window_s=120, max_detached=10, replay_frames=256, replay_bytes=1 << 20
    )
    fanout = Fanout(MemoryPubSub(), registry)
    room = "bench-room"
    fanout._channels[keys.channel_room(room)] = room  # as after a confirmed SUBSCRIBE
    sockets = []
    for index in range(members):
        claims = Claims(f"u{index}", TokenType.ACCESS, 0, f"user {index}", "user", "", 0)
        session = registry.create(claims)
        sock = _Socket()
        link = Connection(sock, hub)  # type: ignore[arg-type]
        link.session, session.link = session, link
        session.add_room(room)
        session.marks[room] = Watermark(0)
        fanout._rooms.setdefault(room, set()).add(session)
        sockets.append(sock)
    channel = keys.channel_room(room)
    data = {"room": room, "id": "0" * 32, "user": {"id": "u1", "name": "user 1"}, "text": "x" * 60}
    payloads = [
        numbered_payload(n, push_payload("chat.message", data), time.time())
        for n in range(1, pushes + 1)
    ]
    start = time.process_time()
    for payload in payloads:
        fanout._on_room(channel, payload)
    spent = time.process_time() - start
    written = sum(s.transport.written for s in sockets)
    return {
        "members": members,
        "deliveries": members * pushes,
        "cpu_us_per_delivery": round(1e6 * spent / (members * pushes), 2),
        "bytes_per_delivery": round(written / (members * pushes), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--pushes", type=int, default=20_000)
    args = parser.parse_args()
    result = asyncio.run(_main(args.members, args.pushes))
    print(orjson.dumps(result).decode())


async def _main(members: int, pushes: int) -> dict[str, float]:
    return run(members, pushes)


if __name__ == "__main__":
    main()
