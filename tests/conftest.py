"""Shared fixtures. Redis and Kafka come from ``tests/services.py``; MariaDB from here.

``platform`` is parametrized: ``embedded`` (SQLite file, in-memory adapters)
and ``distributed`` (MariaDB, Redis, a Kafka-protocol broker), so one test
body checks both adapters against one contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from typogram.db.schema import metadata
from typogram.passwords import Passwords
from typogram.platform import Platform, open_platform
from typogram.settings import Settings, load

pytest_plugins = ["tests.services"]

MYSQL_SERVER = os.environ.get("TYPOGRAM_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    """A fresh MariaDB database for this test session, dropped at the end."""
    name = f"typogram_test_{uuid.uuid4().hex[:8]}"
    server = MYSQL_SERVER.replace("mysql://", "mysql+pymysql://", 1)
    engine = create_engine(server, connect_args={"connect_timeout": 5})
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    except Exception as exc:
        pytest.fail(f"MariaDB is not reachable at {MYSQL_SERVER}: {exc}")
    yield f"{MYSQL_SERVER}/{name}"
    with engine.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    engine.dispose()


class Clock:
    """A clock the test moves by hand (``clock.now += …``)."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def until(condition: Callable[[], object], within_s: float = 5.0) -> None:
    """Poll ``condition`` (something runs on its own clock) until it holds."""
    async with asyncio.timeout(within_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)


def make_settings(**overrides: object) -> Settings:
    """Settings for tests: development, no environment leaking in, generous limits."""
    base: dict[str, object] = {
        "environment": "test",
        "rate_limit_ip_per_min": 100_000,
        "rate_limit_user_per_min": 100_000,
        # Tests sign many users up from one address; the quotas' own tests lower these.
        "register_per_ip_per_hour": 100_000,
        "guest_tokens_per_ip_per_hour": 100_000,
        "jwt_secret": "test-secret-" + "x" * 32,
    }
    base.update(overrides)
    return load(env={}, **base)


def cheap_passwords() -> Passwords:
    """Argon2id with tiny costs: the tests check behaviour, not hashing strength."""
    return Passwords(memory_kib=1024, time_cost=1)


@pytest.fixture(scope="session")
def kafka_session_prefix() -> str:
    """One topic prefix per session: topics are created once, not per test."""
    return f"t{uuid.uuid4().hex[:8]}."


@pytest.fixture(params=["embedded", "distributed"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend_settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if backend == "embedded":
        return make_settings(data_dir=str(tmp_path))
    return make_settings(
        data_dir=str(tmp_path),
        database_url=request.getfixturevalue("mysql_url"),
        redis_url=request.getfixturevalue("redis_url"),
        redis_prefix=request.getfixturevalue("unique_prefix"),
        kafka_bootstrap=request.getfixturevalue("kafka_bootstrap"),
        kafka_topic_prefix=request.getfixturevalue("kafka_session_prefix"),
    )


@pytest.fixture
async def platform(backend_settings: Settings) -> AsyncIterator[Platform]:
    async with open_platform(backend_settings, migrate=True, passwords=cheap_passwords()) as p:
        try:
            yield p
        finally:
            await empty_tables(p)


async def empty_tables(platform: Platform) -> None:
    """The MariaDB database is shared by the session: leave it empty for the next test."""
    if platform.db.dialect != "mysql":
        return
    async with platform.db.write() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(table.delete())


async def flush_cache(platform: Platform) -> None:
    """What ``FLUSHDB`` does, to this test's keys only: everything under its Redis prefix
    (the match queues' keys among them), or every key of the in-memory cache and every
    ticket and marker of the in-memory match queues. What a test reads afterwards was
    stored."""
    from typogram.adapters.memory_cache import MemoryCache
    from typogram.adapters.memory_queues import MemoryMatchQueues

    settings = platform.settings
    if isinstance(platform.cache, MemoryCache):
        assert isinstance(platform.match_queues, MemoryMatchQueues)
        platform.cache.flush()
        platform.match_queues.flush()
        return
    assert settings.redis_url and settings.redis_prefix, "a shared Redis needs a test prefix"
    import redis.asyncio as redis

    client = redis.Redis.from_url(settings.redis_url)
    try:
        found = [key async for key in client.scan_iter(match=f"{settings.redis_prefix}*")]
        if found:
            await client.delete(*found)
        assert not [key async for key in client.scan_iter(match=f"{settings.redis_prefix}*")]
    finally:
        await client.aclose()


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """The REST app on ``platform``, in process (modules may define their own)."""
    from rest.app import create_app

    transport = httpx.ASGITransport(app=create_app(platform))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def register_user(client: httpx.AsyncClient, name: str) -> tuple[str, dict[str, str]]:
    """Sign ``name`` up over REST; its user id and an ``Authorization`` header."""
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": "correct horse"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["user"]["id"], {"Authorization": f"Bearer {body['access_token']}"}


@contextlib.asynccontextmanager
async def running_groups(platform: Platform, names: Sequence[str]) -> AsyncIterator[None]:
    """These worker groups consume (and run their periodic jobs) until the block ends."""
    from workers.groups import GROUPS
    from workers.runtime import GroupRunner

    tasks = [asyncio.create_task(GroupRunner(platform, GROUPS[n]).run()) for n in names]
    await asyncio.sleep(0.1)  # the in-process log registers a group on its first consume
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
