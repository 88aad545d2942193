"""CPU per session mark: what a numbered frame costs the session records, in one process.

``--sessions`` sessions in rooms of ``--size`` on one ``SessionStore`` over real
Redis (``--redis``, a DB other than 0, a fresh key prefix), each claimed and
holding ``--frames`` room pushes in its replay buffer. Per round, a room push
is delivered to the members of ``--marked`` rooms (every delivery marks its
session) and the store flushes the batch, as its 20 ms tick does. Reports
this process's CPU µs per marked session (delivery and numbering included,
as in the gateway) and Redis's (``INFO cpu``) per marked session; both are
CPU time, so they hold on a busy machine, unlike ``bench.chat``'s latency::

    python -m bench.marks
    python -m bench.marks --sessions 1000 --marked 50 --rounds 400
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import orjson
import redis

from bench.common import delete_prefix
from gateway.sessions.session import SessionRegistry, Watermark
from gateway.sessions.store import SessionStore
from typogram.adapters.redis import RedisCache
from typogram.adapters.redis_scripts import RedisFencedWrites
from typogram.protocol import Push, numbered_payload, parse_push, push_payload
from typogram.tokens import Claims, TokenType


def _redis_cpu(url: str) -> float:
    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    finally:
        client.close()


class _Link:
    """An attached socket that drops what it is sent."""

    def send(self, frame: bytes, kind: str) -> None:
        pass

    def terminate(self, code: int, reason: str, *, flush: bool = False) -> None:
        pass


def _push(room: str, number: int) -> Push:
    data = {"room": room, "id": "0" * 32, "user": {"id": "u1", "name": "user 1"}, "text": "x" * 60}
    push = parse_push(numbered_payload(number, push_payload("chat.message", data), time.time()))
    assert push is not None
    return push


async def run(url: str, sessions: int, size: int, frames: int, marked: int, rounds: int) -> Any:
    prefix = f"benchmarks{uuid.uuid4().hex[:8]}:"
    registry = SessionRegistry(
        window_s=120, max_detached=10, replay_frames=256, replay_bytes=1 << 20
    )
    try:
        async with RedisCache(url, prefix=prefix) as cache:
            store = SessionStore(cache, RedisFencedWrites(cache), "bench-node", 600.0, time.time)
            registry.numbered = store.mark  # as the hub does
            rooms: list[list[Any]] = []
            for index in range(sessions):
                claims = Claims(f"u{index}", TokenType.ACCESS, 0, f"user {index}", "user", "", 0)
                session = registry.create(claims)
                await store.claim(session.id)
                store.touch(session)  # its first record, as at the session's start
                room = f"room-{index // size}"
                session.add_room(room)
                session.marks[room] = Watermark(0)
                session.link = _Link()
                if index % size == 0:
                    rooms.append([])
                rooms[-1].append(session)
            numbers = dict.fromkeys(range(len(rooms)), 0)
            for members_index, members in enumerate(rooms):
                room = f"room-{members_index}"
                for _ in range(frames):
                    numbers[members_index] += 1
                    push = _push(room, numbers[members_index])
                    for session in members:
                        session.deliver(push, room)
            await store.flush()
            pushes = [_push(f"room-{i}", 0) for i in range(len(rooms))]
            start_cpu, start_redis = time.process_time(), _redis_cpu(url)
            marks = 0
            for round_index in range(rounds):
                for k in range(marked):
                    index = (round_index * marked + k) % len(rooms)
                    room, members = f"room-{index}", rooms[index]
                    numbers[index] += 1
                    push = pushes[index]
                    push.number = numbers[index]
                    for session in members:
                        session.deliver(push, room)
                    marks += len(members)
                await store.flush()
            cpu = time.process_time() - start_cpu
            redis_cpu = _redis_cpu(url) - start_redis
            if store.failures or store.fences:
                raise RuntimeError(f"store: {store.statistics()}")
    finally:
        delete_prefix(url, prefix)
    return {
        "sessions": sessions,
        "marks_per_flush": marked * size,
        "marks": marks,
        "cpu_us_per_mark": round(1e6 * cpu / marks, 2),
        "redis_us_per_mark": round(1e6 * redis_cpu / marks, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--size", type=int, default=5, help="members per room")
    parser.add_argument("--frames", type=int, default=100, help="frames in each replay buffer")
    parser.add_argument("--marked", type=int, default=50, help="rooms pushed to per flush")
    parser.add_argument("--rounds", type=int, default=400)
    args = parser.parse_args()
    result = asyncio.run(
        run(args.redis, args.sessions, args.size, args.frames, args.marked, args.rounds)
    )
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
