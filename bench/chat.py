"""Chat fan-out across two gateway processes through Redis, at rising message rates.

Starts two ``typogram gateway`` processes on one Redis (``--redis``, a DB
index other than 0, a fresh key prefix) with the per-connection rate limit
lifted and no slow mode. For each room size (``--sizes``, default 5 and 20)
it fills ``--members`` connections into rooms of that size, alternating the
members of every room between the two nodes, with ``--procs`` picows client
processes (each owns whole rooms, so sender and receivers share a clock).
Then it raises the target rate of *deliveries* (one ``chat.message`` reaching
one member, sender included) step by step, each step ``--step-s`` seconds
plus a grace period for frames in flight, and reports per step:

* delivered chat.message frames per second (``delivered/s``), and of them
  those that reached a member other than the sender (``others/s``: the
  sender's own copy left out),
* p50/p95/p99 send-to-receive latency (the send time is in the message text),
* server CPU per delivered message: utime+stime of both gateway processes
  from ``/proc/PID/stat`` over the step, divided by deliveries, and the
  kernel's share of it (stime: socket writes, loopback delivery); Redis CPU
  the same way from ``INFO cpu``.

With ``--serve`` it starts one ``typogram serve`` instead (REST, the
gateway and every worker group in one process, on the embedded backends:
its own fresh data dir, no Redis, chat stored in SQLite by the ``chat``
worker). The CPU columns are then that one process, and in place of Redis
CPU it reports ``stored_%``: the chat rows stored during the step and its
grace period (a count of ``chat_messages`` read beside the writer) per
message sent in the step.

It stops raising the rate when less than 90 % of the target arrives or p99
passes one second. Run::

    python -m bench.chat
    python -m bench.chat --sizes 20 --rates 1000,5000,10000 --step-s 10
    python -m bench.chat --serve --sizes 5 --rates 2500,5000,10000 --step-s 8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import sqlite3
import tempfile
import time
import uuid
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol, cast

import redis
from picows import ws_connect

from bench.common import (
    GatewayProcess,
    Peer,
    cpu_times,
    delete_prefix,
    guest_tokens,
    join_all,
    migrated_dir,
    percentile,
    print_table,
    raise_nofile,
    recv_all,
)
from typogram import keys

GRACE_S = 2.0
TICK_S = 0.005


class Worker:
    """One client process: its rooms, their peers, and the counters of the current step."""

    def __init__(self, urls: list[str], rooms: list[str], size: int) -> None:
        self.urls, self.rooms, self.size = urls, rooms, size
        self.members: list[list[Peer]] = []
        self.step = ""
        self.latencies: list[float] = []
        self.delivered = self.to_others = 0
        self.errors: Counter[str] = Counter()
        self.joined: dict[Peer, asyncio.Future[None]] = {}
        self.user_of: dict[Peer, str] = {}

    def on_frame(self, peer: Peer, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == "chat.message":
            text = message["d"]["text"]
            step, _, sent_ns = text.partition(":")
            if step == self.step:
                self.delivered += 1
                self.to_others += message["d"]["user"]["id"] != self.user_of.get(peer)
                self.latencies.append((time.time_ns() - int(sent_ns)) / 1e6)
        elif kind == "room.joined":
            future = self.joined.get(peer)
            if future is not None and not future.done():
                future.set_result(None)
        elif kind == "error":
            self.errors[message["d"].get("code", "?")] += 1

    async def connect(self) -> None:
        tokens = iter(guest_tokens(len(self.rooms) * self.size, prefix="chat"))
        gate = asyncio.Semaphore(64)

        async def member(room: str, index: int) -> Peer:
            async with gate:
                token = next(tokens)
                url = self.urls[index % len(self.urls)]
                _, listener = await ws_connect(lambda: Peer(token, self.on_frame), url)
                peer = cast(Peer, listener)
                welcome = await asyncio.wait_for(peer.welcome, 30)
                self.user_of[peer] = welcome["d"]["user"]["id"]
                self.joined[peer] = asyncio.get_running_loop().create_future()
                peer.send({"t": "room.join", "id": 1, "d": {"room": room}})
                await asyncio.wait_for(self.joined[peer], 30)
                return peer

        for room in self.rooms:
            self.members.append(
                list(await asyncio.gather(*(member(room, i) for i in range(self.size))))
            )

    async def run_step(self, step: str, rate: float, duration_s: float) -> dict[str, Any]:
        """Send ``rate`` deliveries/s (``rate / size`` messages/s) for ``duration_s``."""
        self.step, self.latencies, self.delivered, self.to_others = step, [], 0, 0
        self.errors.clear()
        messages_per_s = rate / self.size
        started, sent, turn = time.monotonic(), 0, 0
        pairs = [(room, peers) for room, peers in zip(self.rooms, self.members, strict=True)]
        while (elapsed := time.monotonic() - started) < duration_s:
            due = int(elapsed * messages_per_s) - sent
            for _ in range(due):
                room, peers = pairs[turn % len(pairs)]
                sender = peers[(turn // len(pairs)) % len(peers)]
                text = f"{step}:{time.time_ns()}"
                sender.send({"t": "chat.send", "d": {"room": room, "text": text}})
                turn += 1
            sent += max(0, due)
            await asyncio.sleep(TICK_S)
        send_s = time.monotonic() - started
        await asyncio.sleep(GRACE_S)
        closed = sum(not p.open for peers in self.members for p in peers)
        return {
            "sent": sent,
            "send_s": send_s,
            "delivered": self.delivered,
            "to_others": self.to_others,
            "latencies": self.latencies,
            "errors": dict(self.errors),
            "closed": closed,
        }


async def _worker_main(urls: list[str], rooms: list[str], size: int, pipe: Connection) -> None:
    worker = Worker(urls, rooms, size)
    await worker.connect()
    pipe.send(("ready",))
    loop = asyncio.get_running_loop()
    while (command := await loop.run_in_executor(None, pipe.recv))[0] == "step":
        _, step, rate, duration_s = command
        pipe.send(await worker.run_step(step, rate, duration_s))
    for peers in worker.members:
        for peer in peers:
            if peer.open and peer.transport is not None:
                peer.transport.send_close()
                peer.transport.disconnect()
    pipe.send(("done",))


def _worker_process(urls: list[str], rooms: list[str], size: int, pipe: Connection) -> None:
    raise_nofile()
    import uvloop

    uvloop.run(_worker_main(urls, rooms, size, pipe))


class Backend(Protocol):
    """What stands behind the gateways: ready for the rooms, and its own column per step."""

    def ready(self, rooms: list[str]) -> None: ...
    def start_step(self) -> None: ...
    def columns(self, delivered: int, sent: int) -> dict[str, Any]: ...
    def close(self) -> None: ...


class SharedRedis:
    """The Redis both gateways use: every room channel subscribed by every node, its CPU."""

    def __init__(self, url: str, prefix: str, nodes: int) -> None:
        self.client = redis.Redis.from_url(url)
        self.prefix, self.nodes = prefix, nodes
        self.cpu0 = 0.0

    def _cpu(self) -> float:
        info = self.client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def ready(self, rooms: list[str]) -> None:
        deadline = time.monotonic() + 30
        channels = [self.prefix + keys.channel_room(room) for room in rooms]
        while True:
            counts = dict(self.client.pubsub_numsub(*channels))
            if all(int(counts.get(c.encode(), 0)) == self.nodes for c in channels):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("room channels not subscribed on every node")
            time.sleep(0.05)

    def start_step(self) -> None:
        self.cpu0 = self._cpu()

    def columns(self, delivered: int, sent: int) -> dict[str, Any]:
        del sent
        return {"redis_us/deliv": round(1e6 * (self._cpu() - self.cpu0) / max(1, delivered), 1)}

    def close(self) -> None:
        self.client.close()


class EmbeddedStore:
    """``typogram serve``'s SQLite file: how many chat rows it has stored (read beside
    the writer: WAL lets a reader in)."""

    def __init__(self, data_dir: str) -> None:
        self.path = Path(data_dir) / "typogram.sqlite3"
        self.rows0 = 0

    def _rows(self) -> int:
        with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as db:
            (count,) = db.execute("SELECT COUNT(*) FROM chat_messages").fetchone()
            return int(count)

    def ready(self, rooms: list[str]) -> None:
        del rooms  # in-process pub/sub: a member's room.joined means its room is subscribed

    def start_step(self) -> None:
        self.rows0 = self._rows()

    def columns(self, delivered: int, sent: int) -> dict[str, Any]:
        del delivered
        return {"stored_%": round(100 * (self._rows() - self.rows0) / max(1, sent), 1)}

    def close(self) -> None:
        pass


def run_size(
    args: argparse.Namespace, gateways: list[GatewayProcess], backend: Backend, size: int
) -> list[dict[str, Any]]:
    rooms = [f"r{size}-{i}-{uuid.uuid4().hex[:6]}" for i in range(max(1, args.members // size))]
    urls = [g.url for g in gateways]
    ctx = mp.get_context("spawn")
    workers, pipes = [], []
    rows = []
    try:
        for index in range(args.procs):
            mine, theirs = ctx.Pipe()
            share = rooms[index :: args.procs]
            proc = ctx.Process(target=_worker_process, args=(urls, share, size, theirs))
            proc.start()
            workers.append(proc)
            pipes.append(mine)
        recv_all(pipes, 120)
        backend.ready(rooms)
        for number, rate in enumerate(args.rates):
            cpu0 = [cpu_times(g.pid) for g in gateways]
            backend.start_step()
            for pipe in pipes:
                pipe.send(("step", f"s{number}", rate / args.procs, args.step_s))
            with gateways[0].profiling():
                results = recv_all(pipes, args.step_s + GRACE_S + 60)
            cpu1 = [cpu_times(g.pid) for g in gateways]
            server_sys = sum(b[1] - a[1] for a, b in zip(cpu0, cpu1, strict=True))
            server_cpu = server_sys + sum(b[0] - a[0] for a, b in zip(cpu0, cpu1, strict=True))
            delivered = sum(r["delivered"] for r in results)
            sent = sum(r["sent"] for r in results)
            send_s = max(r["send_s"] for r in results)
            latencies = [x for r in results for x in r["latencies"]]
            errors: Counter[str] = Counter()
            for r in results:
                errors.update(r["errors"])
            row = {
                "size": size,
                "rooms": len(rooms),
                "target/s": rate,
                "msgs/s": round(sent / send_s),
                "delivered/s": round(delivered / send_s),
                "others/s": round(sum(r["to_others"] for r in results) / send_s),
                "p50_ms": round(percentile(latencies, 50), 1),
                "p95_ms": round(percentile(latencies, 95), 1),
                "p99_ms": round(percentile(latencies, 99), 1),
                "gw_cpu_us/deliv": round(1e6 * server_cpu / max(1, delivered), 1),
                "gw_sys_us/deliv": round(1e6 * server_sys / max(1, delivered), 1),
                "gw_cpu_%": round(100 * server_cpu / (send_s + GRACE_S)),
                **backend.columns(delivered, sent),
                "errors": dict(errors),
                "closed": sum(r["closed"] for r in results),
            }
            rows.append(row)
            print(row, flush=True)
            expected = sent * size
            if (
                delivered < 0.9 * expected
                or row["p99_ms"] > 1000
                or delivered < 0.9 * rate * send_s
            ):
                break
        for pipe in pipes:
            pipe.send(("stop",))
        recv_all(pipes, 60)
    finally:
        join_all(workers)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument(
        "--serve", action="store_true", help="one `typogram serve` (embedded) instead"
    )
    parser.add_argument("--sizes", default="5,20")
    parser.add_argument("--rates", default="500,1000,2000,5000,10000,20000,40000")
    parser.add_argument("--members", type=int, default=1000, help="connections per room size")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--step-s", type=float, default=10.0)
    parser.add_argument(
        "--profile", default="", help="CPU-profile the first gateway's steps into this file"
    )
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    raise_nofile()
    settings: dict[str, Any] = {
        "ws_rate_per_s": 1_000_000,
        "ws_rate_burst": 1_000_000,
        "gateway_chat_slow_mode_s": 0,
        "ws_max_connections": 20_000,
        "ws_send_queue_size": 4096,
    }
    prefix = f"bench{uuid.uuid4().hex[:8]}:"
    backend: Backend
    if args.serve:
        data_dir = tempfile.mkdtemp(prefix="typogram-bench-serve-")
        gateways = [
            GatewayProcess(
                data_dir, role="serve", profile=args.profile, profile_steps=True, **settings
            )
        ]
        backend = EmbeddedStore(data_dir)
    else:
        data_dir = migrated_dir()
        settings.update(redis_url=args.redis, redis_prefix=prefix)
        gateways = [GatewayProcess(data_dir, profile=args.profile, profile_steps=True, **settings)]
        gateways.append(GatewayProcess(data_dir, **settings))
        backend = SharedRedis(args.redis, prefix, len(gateways))
    rows = []
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            rows += run_size(args, gateways, backend, size)
    finally:
        for gateway in gateways:
            gateway.stop()
        backend.close()
        if not args.serve:
            delete_prefix(args.redis, prefix)
    print_table(rows)


if __name__ == "__main__":
    main()
