"""Minimum typing before a board: a shorter result is stored, listed and a personal
best, but reaches no board (``typing_board_min_*``, raised here so a words-25 test
falls short), on both backends with the workers running."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from tests.integration.test_pipeline import client, eventually, typed_test, workers  # noqa: F401
from tests.integration.test_rest_results import register
from typogram.db.schema import test_results
from typogram.platform import Platform
from typogram.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def backend_settings(backend_settings: Settings) -> Settings:
    return backend_settings.replace(typing_board_min_seconds=600, typing_board_min_words=30)


async def test_too_little_typing_is_stored_but_boardless(
    client: httpx.AsyncClient,  # noqa: F811
    platform: Platform,
    workers: None,  # noqa: F811
) -> None:
    auth = await register(client, "shorty")
    result = await typed_test(client, auth, pace=140)
    assert result["ranked"] is False and result["flagged"] is False
    assert result["category"] == "words-25-en"

    async def listed() -> dict | None:  # type: ignore[type-arg]
        page = (await client.get("/api/v1/results/me?limit=50", headers=auth)).json()
        stored = [r for r in page["results"] if r["id"] == result["id"]]
        return stored[0] if stored else None

    assert (await eventually(listed))["ranked"] is False

    async def stored() -> int | None:
        async with platform.db.read(primary=True) as conn:
            row = await conn.execute(
                select(test_results.c.ranked).where(test_results.c.id == result["id"])
            )
            value = row.scalar_one_or_none()
        return None if value is None else int(value)

    assert await eventually(stored) == 0
    board = await client.get("/api/v1/leaderboards/words-25-en?window=alltime")
    # (On Kafka the workers also replay earlier tests' events: only this user matters.)
    assert [e for e in board.json()["entries"] if e["username"] == "shorty"] == []
