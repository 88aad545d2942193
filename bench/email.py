"""E-mail benchmark: enqueue latency, queued → handed to the SMTP server, and the
sustained sending rate of one worker process against a local SMTP server.

The platform runs in this process (``open_platform``: embedded SQLite and the
in-process log by default; ``--database-url``, ``--redis-url`` and
``--kafka-bootstrap`` switch to MariaDB, Redis and Kafka), with the ``email``
worker group consuming. The SMTP server is aiosmtpd in a process of its own
that accepts every message. Three phases:

1. *enqueue*: ``--enqueue`` welcome messages queued at ``--rate`` a second
   (open loop; 10,000 an hour is 2.8 a second), as a request would
   (``Outbox.enqueue``: the history row and the event); the latency of each
   call.
2. *latency*: those messages, from ``created_at`` (queued) to ``sent_at``
   (the SMTP server accepted it), read from ``email_history``.
3. *throughput*: ``--burst`` messages queued while the worker is stopped,
   then the worker started; messages sent per hour from its start (its
   joining the consumer group included) to the last ``sent_at``: the
   ceiling of one worker process here.

Phase 1 starts once a first message went through (a Kafka consumer joins
its group seconds after it starts).

Run::

    python -m bench.email
    python -m bench.email --database-url mysql://root@127.0.0.1:3306/typogram_bench_mail \\
        --redis-url redis://127.0.0.1:6379/13 --kafka

(``--kafka`` starts a tansu broker; ``--kafka-bootstrap`` names another.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select

from bench.common import free_port, percentile
from typogram.db.schema import email_history
from typogram.mail.services import outbox_of
from typogram.passwords import Passwords
from typogram.platform import Platform, open_platform
from typogram.settings import load
from workers import mail
from workers.runtime import GroupRunner


def _serve_smtp(port: int, ready: Any) -> None:
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


@contextlib.contextmanager
def smtp_server() -> Any:
    port = free_port()
    ready = multiprocessing.Event()
    process = multiprocessing.Process(target=_serve_smtp, args=(port, ready), daemon=True)
    process.start()
    if not ready.wait(10):
        raise RuntimeError("the SMTP server did not start")
    try:
        yield port
    finally:
        process.terminate()
        process.join(5)


@contextlib.asynccontextmanager
async def email_worker(platform: Platform) -> AsyncIterator[None]:
    task = asyncio.create_task(GroupRunner(platform, mail.GROUP).run())
    await asyncio.sleep(0.1)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _sent(platform: Platform, ids: list[str]) -> list[tuple[int, int]]:
    """(created_at, sent_at) of the messages sent so far among ``ids``."""
    rows: list[tuple[int, int]] = []
    for start in range(0, len(ids), 500):
        async with platform.db.read(primary=True) as conn:
            result = await conn.execute(
                select(email_history.c.created_at, email_history.c.sent_at).where(
                    email_history.c.id.in_(ids[start : start + 500]),
                    email_history.c.sent_at.is_not(None),
                )
            )
            rows += [(int(c), int(s)) for c, s in result]
    return rows


async def _until_sent(platform: Platform, ids: list[str], within_s: float) -> list[tuple[int, int]]:
    deadline = time.monotonic() + within_s
    while True:
        rows = await _sent(platform, ids)
        if len(rows) == len(ids) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.2)


async def _queue(
    platform: Platform, n: int, tag: str, rate: float = 0.0
) -> tuple[list[str], list[float]]:
    """Queue ``n`` messages, ``rate`` a second (0: as fast as they go)."""
    outbox = outbox_of(platform)
    ids: list[str] = []
    took: list[float] = []
    began = time.perf_counter()
    for i in range(n):
        if rate:
            await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
        started = time.perf_counter()
        message_id = await outbox.enqueue(
            "welcome", user_id=f"{tag}{i % 500}", to=f"user{i}@bench.test", name=f"User {i}"
        )
        took.append((time.perf_counter() - started) * 1000)
        assert message_id is not None
        ids.append(message_id)
    return ids, took


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir, smtp_server() as port:
        settings = load(
            env={},
            environment="test",
            data_dir=data_dir,
            database_url=args.database_url,
            redis_url=args.redis_url,
            redis_prefix="bench-mail:",
            kafka_bootstrap=args.kafka_bootstrap,
            kafka_topic_prefix=f"bm{int(time.time())}.",
            smtp_url=f"smtp://127.0.0.1:{port}",
            smtp_pool_size=args.pool,
            log_level="WARNING",
        )
        async with open_platform(settings, migrate=True, passwords=Passwords()) as platform:
            async with email_worker(platform):
                # Warm up: a Kafka consumer joins its group seconds after it starts.
                warm, _ = await _queue(platform, 1, "w")
                await _until_sent(platform, warm, 60)
                ids, took = await _queue(platform, args.enqueue, "u", args.rate)
                rows = await _until_sent(platform, ids, 120)
            lag = [sent - created for created, sent in rows]
            burst_ids, _ = await _queue(platform, args.burst, "b")
            started_ms = int(time.time() * 1000)  # includes the consumer's joining
            async with email_worker(platform):
                burst = await _until_sent(platform, burst_ids, 600)
            last = max(sent for _, sent in burst)
            seconds = max(last - started_ms, 1) / 1000
    return {
        "backend": "distributed" if args.database_url else "embedded",
        "enqueue_p50_ms": round(percentile(took, 50), 2),
        "enqueue_p95_ms": round(percentile(took, 95), 2),
        "handed_p50_ms": round(percentile([float(x) for x in lag], 50), 1),
        "handed_p95_ms": round(percentile([float(x) for x in lag], 95), 1),
        "sent": f"{len(rows)}/{len(ids)}",
        "burst_sent": f"{len(burst)}/{len(burst_ids)}",
        "per_hour": int(len(burst) / seconds * 3600),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enqueue", type=int, default=600)
    parser.add_argument("--rate", type=float, default=20.0, help="phase 1, messages a second")
    parser.add_argument("--burst", type=int, default=3000)
    parser.add_argument("--pool", type=int, default=4, help="SMTP connections")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--kafka-bootstrap", default="")
    parser.add_argument("--kafka", action="store_true", help="start a tansu broker")
    args = parser.parse_args()
    broker = None
    if args.kafka and not args.kafka_bootstrap:
        from bench.payments import start_tansu

        broker, args.kafka_bootstrap = start_tansu()
    try:
        result = asyncio.run(run(args))
    finally:
        if broker is not None:
            broker.terminate()
            broker.wait(10)
    for name, value in result.items():
        print(f"{name:>16}: {value}")


if __name__ == "__main__":
    main()
