"""Results benchmark: submissions at fixed rates, their latency, CPU per result, pipeline lag.

Registers ``--users`` accounts against a running platform (REST plus the
``results``, ``leaderboards`` and ``analytics`` worker groups). Then, per
rate in ``--rates`` (results/s, open loop: a request waits for nobody):

1. *prefetch*: ``--procs`` client processes (multiprocessing ``spawn``) take
   ``rate * --seconds`` new 25-word tests between them
   (``GET /api/v1/tests/new``), build a human-like keystroke log for each and
   encode every ``POST /api/v1/results`` request to bytes. The REST
   process's CPU over this phase ÷ tests is its cost per ``tests/new``.
2. *submit*: each process sends its requests at their scheduled times over
   ``--connections`` keep-alive HTTP/1.1 connections (a small
   ``asyncio.Protocol`` client on uvloop, responses parsed by ``httptools``).
   Latency runs from a request's *scheduled* time to its last response byte,
   so waiting for a free connection or a late client counts against it
   ("send late" says how late the client itself was). The REST process's CPU
   over this phase ÷ accepted results is its cost per ``POST``.
3. *lag*: ``--probes`` fresh users, spread over the phase, each submit once
   from the main process and poll until
   ``GET /api/v1/leaderboards/words-25-en?window=daily&around=me`` shows
   them (the sorted set: the cached top-1000 view adds at most
   ``VIEW_MIN_AGE_S``) and ``GET /api/v1/insights/me`` counts the result;
   the lag runs from just before the POST.

Steps stop once a step's p95 exceeds ``--stop-p95-ms`` or 1 % of its
requests fail. Start the platform with generous rate limits, e.g.::

    TYPOGRAM_RATE_LIMIT_IP_PER_MIN=100000000 TYPOGRAM_RATE_LIMIT_USER_PER_MIN=100000000 \\
        TYPOGRAM_DATA_DIR=$(mktemp -d) typogram serve
    python -m bench.results --url http://127.0.0.1:8000 --rates 50,100
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import random
import signal
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast
from urllib.parse import urlsplit

import httptools
import httpx
import orjson
import uvloop

SERVER_HISTOGRAM = "typogram_http_request_duration_seconds"
TARGET_SUBMIT_P95_MS = 200.0
TARGET_BOARD_LAG_P95_MS = 1000.0
TARGET_INSIGHTS_LAG_P95_MS = 5000.0
PROBE_LIMIT_S = 30.0
REQUEST_TIMEOUT_S = 30.0
NEW_TEST = "/api/v1/tests/new?mode=words&count=25"
BOARD = "/api/v1/leaderboards/words-25-en?window=daily&around=me"


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def human_log(text: str, rng: random.Random, pace_ms: float) -> list[list[object]]:
    """Irregular intervals around ``pace_ms``: accepted by the plausibility checks."""
    t, log = 0, []
    for ch in text:
        log.append([t, ch])
        t += max(25, int(rng.gauss(pace_ms, pace_ms * 0.35)))
    return log


def cpu_ms(pid: int) -> int:
    """utime + stime of a local process in ms (Linux ``/proc``): robust to client noise."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 // os.sysconf("SC_CLK_TCK")


async def server_buckets(client: httpx.AsyncClient) -> dict[float, float]:
    """The REST process's own latency histogram for ``POST /api/v1/results``: cumulative
    counts by upper bound (s), from ``/metrics``; empty when it cannot be read."""
    try:
        text = (await client.get("/metrics")).text
    except httpx.HTTPError:
        return {}
    found: dict[float, float] = {}
    for line in text.splitlines():
        if (
            line.startswith(SERVER_HISTOGRAM + "_bucket{")
            and 'method="POST"' in line
            and 'route="/api/v1/results"' in line
        ):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            found[math.inf if bound == "+Inf" else float(bound)] = float(line.rsplit(" ", 1)[1])
    return found


