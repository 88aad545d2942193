"""What the scenarios share: settings, a throw-away database, REST in process, typists.

The services are the ones the test command uses: MariaDB on
``TYPOGRAM_TEST_MYSQL_URL`` (``mysql://root@127.0.0.1:3306``; each run gets
a database of its own, dropped afterwards), Redis on
``TYPOGRAM_TEST_REDIS_URL`` (database 13; each run gets a key prefix,
deleted afterwards). What a scenario breaks it starts itself
(``tests/clusters.py``): nothing shared is ever killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pymysql

from bench.common import GatewayProcess, base_env, delete_prefix
from rest.app import create_app
from tests.clusters import KafkaBroker
from tests.typing_logs import by_hand
from typogram.passwords import Passwords
from typogram.platform import Platform
from typogram.settings import Settings, load

REDIS_URL = os.environ.get("TYPOGRAM_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
MYSQL_SERVER = os.environ.get("TYPOGRAM_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")
SECRET = "chaos-secret-" + "c" * 40


def chaos_settings(data_dir: str, **overrides: object) -> Settings:
    """Test settings with limits out of the way and backends that give up after 1 s."""
    base: dict[str, Any] = {
        "environment": "test",
        "jwt_secret": SECRET,
        "data_dir": data_dir,
        "rate_limit_ip_per_min": 10_000_000,
        "rate_limit_user_per_min": 10_000_000,
        # Every typist signs up from one address: the per-IP quotas would refuse them.
        "register_per_ip_per_hour": 10_000_000,
        "guest_tokens_per_ip_per_hour": 10_000_000,
        "backend_connect_timeout_s": 1.0,
        "log_level": "ERROR",
    }
    return load(env={}, **(base | overrides))


def cheap_passwords() -> Passwords:
    """Argon2id at its smallest: the scenarios break backends, not hashes."""
    return Passwords(memory_kib=1024, time_cost=1)


@contextlib.contextmanager
def fresh_database(server: str = MYSQL_SERVER) -> Iterator[str]:
    """A new database on ``server`` (``mysql://user@host:port``), dropped afterwards."""
    name = f"chaos_{uuid.uuid4().hex[:8]}"
    _run_sql(server, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield f"{server}/{name}"
    finally:
        with contextlib.suppress(pymysql.MySQLError):
            _run_sql(server, f"DROP DATABASE IF EXISTS `{name}`")


def _run_sql(server: str, statement: str) -> None:
    rest = server.split("://", 1)[1]
    user, _, address = rest.rpartition("@")
    host, _, port = address.partition(":")
    conn = pymysql.connect(
        host=host, port=int(port or 3306), user=user or "root", connect_timeout=5, autocommit=True
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
    finally:
        conn.close()


@contextlib.contextmanager
def redis_prefix(url: str = REDIS_URL) -> Iterator[str]:
    """A fresh key prefix on the shared Redis; its keys are deleted afterwards."""
    prefix = f"chaos{uuid.uuid4().hex[:8]}:"
    try:
        yield prefix
    finally:
        delete_prefix(url, prefix)


@dataclass
class BrokerStack:
    """A scratch directory and the backends of one scenario, its Kafka broker among them."""

    root: str
    broker: KafkaBroker
    backends: dict[str, Any]  # settings every process of the scenario runs with


def shared_backends(database_url: str, prefix: str, broker: KafkaBroker) -> dict[str, Any]:
    """The settings of a scenario's processes: its database, the shared Redis under its
    ``prefix``, and its own ``broker`` (topics under the same prefix)."""
    return {
        "database_url": database_url,
        "redis_url": REDIS_URL,
        "redis_prefix": prefix,
        "kafka_bootstrap": broker.bootstrap,
        "kafka_topic_prefix": prefix.replace(":", "."),
        "log_level": "ERROR",
    }


@contextlib.asynccontextmanager
async def broker_stack() -> AsyncIterator[BrokerStack]:
    """A scratch directory, a fresh database, a Redis prefix and a Kafka broker of its own."""
    with (
        tempfile.TemporaryDirectory() as root,
        redis_prefix() as prefix,
        fresh_database() as url,
    ):
        broker = KafkaBroker(Path(root) / "kafka")
        await asyncio.to_thread(broker.start)
        try:
            yield BrokerStack(root, broker, shared_backends(url, prefix, broker))
        finally:
            await asyncio.to_thread(broker.stop)


def start_worker(root: str, group: str, backends: dict[str, object]) -> subprocess.Popen[bytes]:
    """``typogram worker <group>`` on ``backends``; its output in ``root``."""
    log = (Path(root) / f"worker-{group}.log").open("wb")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "roles", "worker", group],
            env=base_env(root, http_port=0, **backends),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()


async def stop_processes(
    nodes: list[GatewayProcess], worker: subprocess.Popen[bytes] | None
) -> None:
    """Stop the gateway ``nodes`` (10 s each to drain), then the ``worker``."""
    for node in nodes:
        await asyncio.to_thread(node.stop, 10.0)
    if worker is not None:
        worker.terminate()
        await asyncio.to_thread(worker.wait)


@contextlib.asynccontextmanager
async def rest_client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """REST on ``platform`` in this process; a raised error is the 500 a server sends."""
    transport = httpx.ASGITransport(app=create_app(platform), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://chaos") as client:
        yield client


async def register(client: httpx.AsyncClient, count: int) -> list[dict[str, str]]:
    """``count`` new users; an ``Authorization`` header each."""
    headers = []
    for _ in range(count):
        name = f"c{uuid.uuid4().hex[:12]}"
        response = await client.post(
            "/api/v1/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": "correct horse"},
        )
        if response.status_code != 201:
            raise RuntimeError(f"could not register a typist: {response.text[:200]}")
        headers.append({"Authorization": f"Bearer {response.json()['access_token']}"})
    return headers


async def typed_result(
    client: httpx.AsyncClient, auth: dict[str, str], seed: int, ask: Any = None
) -> tuple[httpx.Response, str | None]:
    """Fetch a test and submit a human-like log of it; the last answer and the result id.

    ``ask`` (``RestProbe.ask``) records both requests when given.
    """
    request = ask or (lambda c, method, path, **kw: c.request(method, path, **kw))
    test = await request(client, "GET", "/api/v1/tests/new?mode=words&count=10", headers=auth)
    if test.status_code != 200:
        return test, None
    body = test.json()
    log = by_hand(body["text"], wpm=60 + seed % 40, seed=seed)
    answer = await request(
        client,
        "POST",
        "/api/v1/results",
        json={"test_id": body["test_id"], "keystrokes": log},
        headers=auth,
    )
    result_id = answer.json()["result"]["id"] if answer.status_code == 201 else None
    return answer, result_id
