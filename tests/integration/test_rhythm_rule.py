"""Anti-cheat rule 10 through ``POST /api/v1/results``, on both backends.

A player's accepted results build their rhythm profile (``typogram.rhythm``,
kept in the cache beside the history count); a later result is compared with
it. Before, a bot on the player's account whose intervals ignore the keys —
log-normal at the player's own pace, picked to pass every check that does not
know the player — was accepted, a personal best and on the boards.
"""

from __future__ import annotations

import random

import httpx
import pytest

from bench import typists
from tests.integration.test_rest_results import register, submit
from tests.typing_logs import by_hand
from typogram import keys, rhythm
from typogram.anticheat import judge, limits_from
from typogram.platform import Platform
from typogram.typing import replay, score

pytestmark = pytest.mark.integration
PACE = 60.0


async def typed(client: httpx.AsyncClient, auth: dict[str, str], log_of: object) -> dict:
    test = (await client.get("/api/v1/tests/new?mode=words&count=50", headers=auth)).json()
    log = log_of(test["text"])  # type: ignore[operator]
    response = await submit(client, auth, test["test_id"], log)
    assert response.status_code == 201, response.text
    result: dict = response.json()["result"]
    return result


def passing_bot(text: str, platform: Platform, profile: rhythm.Profile) -> list:
    """A key-independent bot log at the player's pace that every check not knowing the
    player accepts (a bot tuned against them). Of those, one unlike ``profile`` (the
    profile the server keeps): most are (``bench.anticheat``), and this
    test is about the way a profile takes from accepted results to the verdict."""
    limits = limits_from(platform.settings)
    for seed in range(2000):
        log = typists.bot_log(typists.lognormal(PACE), text, random.Random(seed))
        run = replay(text, log)
        result = score(run)
        unlike = rhythm.compare(profile, result).pairs_z
        passes = judge(run, result, limits)[0].action == "accept"
        if passes and unlike is not None and unlike < limits.min_rhythm_z:
            return log
    raise AssertionError("no bot log passes the checks that do not know the player")


async def test_a_bot_unlike_the_players_own_rhythm_is_flagged(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    auth = await register(client, "rhythmic")
    limit = platform.settings.typing_history_min_results
    for n in range(limit):
        honest = await typed(client, auth, lambda text, n=n: by_hand(text, wpm=PACE, seed=n))
        assert honest["flagged"] is False, honest["flag_reason"]
    user = await platform.accounts.get_by_username("rhythmic")
    assert user is not None
    profile = rhythm.decode(await platform.cache.get(keys.user_rhythm(user.id)))
    assert profile is not None and profile.results == limit

    bot = await typed(client, auth, lambda text: passing_bot(text, platform, profile))
    assert bot["flagged"] is True and "rhythm unlike" in bot["flag_reason"]
    again = await typed(client, auth, lambda text: by_hand(text, wpm=PACE, seed=99))
    assert again["flagged"] is False, again["flag_reason"]
    # Only accepted results shape the profile.
    profile = rhythm.decode(await platform.cache.get(keys.user_rhythm(user.id)))
    assert profile is not None and profile.results == limit + 1
