"""SIGKILL a gateway on MariaDB + Redis + Kafka: no acknowledged chat message is lost.

Two real ``typogram gateway`` processes (A and B) and the ``chat`` worker
group in-process. Alice chats on A and gets ``chat.sent`` acks; A is killed;
every acked message must reach ``chat_messages`` in MariaDB, and Alice,
resuming her session on B, must get what she missed (as replayed pushes, or
in the ``room.joined`` history of a fresh snapshot after a gap).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from tests.conftest import cheap_passwords, empty_tables, make_settings
from typogram.client import TypogramClient
from typogram.db.schema import chat_messages
from typogram.platform import Platform, open_platform
from typogram.protocol import ServerFrame
from typogram.settings import Settings
from workers.groups import GROUPS
from workers.runtime import GroupRunner

pytestmark = pytest.mark.integration

ROOM = "durable"
WAIT_S = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def settings(
    mysql_url: str, redis_url: str, unique_prefix: str, kafka_bootstrap: str, tmp_path: Path
) -> Settings:
    return make_settings(
        data_dir=str(tmp_path),
        database_url=mysql_url,
        redis_url=redis_url,
        redis_prefix=unique_prefix,
        kafka_bootstrap=kafka_bootstrap,
        kafka_topic_prefix=unique_prefix.replace(":", "."),
    )


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    """Migrated database, and the chat worker group consuming in this process."""
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as p:
        worker = asyncio.create_task(GroupRunner(p, GROUPS["chat"]).run())
        try:
            yield p
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            await empty_tables(p)
            client = aioredis.Redis.from_url(settings.redis_url)
            async for key in client.scan_iter(match=f"{settings.redis_prefix}*"):
                await client.delete(key)
            await client.aclose()


@pytest.fixture
def gateways(
    settings: Settings, tmp_path: Path
) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGRAM_")}
    env.update(
        TYPOGRAM_ENVIRONMENT="test",
        TYPOGRAM_JWT_SECRET=settings.jwt_secret,
        TYPOGRAM_DATA_DIR=str(tmp_path),
        TYPOGRAM_DATABASE_URL=settings.database_url,
        TYPOGRAM_REDIS_URL=settings.redis_url,
        TYPOGRAM_REDIS_PREFIX=settings.redis_prefix,
        TYPOGRAM_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        TYPOGRAM_KAFKA_TOPIC_PREFIX=settings.kafka_topic_prefix,
        TYPOGRAM_LOG_LEVEL="WARNING",
    )
    procs = []
    try:
        for name in "AB":
            port = _free_port()
            log = (tmp_path / f"gateway-{name}.log").open("wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", "roles", "gateway"],
                env=env
                | {
                    "TYPOGRAM_WS_PORT": str(port),
                    "TYPOGRAM_HTTP_PORT": str(_free_port()),
                    "TYPOGRAM_METRICS_PORT": "0",
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            procs.append((f"ws://127.0.0.1:{port}/ws", proc))
            _wait_accepting(port, proc, tmp_path / f"gateway-{name}.log")
        yield procs
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _wait_accepting(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            pytest.fail(f"gateway exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)


async def _stored(platform: Platform, ids: set[str]) -> set[str]:
    async with platform.db.read() as conn:
        rows = await conn.execute(select(chat_messages.c.id).where(chat_messages.c.id.in_(ids)))
        return {row[0] for row in rows}


async def _drain(client: TypogramClient, quiet_s: float = 0.5) -> list[ServerFrame]:
    frames = []
    with contextlib.suppress(TimeoutError):
        while True:
            frames.append(await client.receive(quiet_s))
    return frames


async def test_sigkill_loses_no_acknowledged_message(
    platform: Platform, gateways: list[tuple[str, subprocess.Popen[bytes]]], settings: Settings
) -> None:
    (url_a, proc_a), (url_b, _) = gateways
    alice_token, _ = platform.tokens.issue_guest("alice")
    bob_token, _ = platform.tokens.issue_guest("bob")
    alice = TypogramClient(url_a, alice_token, reconnect=False)
    bob = TypogramClient(url_b, bob_token, reconnect=False)
    async with alice, bob:
        await alice.request("room.join", {"room": ROOM})
        await bob.request("room.join", {"room": ROOM})
        acked = set()
        for i in range(20):
            sent = await alice.request("chat.send", {"room": ROOM, "text": f"a{i}"})
            acked.add(sent.d["id"])
        seen = [f for f in await _drain(alice, 0.05) if f.t == "chat.message"]
        session, last_seq = alice.session, alice.last_seq

        proc_a.kill()
        assert await asyncio.to_thread(proc_a.wait, 10) == -signal.SIGKILL

        deadline = time.monotonic() + WAIT_S
        while (stored := await _stored(platform, acked)) != acked:
            assert time.monotonic() < deadline, f"lost: {acked - stored}"
            await asyncio.sleep(0.2)

        missed_texts = [f"b{i}" for i in range(3)]
        for text in missed_texts:
            await bob.request("chat.send", {"room": ROOM, "text": text})
        # A's lease runs out: nobody collects for Alice's session any more.
        redis = aioredis.Redis.from_url(settings.redis_url)
        try:
            while (
                len([k async for k in redis.scan_iter(f"{settings.redis_prefix}gateway:node:*")])
                > 1
            ):
                assert time.monotonic() < deadline, "node A's lease never expired"
                await asyncio.sleep(0.2)
        finally:
            await redis.aclose()

        again = TypogramClient(url_b, alice_token, reconnect=False)
        again.session, again.last_seq = session, last_seq
        async with again:
            assert again.session == session
            frames = await _drain(again)
    texts = _texts(frames)
    expected = [f"a{i}" for i in range(len(seen), 20)] + missed_texts
    assert [t for t in texts if t in expected] == expected, (again.resumed, texts)


def _texts(frames: list[ServerFrame]) -> list[str]:
    """Chat texts in the order they reached the client: pushes and snapshot history."""
    out: list[str] = []
    for frame in frames:
        data: Any = frame.d
        if frame.t == "chat.message":
            out.append(data["text"])
        elif frame.t == "room.joined":
            out.extend(m["text"] for m in data["history"] if m["text"] not in out)
    return out