def bucket_of(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The smallest bucket bound (ms) holding the q-th percentile of the requests in between."""
    counts = sorted((bound, after[bound] - before.get(bound, 0.0)) for bound in after)
    total = counts[-1][1] if counts else 0.0
    for bound, cumulative in counts:
        if total and cumulative >= q / 100 * total:
            return bound * 1000
    return float("nan")


# -- the client processes -----------------------------------------------------------


def encode_request(method: str, target: str, host: str, token: str, body: bytes = b"") -> bytes:
    """One HTTP/1.1 keep-alive request, ready to write."""
    head = (
        f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection, one request at a time; ``request`` → (status, body)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        body, self.body = b"".join(self.body), []
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.transport is None:
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await asyncio.wait_for(self.waiter, REQUEST_TIMEOUT_S)


@dataclass
class Client:
    """A client process's state: its connections and the requests it prepared."""

    host: str
    port: int
    tokens: list[str]
    connections: int
    rng: random.Random
    pool: asyncio.Queue[HttpConnection] = field(default_factory=asyncio.Queue)
    prepared: list[bytes] = field(default_factory=list)

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.connections):
            _, conn = await loop.create_connection(HttpConnection, self.host, self.port)
            self.pool.put_nowait(conn)

    async def _call(self, raw: bytes) -> tuple[int, bytes]:
        conn = await self.pool.get()
        try:
            if conn.transport is None:  # closed while idle (the server's keep-alive timeout)
                _, conn = await asyncio.get_running_loop().create_connection(
                    HttpConnection, self.host, self.port
                )
            return await conn.request(raw)
        finally:
            self.pool.put_nowait(conn)  # a closed one is replaced by its next user

    async def prefetch(self, count: int, first: int) -> dict[str, Any]:
        """``count`` tests, a log and an encoded submission for each."""
        self.prepared = []
        errors = 0
        host = f"{self.host}:{self.port}"

        async def one(index: int) -> None:
            nonlocal errors
            token = self.tokens[index % len(self.tokens)]
            try:
                status, body = await self._call(encode_request("GET", NEW_TEST, host, token))
            except (OSError, TimeoutError):
                errors += 1
                return
            if status != 200:
                errors += 1
                return
            test = orjson.loads(body)
            log = human_log(test["text"], self.rng, self.rng.uniform(110, 190))
            payload = orjson.dumps({"test_id": test["test_id"], "keystrokes": log})
            self.prepared.append(encode_request("POST", "/api/v1/results", host, token, payload))

        await asyncio.gather(*(one(first + i) for i in range(count)))
        self.rng.shuffle(self.prepared)
        return {"prepared": len(self.prepared), "errors": errors}

    async def submit(self, start: float, interval: float, offset: float) -> dict[str, Any]:
        """Send request i at ``start + offset + i * interval`` (``time.monotonic``)."""
        latencies: list[float] = []
        late: list[float] = []
        statuses: dict[int, int] = {}
        cpu_before = time.process_time()

        async def fire(raw: bytes, scheduled: float) -> None:
            late.append((time.monotonic() - scheduled) * 1000)
            try:
                status, _ = await self._call(raw)
            except (OSError, TimeoutError):
                status = 0
            latencies.append((time.monotonic() - scheduled) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

        tasks = []
        for i, raw in enumerate(self.prepared):
            scheduled = start + offset + i * interval
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(fire(raw, scheduled)))
        await asyncio.gather(*tasks)
        return {
            "latencies": latencies,
            "late": late,
            "statuses": statuses,
            "cpu_ms": (time.process_time() - cpu_before) * 1000,
            "done_at": time.monotonic(),
        }


def client_process(
    pipe: Connection, url: str, tokens: list[str], connections: int, seed: int
) -> None:
    """Serve the main process's commands: ``prefetch``, ``submit``, ``stop``."""
    parts = urlsplit(url)

    async def serve() -> None:
        client = Client(
            parts.hostname or "127.0.0.1",
            parts.port or 80,
            tokens,
            connections,
            random.Random(seed),
        )
        await client.connect()
        loop = asyncio.get_running_loop()
        while True:
            command, *args = await loop.run_in_executor(None, pipe.recv)
            if command == "stop":
                return
            if command == "prefetch":
                pipe.send(await client.prefetch(*args))
            elif command == "submit":
                pipe.send(await client.submit(*args))

    uvloop.run(serve())


# -- the main process -----------------------------------------------------------------


@dataclass
class Step:
    rate: int
    sent: int = 0
    ok: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    late: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    client_cpu_ms: float = 0.0
    server_post_cpu_ms: int | None = None
    server_new_cpu_ms: int | None = None
    tests: int = 0
    prefetch_errors: int = 0
    server_ms: dict[int, float] = field(default_factory=dict)
    board_lag_ms: list[float] = field(default_factory=list)
    insights_lag_ms: list[float] = field(default_factory=list)
    lost: int = 0


