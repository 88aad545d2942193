"""Courses benchmark: catalog list and search at fixed rates against one REST process, and
the subscription check.

Starts one ``typogram rest`` (``--backend embedded``: SQLite and the
in-memory cache; ``distributed``: MariaDB and Redis, ``--database-url``,
``--redis-url``) on a fresh database with the starter catalog, then:

1. *catalog*: per rate in ``--rates`` (requests/s, open loop: a request
   waits for nobody), ``--seconds`` of requests spread evenly, sent from
   ``--procs`` client processes over keep-alive connections
   (``bench.results``' lean HTTP/1.1 client). Three mixes, one after the
   other: ``list`` (the catalog with one of 12 filter combinations: cached
   pages after the first of each), ``search`` (``q=`` one of 16 queries:
   cached after the first) and ``search-miss`` (every query unique, so
   every request ranks in FTS5 or FULLTEXT and builds its page). Latency
   runs from a request's scheduled time to its last byte. The REST
   process's CPU per request is reported.
2. *subscription check*: ``Subscriptions.has_access`` in this process
   against the same cache and database, ``--checks`` times for users whose
   entry is cached, and once each for users whose entry is not (the fill).

Run::

    python -m bench.courses --backend embedded --rates 250,500,1000
    python -m bench.courses --backend distributed --rates 250,500,1000 \\
        --database-url mysql://root@127.0.0.1:3306/typogram_bench_courses \\
        --redis-url redis://127.0.0.1:6379/14
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import uvloop

from bench.common import base_env, cpu_s, free_port, percentile
from bench.results import HttpConnection

TARGET_P95_MS = 100.0
TARGET_CHECK_P95_MS = 5.0
FILTERS = [
    "", "language=en", "language=es", "level=beginner", "level=intermediate",
    "level=advanced", "premium=true", "premium=false", "tag=home-row", "tag=fundamentals",
    "language=en&level=beginner", "limit=3",
]  # fmt: skip
QUERIES = [
    "home row", "top row", "numbers", "symbols", "speed", "accuracy", "bigrams", "español",
    "typing", "drills", "fingers", "punctuation", "timed runs", "keys", "words", "sixty",
]  # fmt: skip


def targets(mix: str, count: int, rng: random.Random) -> list[str]:
    if mix == "list":
        return [f"/api/v1/courses?{rng.choice(FILTERS)}" for _ in range(count)]
    if mix == "search":
        return [f"/api/v1/courses?q={quote(rng.choice(QUERIES))}" for _ in range(count)]
    # Unique terms: no page is cached, every request searches and builds its page.
    return [
        f"/api/v1/courses?q={quote(rng.choice(QUERIES).split()[0])}%20z{uuid.uuid4().hex[:10]}"
        for _ in range(count)
    ]


def client_process(pipe: Connection, host: str, port: int, connections: int) -> None:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        pool: asyncio.Queue[HttpConnection] = asyncio.Queue()
        for _ in range(connections):
            _, conn = await loop.create_connection(HttpConnection, host, port)
            pool.put_nowait(conn)
        while True:
            command, *args = await loop.run_in_executor(None, pipe.recv)
            if command == "stop":
                return
            paths, start, interval, offset = args
            latencies: list[float] = []
            statuses: dict[int, int] = {}

            async def fire(
                raw: bytes,
                scheduled: float,
                latencies: list[float] = latencies,
                statuses: dict[int, int] = statuses,
            ) -> None:
                conn = await pool.get()
                try:
                    status, _ = await conn.request(raw)
                except (OSError, TimeoutError):
                    status = 0
                finally:
                    pool.put_nowait(conn)
                latencies.append((time.monotonic() - scheduled) * 1000)
                statuses[status] = statuses.get(status, 0) + 1

            prepared = [f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode() for p in paths]
            tasks = []
            for i, raw in enumerate(prepared):
                scheduled = start + offset + i * interval
                if (delay := scheduled - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(fire(raw, scheduled)))
            await asyncio.gather(*tasks)
            pipe.send({"latencies": latencies, "statuses": statuses})

    uvloop.run(serve())


@contextlib.contextmanager
def clients(port: int, procs: int, connections: int) -> Iterator[list[Connection]]:
    """``procs`` client processes (``client_process``) with their pipes; stopped on exit."""
    context = multiprocessing.get_context("spawn")
    pipes, workers = [], []
    try:
        for _ in range(procs):
            mine, theirs = context.Pipe()
            worker = context.Process(
                target=client_process, args=(theirs, "127.0.0.1", port, connections)
            )
            worker.start()
            pipes.append(mine)
            workers.append(worker)
        yield pipes
    finally:
        for pipe in pipes:
            pipe.send(("stop",))
        for worker in workers:
            worker.join(timeout=10)


def start_rest(args: argparse.Namespace, data_dir: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    settings: dict[str, object] = {
        "http_port": port, "rate_limit_ip_per_min": 100_000_000,
        "rate_limit_user_per_min": 100_000_000,
    }  # fmt: skip
    if args.backend == "distributed":
        settings |= {"database_url": args.database_url, "redis_url": args.redis_url,
                     "redis_prefix": f"bench{uuid.uuid4().hex[:6]}:"}  # fmt: skip
    env = base_env(data_dir, **settings)
    migrate = subprocess.run(
        [sys.executable, "-m", "roles", "seed-courses"], env=env, capture_output=True,
        timeout=120, check=False,
    )  # fmt: skip
    if migrate.returncode != 0:
        raise SystemExit(f"seed-courses failed: {migrate.stderr.decode()[-2000:]}")
    log = (Path(data_dir) / "rest.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "roles", "rest"], env=env, stdout=log, stderr=log
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("typogram rest did not start")


def step(
    pipes: list[Connection], pid: int, mix: str, rate: int, seconds: float, rng: random.Random
) -> dict[str, Any]:
    return run_paths(pipes, pid, mix, targets(mix, int(rate * seconds), rng), rate)


def run_paths(
    pipes: list[Connection], pid: int, mix: str, paths: list[str], rate: int
) -> dict[str, Any]:
    """GET ``paths`` at ``rate`` per second (open loop) from the client processes; the
    latency percentiles, errors and the REST process's CPU."""
    count = len(paths)
    interval = len(pipes) / rate
    start = time.monotonic() + 0.5
    cpu_before = cpu_s(pid)
    for i, pipe in enumerate(pipes):
        pipe.send(("run", paths[i :: len(pipes)], start, interval, i / rate))
    answers = [pipe.recv() for pipe in pipes]
    elapsed = time.monotonic() - start
    cpu = cpu_s(pid) - cpu_before
    latencies = [ms for a in answers for ms in a["latencies"]]
    statuses: dict[int, int] = {}
    for a in answers:
        for status, n in a["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    ok = statuses.get(200, 0)
    return {
        "mix": mix, "target_rps": rate, "achieved_rps": round(ok / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1), "errors": count - ok,
        "rest_cpu_ms_per_req": round(cpu * 1000 / max(1, count), 3),
        "rest_cpu_pct": round(100 * cpu / elapsed, 1),
    }  # fmt: skip


async def subscription_checks(args: argparse.Namespace, data_dir: str) -> dict[str, Any]:
    from bench.common import SECRET
    from typogram.courses.services import subscriptions_of
    from typogram.platform import open_platform
    from typogram.settings import load

    overrides: dict[str, Any] = {"data_dir": data_dir}
    if args.backend == "distributed":
        overrides |= {"database_url": args.database_url, "redis_url": args.redis_url,
                      "redis_prefix": f"bench{uuid.uuid4().hex[:6]}:"}  # fmt: skip
    settings = load(env={}, environment="test", jwt_secret=SECRET, **overrides)
    async with open_platform(settings) as platform:
        subs = subscriptions_of(platform)
        users = [uuid.uuid4().hex for _ in range(200)]
        for i, user in enumerate(users[:100]):
            await subs.apply_payment(user, "monthly", reference=f"bench-{user}-{i}")
        fills: list[float] = []
        for user in users:
            began = time.perf_counter()
            await subs.has_access(user)
            fills.append((time.perf_counter() - began) * 1000)
        hits: list[float] = []
        for i in range(args.checks):
            began = time.perf_counter()
            await subs.has_access(users[i % len(users)])
            hits.append((time.perf_counter() - began) * 1000)
    return {
        "cached_p50_ms": round(percentile(hits, 50), 3),
        "cached_p95_ms": round(percentile(hits, 95), 3),
        "cached_p99_ms": round(percentile(hits, 99), 3),
        "fill_p50_ms": round(percentile(fills, 50), 3),
        "fill_p95_ms": round(percentile(fills, 95), 3),
        "checks": len(hits),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["embedded", "distributed"], default="embedded")
    parser.add_argument(
        "--database-url", default="mysql://root@127.0.0.1:3306/typogram_bench_courses"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--rates", default="250,500,1000")
    parser.add_argument("--mixes", default="list,search,search-miss")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--checks", type=int, default=10_000)
    args = parser.parse_args()
    if args.backend == "distributed":
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        url = make_url(args.database_url.replace("mysql://", "mysql+pymysql://", 1))
        engine = create_engine(url.set(database=""))
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
        engine.dispose()
    data_dir = tempfile.mkdtemp(prefix="typogram-bench-courses-")
    proc, port = start_rest(args, data_dir)
    rng = random.Random(16)
    try:
        with clients(port, args.procs, args.connections) as pipes:
            rows = []
            for mix in args.mixes.split(","):
                for rate in (int(r) for r in args.rates.split(",")):
                    row = step(pipes, proc.pid, mix, rate, args.seconds, rng)
                    rows.append(row)
                    print(orjson.dumps(row).decode(), flush=True)
            print(
                orjson.dumps(
                    {"subscription_check": asyncio.run(subscription_checks(args, data_dir))}
                ).decode()
            )
    finally:
        proc.terminate()
        proc.wait(timeout=15)


if __name__ == "__main__":
    main()
