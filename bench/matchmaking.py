"""Matchmaking at a steady ticket rate over two gateway processes through Redis.

Starts two ``typogram gateway`` processes on one Redis (``--redis``, a DB
index other than 0, a fresh key prefix), both running the matcher (default
settings: a round every ``match_interval_ms`` = 200 ms, five-seat races, a
group of at least two starts once its oldest ticket waited
``match_max_wait_ms`` = 4 s). For each rate (``--rates``, tickets/s, default
20, 50, 100) ``--procs`` picows client processes connect ``rate * --step-s``
fresh guest clients, alternating between the two nodes, then send one
``match.join`` each at evenly spaced times (difficulty cycling through
easy/medium/hard, lang ``en``) and wait for ``match.found``. Reported per
step: tickets sent, matched, p50/p95/p99/max time from ``match.join`` to
``match.found``, the races started and the CPU seconds both gateways used.
Guests all queue with rating 1500, so the rating window never holds a group
back; the wait is the fill time
(or ``match_max_wait_ms``) plus the matcher's round. Run::

    python -m bench.matchmaking
    python -m bench.matchmaking --rates 100,200 --step-s 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import time
import uuid
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

from picows import ws_connect

from bench.common import (
    GatewayProcess,
    Peer,
    cpu_s,
    delete_prefix,
    join_all,
    migrated_dir,
    percentile,
    print_table,
    raise_nofile,
)
from bench.common import guest_tokens as _tokens

GRACE_S = 8.0  # match_max_wait_ms plus rounds, for the last tickets of a step
DIFFICULTIES = ("easy", "medium", "hard")


class Worker:
    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.sent: dict[Peer, float] = {}
        self.latencies: list[float] = []
        self.races: set[str] = set()
        self.errors: Counter[str] = Counter()
        self.all_found = asyncio.Event()

    def on_frame(self, peer: Peer, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == "match.found":
            sent = self.sent.pop(peer, None)
            if sent is not None:
                self.latencies.append((time.monotonic() - sent) * 1000)
                self.races.add(message["d"]["race"])
            if not self.sent:
                self.all_found.set()
        elif kind == "error":
            self.errors[message["d"].get("code", "?")] += 1

    async def step(self, name: str, count: int, rate: float) -> dict[str, Any]:
        self.sent, self.latencies, self.races = {}, [], set()
        self.errors.clear()
        gate = asyncio.Semaphore(64)

        async def connect(index: int, token: str) -> Peer:
            async with gate:
                _, listener = await ws_connect(
                    lambda: Peer(token, self.on_frame), self.urls[index % len(self.urls)]
                )
                assert isinstance(listener, Peer)
                await asyncio.wait_for(listener.welcome, 60)
                return listener

        tokens = _tokens(count, prefix=name)
        peers = list(await asyncio.gather(*(connect(i, t) for i, t in enumerate(tokens))))
        started = time.monotonic()
        for index, peer in enumerate(peers):
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            difficulty = DIFFICULTIES[index % len(DIFFICULTIES)]
            self.sent[peer] = time.monotonic()
            peer.send({"t": "match.join", "d": {"mode": "race", "difficulty": difficulty}})
        send_s = time.monotonic() - started
        if self.sent:
            self.all_found.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_found.wait(), GRACE_S)
        unmatched = len(self.sent)
        for peer in peers:
            if peer.open and peer.transport is not None:
                peer.transport.send_close()
                peer.transport.disconnect()
        return {
            "sent": count,
            "send_s": send_s,
            "latencies": self.latencies,
            "races": len(self.races),
            "unmatched": unmatched,
            "errors": dict(self.errors),
        }


async def _worker_main(urls: list[str], pipe: Connection) -> None:
    worker = Worker(urls)
    loop = asyncio.get_running_loop()
    while (command := await loop.run_in_executor(None, pipe.recv))[0] == "step":
        _, name, count, rate = command
        pipe.send(await worker.step(name, count, rate))
    pipe.send(("done",))


def _worker_process(urls: list[str], pipe: Connection) -> None:
    raise_nofile()
    import uvloop

    uvloop.run(_worker_main(urls, pipe))


def run(args: argparse.Namespace, gateways: list[GatewayProcess]) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    procs, pipes = [], []
    rows: list[dict[str, Any]] = []
    try:
        for _ in range(args.procs):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_worker_process, args=([g.url for g in gateways], theirs))
            proc.start()
            procs.append(proc)
            pipes.append(mine)
        for number, rate in enumerate(args.rates):
            count = round(rate * args.step_s / args.procs)
            cpu_before = sum(cpu_s(g.pid) for g in gateways)
            for index, pipe in enumerate(pipes):
                pipe.send(("step", f"m{number}p{index}x", count, rate / args.procs))
            results = []
            for pipe in pipes:
                if not pipe.poll(args.step_s + GRACE_S + 120):
                    raise TimeoutError("a client process did not answer")
                results.append(pipe.recv())
            gateway_cpu_s = sum(cpu_s(g.pid) for g in gateways) - cpu_before
            latencies = [x for r in results for x in r["latencies"]]
            errors: Counter[str] = Counter()
            for r in results:
                errors.update(r["errors"])
            sent = sum(r["sent"] for r in results)
            row = {
                "tickets/s": rate,
                "sent": sent,
                "achieved/s": round(
                    sum(r["sent"] for r in results) / max(r["send_s"] for r in results), 1
                ),
                "matched": len(latencies),
                "races": sum(r["races"] for r in results),
                "p50_ms": round(percentile(latencies, 50)),
                "p95_ms": round(percentile(latencies, 95)),
                "p99_ms": round(percentile(latencies, 99)),
                "max_ms": round(max(latencies, default=float("nan"))),
                "unmatched": sum(r["unmatched"] for r in results),
                "gw_cpu_s": round(gateway_cpu_s, 2),  # both gateways, utime + stime
                "errors": dict(errors),
            }
            rows.append(row)
            print(row, flush=True)
        for pipe in pipes:
            pipe.send(("stop",))
        for pipe in pipes:
            if pipe.poll(30):
                pipe.recv()
    finally:
        join_all(procs)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--rates", default="20,50,100")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--step-s", type=float, default=15.0)
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    raise_nofile()
    data_dir = migrated_dir()
    prefix = f"bench{uuid.uuid4().hex[:8]}:"
    settings = {
        "redis_url": args.redis,
        "redis_prefix": prefix,
        "ws_max_connections": 20_000,
        "race_countdown_ms": 1000,
        "race_time_limit_ms": 5000,  # nobody types: the races end on their own
    }
    gateways = [GatewayProcess(data_dir, **settings), GatewayProcess(data_dir, **settings)]
    rows: list[dict[str, Any]] = []
    try:
        rows = run(args, gateways)
    finally:
        for gateway in gateways:
            gateway.stop()
        delete_prefix(args.redis, prefix)
    print_table(rows)


if __name__ == "__main__":
    main()
