"""REST while a backend fails over: ``503`` with a JSON error and ``Retry-After``, never ``500``.

A Redis master killed under requests (Sentinel promotes the replica): every
request in between is answered at once, either as usual or with ``503
unavailable``, and the service comes back by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bench.chaos.outcome import outage_answer_problems
from rest.app import create_app
from tests.clusters import RedisSentinelGroup
from tests.conftest import cheap_passwords, empty_tables, make_settings, register_user
from typogram.platform import Platform, open_platform

pytestmark = pytest.mark.integration

RECOVERY_S = 30.0


@pytest.fixture
async def sentinel_platform(
    redis_sentinel_group: RedisSentinelGroup, mysql_url: str, unique_prefix: str, tmp_path: Path
) -> AsyncIterator[Platform]:
    settings = make_settings(
        data_dir=str(tmp_path),
        database_url=mysql_url,
        redis_url="redis://",
        redis_sentinels=tuple(redis_sentinel_group.sentinels),
        redis_prefix=unique_prefix,
        backend_connect_timeout_s=1.0,
    )
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as platform:
        try:
            yield platform
        finally:
            await empty_tables(platform)


async def test_a_redis_failover_answers_503_with_retry_after_and_recovers(
    redis_sentinel_group: RedisSentinelGroup, sentinel_platform: Platform
) -> None:
    # Raised app errors become the 500 a server would send, as under uvicorn.
    transport = httpx.ASGITransport(app=create_app(sentinel_platform), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        _, auth = await register_user(client, "outage")
        assert (await client.get("/api/v1/users/me", headers=auth)).status_code == 200

        old = await asyncio.to_thread(redis_sentinel_group.kill_master)
        killed_at = time.monotonic()
        statuses: Counter[int] = Counter()
        problems: list[str] = []
        recovered_s = slowest_s = None
        try:
            while time.monotonic() - killed_at < RECOVERY_S:
                started = time.monotonic()
                for path in ("/api/v1/users/me", "/api/v1/leaderboards/time-15-en?window=daily"):
                    response = await client.get(path, headers=auth)
                    statuses[response.status_code] += 1
                    problems += outage_answer_problems(response)
                slowest_s = max(slowest_s or 0.0, time.monotonic() - started)
                if statuses[503] and response.status_code == 200:
                    recovered_s = time.monotonic() - killed_at
                    break
                await asyncio.sleep(0.02)
        finally:
            await asyncio.to_thread(redis_sentinel_group.rejoin, old)
    assert not problems, problems[:5]
    assert statuses[503] >= 1, statuses  # the failover was seen …
    assert recovered_s is not None, statuses  # … and passed