async def register(client: httpx.AsyncClient, count: int, tag: str) -> list[str]:
    """``count`` fresh accounts; returns their access tokens."""
    run_id = uuid.uuid4().hex[:6]
    gate = asyncio.Semaphore(8)

    async def one(i: int) -> str:
        name = f"r{tag}{run_id}{i}"
        async with gate:
            response = await client.post(
                "/api/v1/auth/register",
                json={"username": name, "email": f"{name}@bench.test", "password": "bench pw 1"},
            )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def probe(
    client: httpx.AsyncClient, token: str, at: float, step: Step, poll_s: float
) -> None:
    """One first submission at ``at`` (``time.monotonic``), then poll board and insights."""
    auth = {"Authorization": f"Bearer {token}"}
    test = (await client.get(NEW_TEST, headers=auth)).json()
    body = {"test_id": test["test_id"], "keystrokes": human_log(test["text"], random.Random(), 150)}
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    sent = time.monotonic()
    if (await client.post("/api/v1/results", json=body, headers=auth)).status_code != 201:
        step.lost += 2
        return
    board_done = insights_done = False
    while not (board_done and insights_done) and time.monotonic() < sent + PROBE_LIMIT_S:
        if not board_done:
            r = await client.get(BOARD, headers=auth)
            if r.status_code == 200 and r.json()["rank"] is not None:
                step.board_lag_ms.append((time.monotonic() - sent) * 1000)
                board_done = True
        if not insights_done:
            r = await client.get("/api/v1/insights/me", headers=auth)
            if r.status_code == 200 and r.json()["tests"] >= 1:
                step.insights_lag_ms.append((time.monotonic() - sent) * 1000)
                insights_done = True
        await asyncio.sleep(poll_s)
    step.lost += (not board_done) + (not insights_done)


async def ask_all(
    pipes: list[Connection], *command: Any, per_pipe: list[tuple[Any, ...]] | None = None
) -> list[Any]:
    for i, pipe in enumerate(pipes):
        pipe.send((*command, *(per_pipe[i] if per_pipe else ())))
    loop = asyncio.get_running_loop()
    return list(await asyncio.gather(*(loop.run_in_executor(None, p.recv) for p in pipes)))


