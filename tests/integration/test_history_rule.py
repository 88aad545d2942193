"""The anti-cheat history rule (``far_from_history``) needs a history to stand on.

A newcomer whose first test was slow must not be flagged for typing at their
usual pace next; a typist with an established best is flagged far above it.
"""

from __future__ import annotations

import httpx
import pytest

from tests.integration.test_rest_results import new_test, register, submit, typed_by_hand

pytestmark = pytest.mark.integration


async def take(client: httpx.AsyncClient, auth: dict[str, str], pace_ms: int, seed: int) -> dict:
    test = await new_test(client, auth)
    response = await submit(
        client, auth, test["test_id"], typed_by_hand(test["text"], pace_ms=pace_ms, seed=seed)
    )
    assert response.status_code == 201, response.text
    result: dict = response.json()["result"]
    return result


async def test_a_newcomers_first_slow_test_is_no_yardstick(client: httpx.AsyncClient) -> None:
    auth = await register(client, "newcomer")
    slow = await take(client, auth, pace_ms=900, seed=1)  # ~13 WPM
    fast = await take(client, auth, pace_ms=160, seed=2)  # ~75 WPM
    assert slow["wpm"] < 20 < fast["wpm"]
    assert "far above" not in (fast.get("flag_reason") or "")


async def test_far_above_an_established_best_is_flagged(client: httpx.AsyncClient) -> None:
    auth = await register(client, "steady")
    for seed in range(10):  # typing_history_min_results
        steady = await take(client, auth, pace_ms=400, seed=seed)  # ~30 WPM
        assert "far above" not in (steady.get("flag_reason") or "")
    fast = await take(client, auth, pace_ms=130, seed=99)  # ~90 WPM
    assert fast["flagged"] and "far above" in fast["flag_reason"]
