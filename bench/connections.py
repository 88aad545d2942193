"""Connection scale: N idle authenticated WebSocket connections on one gateway process.

Starts ``typogram gateway`` itself (embedded backends, ``ws_max_connections``
just above N, a short heartbeat), then ``--procs`` client processes open
their share of the N connections with picows, each saying hello with a
locally minted guest token and waiting for ``welcome``. Reports:

* time to connect all (first connect to last welcome),
* server RSS before/after and RSS per connection (``/proc/PID/status``),
* server CPU while idle over the hold period (pings and presence refreshes),
* whether heartbeats hold: every socket still open after ``--hold`` seconds
  (default 2 x heartbeat + 2 s; a client that did not answer pings would be dropped).

With ``--heap PREFIX`` the gateway runs under tracemalloc (``bench.heap``):
heap snapshots before connecting and after the hold, and what each idle
connection holds, by where it was allocated (bytes per connection). Its RSS
and CPU figures then include the tracing; take those from a run without it.

Run::

    python -m bench.connections --connections 5000
    python -m bench.connections --connections 19000 --procs 2
    python -m bench.connections --connections 2000 --heap /tmp/idle   # what a socket holds
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import time
import tracemalloc
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

from picows import ws_connect

from bench.common import (
    GatewayProcess,
    Peer,
    cpu_s,
    guest_tokens,
    ignore,
    migrated_dir,
    raise_nofile,
    rss_kib,
)

CONNECT_CONCURRENCY = 64  # handshakes in flight per client process
CONNECT_TIMEOUT_S = 120.0
HEAP_TOP = 30  # allocation sites listed with --heap


async def _client_main(url: str, count: int, index: int, pipe: Connection) -> None:
    tokens = guest_tokens(count, prefix=f"c{index}-")
    peers: list[Peer] = []
    failures: Counter[str] = Counter()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def open_one(token: str) -> None:
        async with gate:
            try:
                _, listener = await ws_connect(lambda: Peer(token, ignore), url)
                peer = cast(Peer, listener)
                peers.append(peer)
                await asyncio.wait_for(peer.welcome, 30)
            except Exception as exc:  # counted and reported, the run goes on
                failures[type(exc).__name__ + ":" + str(exc)[:60]] += 1

    started = time.monotonic()
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        await asyncio.gather(*(open_one(t) for t in tokens))
    connected = sum(p.open and p.welcome.done() and not p.welcome.exception() for p in peers)
    pipe.send(("connected", connected, time.monotonic() - started, dict(failures)))
    loop = asyncio.get_running_loop()
    command = await loop.run_in_executor(None, pipe.recv)
    assert command == "check"
    closes = Counter(str(p.close_code) for p in peers if not p.open)
    pipe.send(("alive", sum(p.open for p in peers), dict(closes)))
    command = await loop.run_in_executor(None, pipe.recv)
    for peer in peers:
        if peer.open and peer.transport is not None:
            peer.transport.send_close()
            peer.transport.disconnect()
    pipe.send(("closed",))


def _client_process(url: str, count: int, index: int, pipe: Connection) -> None:
    raise_nofile()
    import uvloop

    uvloop.run(_client_main(url, count, index, pipe))


def _gather(pipes: list[Connection], timeout_s: float) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + timeout_s
    out = []
    for pipe in pipes:
        if not pipe.poll(max(0.1, deadline - time.monotonic())):
            raise TimeoutError("a client process did not answer")
        out.append(pipe.recv())
    return out


def heap_breakdown(before: Path, after: Path, connections: int, top: int) -> list[str]:
    """What ``after`` holds more than ``before``, per connection: in all, by the file
    that allocated it (its innermost frame), and the ``top`` lines."""
    first = tracemalloc.Snapshot.load(str(before))
    second = tracemalloc.Snapshot.load(str(after))
    per = max(1, connections)
    out: list[str] = []
    for key in ("filename", "lineno"):
        stats = second.compare_to(first, key)
        if key == "filename":
            total = sum(stat.size_diff for stat in stats)
            out.append(f"heap per connection: {total / per:,.0f} B")
        out.append(f"by {key} (B per connection, blocks per connection):")
        for stat in stats[:top]:
            frame = stat.traceback[0]
            where = frame.filename if key == "filename" else f"{frame.filename}:{frame.lineno}"
            out.append(f"  {stat.size_diff / per:8.1f}  {stat.count_diff / per:5.2f}  {where}")
    return out


def run(
    connections: int, procs: int, heartbeat_s: float, hold_s: float, heap: str = ""
) -> dict[str, Any]:
    raise_nofile()
    data_dir = migrated_dir()
    gateway = GatewayProcess(
        data_dir,
        heap=heap,
        ws_max_connections=connections + 100,
        ws_heartbeat_s=heartbeat_s,
        ws_ping_timeout_s=heartbeat_s,
        ws_hello_timeout_s=30,
        gateway_drain_timeout_s=20,
    )
    result: dict[str, Any] = {"connections": connections, "client_procs": procs}
    workers, pipes = [], []
    try:
        time.sleep(1.0)  # let start-up settle before the baseline
        rss0 = rss_kib(gateway.pid)
        heap_before = gateway.snapshot() if heap else None
        shares = [connections // procs + (i < connections % procs) for i in range(procs)]
        ctx = mp.get_context("spawn")
        for index, share in enumerate(shares):
            mine, theirs = ctx.Pipe()
            worker = ctx.Process(target=_client_process, args=(gateway.url, share, index, theirs))
            worker.start()
            workers.append(worker)
            pipes.append(mine)
        replies = _gather(pipes, CONNECT_TIMEOUT_S + 60)
        connected = sum(r[1] for r in replies)
        failures: Counter[str] = Counter()
        for reply in replies:
            failures.update(reply[3])
        rss1 = rss_kib(gateway.pid)
        cpu0, t0 = cpu_s(gateway.pid), time.monotonic()
        time.sleep(hold_s)
        hold_cpu = cpu_s(gateway.pid) - cpu0
        hold_wall = time.monotonic() - t0
        heap_after = gateway.snapshot() if heap else None
        for pipe in pipes:
            pipe.send("check")
        alive_replies = _gather(pipes, 60)
        closes: Counter[str] = Counter()
        for reply in alive_replies:
            closes.update(reply[2])
        result.update(
            connected=connected,
            connect_s=round(max(r[2] for r in replies), 2),
            failures=dict(failures),
            rss_before_mib=round(rss0 / 1024, 1),
            rss_after_mib=round(rss1 / 1024, 1),
            rss_per_conn_kib=round((rss1 - rss0) / max(1, connected), 1),
            hold_s=round(hold_wall, 1),
            idle_cpu_pct=round(100 * hold_cpu / hold_wall, 1),
            alive_after_hold=sum(r[1] for r in alive_replies),
            closes=dict(closes),
        )
        if heap_before is not None and heap_after is not None:
            result["heap"] = heap_breakdown(heap_before, heap_after, connected, HEAP_TOP)
        for pipe in pipes:
            pipe.send("close")
        _gather(pipes, 60)
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
                worker.join()
        result["server_exit"] = gateway.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--heartbeat", type=float, default=5.0, help="server ws_heartbeat_s")
    parser.add_argument("--hold", type=float, default=None, help="seconds (2 x heartbeat + 2)")
    parser.add_argument(
        "--heap", default="", help="trace the gateway's heap, snapshots at PREFIX.0, PREFIX.1"
    )
    args = parser.parse_args()
    hold = args.hold if args.hold is not None else 2 * args.heartbeat + 2
    result = run(args.connections, args.procs, args.heartbeat, hold, args.heap)
    heap = result.pop("heap", [])
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    for line in heap:
        print(line)


if __name__ == "__main__":
    main()