async def run_step(
    args: argparse.Namespace, client: httpx.AsyncClient, pipes: list[Connection], rate: int
) -> Step:
    step = Step(rate)
    total = int(rate * args.seconds)
    procs = len(pipes)
    shares = [total // procs + (i < total % procs) for i in range(procs)]
    probe_tokens = await register(client, args.probes, f"p{rate}_") if args.probes else []

    cpu_before = cpu_ms(args.server_pid) if args.server_pid else None
    prepared = await ask_all(
        pipes, "prefetch", per_pipe=[(shares[i], sum(shares[:i])) for i in range(procs)]
    )
    step.tests = sum(p["prepared"] for p in prepared)
    step.prefetch_errors = sum(p["errors"] for p in prepared)
    if cpu_before is not None:
        step.server_new_cpu_ms = cpu_ms(args.server_pid) - cpu_before

    buckets_before = await server_buckets(client)
    start = time.monotonic() + 0.5
    interval = procs / rate
    cpu_before = cpu_ms(args.server_pid) if args.server_pid else None
    if args.profile_steps:
        os.kill(args.server_pid, signal.SIGUSR1)
    probes = [
        asyncio.create_task(
            probe(
                client,
                token,
                start + (j + 0.5) * args.seconds / len(probe_tokens),
                step,
                args.poll_ms / 1000,
            )
        )
        for j, token in enumerate(probe_tokens)
    ]
    outcomes = await ask_all(
        pipes, "submit", per_pipe=[(start, interval, i / rate) for i in range(procs)]
    )
    if args.profile_steps:
        os.kill(args.server_pid, signal.SIGUSR2)
    if cpu_before is not None:
        step.server_post_cpu_ms = cpu_ms(args.server_pid) - cpu_before
    buckets_after = await server_buckets(client)
    if buckets_after:
        step.server_ms = {q: bucket_of(buckets_before, buckets_after, q) for q in (50, 95, 99)}
    for outcome in outcomes:
        step.latencies += outcome["latencies"]
        step.late += outcome["late"]
        step.client_cpu_ms += outcome["cpu_ms"]
        for status, n in outcome["statuses"].items():
            step.statuses[status] = step.statuses.get(status, 0) + n
    step.sent = len(step.latencies)
    step.ok = step.statuses.get(201, 0)
    step.elapsed_s = max(o["done_at"] for o in outcomes) - start
    await asyncio.gather(*probes)
    return step


def report(step: Step) -> dict[str, Any]:
    lat, errors = step.latencies, step.sent - step.ok
    per = step.ok or 1
    row: dict[str, Any] = {
        "target/s": step.rate,
        "results/s": round(step.ok / step.elapsed_s) if step.elapsed_s else 0,
        "p50 ms": f"{percentile(lat, 50):.0f}",
        "p95 ms": f"{percentile(lat, 95):.0f}",
        "p99 ms": f"{percentile(lat, 99):.0f}",
        "send late p95 ms": f"{percentile(step.late, 95):.1f}",
        "server p50/p95": "/".join(f"<= {step.server_ms.get(q, math.nan):g}" for q in (50, 95)),
        "REST ms/POST": "-",
        "REST ms/tests-new": "-",
        "client ms/result": f"{step.client_cpu_ms / per:.2f}",
        "client CPU": f"{step.client_cpu_ms / step.elapsed_s / 10:.0f} %"
        if step.elapsed_s
        else "-",
        "board lag p95 ms": f"{percentile(step.board_lag_ms, 95):.0f}",
        "insights lag p95 ms": f"{percentile(step.insights_lag_ms, 95):.0f}",
        "errors": ", ".join(f"{n} x {s or 'conn'}" for s, n in step.statuses.items() if s != 201)
        or "-",
    }
    if step.server_post_cpu_ms is not None:
        row["REST ms/POST"] = f"{step.server_post_cpu_ms / per:.2f}"
        row["REST CPU"] = f"{step.server_post_cpu_ms / step.elapsed_s / 10:.0f} %"
    if step.server_new_cpu_ms is not None and step.tests:
        row["REST ms/tests-new"] = f"{step.server_new_cpu_ms / step.tests:.2f}"
    print(
        f"rate {step.rate}/s: sent {step.sent} ok {step.ok} errors {errors} in "
        f"{step.elapsed_s:.1f} s; board lag n {len(step.board_lag_ms)}, insights lag n "
        f"{len(step.insights_lag_ms)}, probes timed out {step.lost}, "
        f"tests/new failed {step.prefetch_errors}",
        flush=True,
    )
    print("  " + "  ".join(f"{k}: {v}" for k, v in row.items()), flush=True)
    return row


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=args.url, timeout=30) as client:
        tokens = await register(client, args.users, "")
        ctx = multiprocessing.get_context("spawn")
        pipes, procs = [], []
        for i in range(args.procs):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=client_process,
                args=(theirs, args.url, tokens[i :: args.procs], args.connections, i),
                daemon=True,
            )
            proc.start()
            pipes.append(ours)
            procs.append(proc)
        rows = []
        try:
            for rate in args.rates:
                step = await run_step(args, client, pipes, rate)
                rows.append(report(step))
                failed = step.sent - step.ok
                if percentile(step.latencies, 95) > args.stop_p95_ms or failed > 0.01 * step.sent:
                    print(f"stopping: p95 over {args.stop_p95_ms:.0f} ms or > 1 % failed")
                    break
        finally:
            for pipe in pipes:
                pipe.send(("stop",))
            for proc in procs:
                proc.join(timeout=30)
                if proc.is_alive():
                    proc.kill()
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument(
        "--rates", type=lambda s: [int(r) for r in s.split(",")], default=[50, 100, 200]
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--connections", type=int, default=64, help="per client process")
    parser.add_argument("--probes", type=int, default=30, help="lag probes per step (0: none)")
    parser.add_argument("--poll-ms", type=float, default=50.0)
    parser.add_argument("--stop-p95-ms", type=float, default=2000.0)
    parser.add_argument(
        "--server-pid",
        type=int,
        default=0,
        help="a local REST process: report its CPU ms per tests/new and per POST",
    )
    parser.add_argument(
        "--profile-steps",
        action="store_true",
        help="SIGUSR1 / SIGUSR2 to --server-pid around each submit phase: a REST process run "
        "under bench.cpu_profile with BENCH_PROFILE_ON_SIGNAL=1 profiles only those",
    )
    args = parser.parse_args()
    if args.profile_steps and not args.server_pid:
        parser.error("--profile-steps needs --server-pid")
    rows = uvloop.run(main_async(args))
    if rows:
        columns = list(rows[0])
        print()
        print("| " + " | ".join(columns) + " |")
        print("|" + "---:|" * len(columns))
        for row in rows:
            print("| " + " | ".join(str(row.get(c, "-")) for c in columns) + " |")
    print(
        f"targets: submit p95 < {TARGET_SUBMIT_P95_MS:.0f} ms, board lag p95 < "
        f"{TARGET_BOARD_LAG_P95_MS:.0f} ms, insights lag p95 < {TARGET_INSIGHTS_LAG_P95_MS:.0f} ms"
    )


if __name__ == "__main__":
    main()
