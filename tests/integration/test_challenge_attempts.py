"""Daily-challenge attempts: a daily cap that holds under concurrency, and a board
that ranks each user's best attempt, on both backends with the real workers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.integration.test_pipeline import client, eventually, workers  # noqa: F401
from tests.integration.test_rest_results import register, typed_by_hand
from typogram.platform import Platform
from typogram.settings import Settings

pytestmark = pytest.mark.integration
CAP = 3


@pytest.fixture
def backend_settings(backend_settings: Settings) -> Settings:
    return backend_settings.replace(challenge_attempts_per_day=CAP)


async def today(client: httpx.AsyncClient) -> dict[str, Any]:  # noqa: F811
    doc: dict[str, Any] = (await client.get("/api/v1/challenges/today")).json()
    return doc


async def attempt(
    client: httpx.AsyncClient,  # noqa: F811
    auth: dict[str, str],
    challenge: dict[str, Any],
    log: list[Any],
) -> httpx.Response:
    url = f"/api/v1/challenges/{challenge['id']}/attempts"
    return await client.post(url, json={"keystrokes": log}, headers=auth)


async def test_the_daily_cap_holds_under_concurrent_attempts(
    client: httpx.AsyncClient,  # noqa: F811
) -> None:
    auth = await register(client, "cora")
    challenge = await today(client)
    # A refused attempt does not spend the allowance.
    garbage = await attempt(client, auth, challenge, [[0, "ab"]])
    assert garbage.status_code == 422
    logs = [typed_by_hand(challenge["text"], pace_ms=160, seed=s) for s in range(2 * CAP + 2)]
    answers = await asyncio.gather(*(attempt(client, auth, challenge, log) for log in logs))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * CAP + [429] * (CAP + 2), codes
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 86_400
    later = await attempt(client, auth, challenge, logs[0])
    assert later.status_code == 429
    # Another user has an allowance of their own.
    other = await attempt(client, await register(client, "dave"), challenge, logs[0])
    assert other.status_code == 201


async def test_the_board_ranks_each_users_best_attempt(
    client: httpx.AsyncClient,  # noqa: F811
    platform: Platform,
    workers: None,  # noqa: F811
) -> None:
    challenge = await today(client)
    ann, ben = await register(client, "anna"), await register(client, "benn")
    ann_wpm = []
    for pace, seed in ((170, 1), (130, 2), (150, 3)):  # her second attempt is her best
        answer = await attempt(
            client, ann, challenge, typed_by_hand(challenge["text"], pace_ms=pace, seed=seed)
        )
        assert answer.status_code == 201, answer.text
        ann_wpm.append(answer.json()["attempt"]["wpm"])
    answer = await attempt(client, ben, challenge, typed_by_hand(challenge["text"], pace_ms=140))
    ben_wpm = answer.json()["attempt"]["wpm"]

    async def board() -> list[dict[str, Any]] | None:
        response = await client.get(f"/api/v1/leaderboards/{challenge['board']}?window=daily")
        # (Only this test's users: on Kafka the workers also get earlier tests' attempts.)
        entries = [e for e in response.json()["entries"] if e["username"] in ("anna", "benn")]
        return entries if len(entries) == 2 else None

    async def settled() -> list[dict[str, Any]] | None:
        entries = await board()
        wanted = sorted([max(ann_wpm), ben_wpm], reverse=True)
        return entries if entries and [e["wpm"] for e in entries] == wanted else None

    entries = await eventually(settled)
    assert [e["username"] for e in entries] == ["anna", "benn"]  # one entry each, her best
