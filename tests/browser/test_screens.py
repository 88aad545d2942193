"""Profile stats, time mode, leaderboards, insights with practice, the daily
challenge and achievements, in a real page.

Words-25 results and challenge attempts are seeded over REST with a
hand-like keystroke log (typing 25 to 30 words by key in the browser would cost
the suite 10 s each; solo, race and time mode are typed for real). Each
screen is checked against what the server then shows.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.browser.conftest import PHONE, Pages, Server, shoot, sign_up
from tests.browser.test_web import unique
from tests.typing_logs import by_hand, delays

pytestmark = pytest.mark.browser

WORKER_WAIT_MS = 10_000


def hand_log(text: str, seed: int) -> list[list[Any]]:
    """A keystroke log a person could type (``tests.typing_logs``), one corrected slip."""
    return by_hand(text, wpm=80, seed=seed)


async def token_of(page: Any) -> str:
    token: str = await page.evaluate(
        "JSON.parse(localStorage.getItem('typogram.auth')).access_token"
    )
    return token


async def seed_results(server: Server, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as client:
        for seed in (1, 2):
            spec = (await client.get("/api/v1/tests/new?mode=words&count=25")).json()
            answer = await client.post(
                "/api/v1/results",
                json={"test_id": spec["test_id"], "keystrokes": hand_log(spec["text"], seed)},
            )
            assert answer.status_code == 201, answer.text
        today = (await client.get("/api/v1/challenges/today")).json()
        attempt = await client.post(
            f"/api/v1/challenges/{today['id']}/attempts",
            json={"keystrokes": hand_log(today["text"], 3)},
        )
        assert attempt.status_code == 201, attempt.text


async def reload_until(page: Any, selector: str) -> None:
    """Reloads until the workers have caught up and `selector` shows."""
    for _ in range(WORKER_WAIT_MS // 500):
        if await page.locator(selector).count():
            return
        await page.wait_for_timeout(500)
        await page.reload()
        await page.wait_for_selector("html[data-ready=true]")
        await page.wait_for_timeout(200)
    await page.wait_for_selector(selector, timeout=1000)


async def test_time_mode_ends_with_the_clock(pages: Pages) -> None:
    page = await pages.open()
    await page.clock.install()
    await sign_up(page, unique("timer"))
    await page.click("nav a[href='#/solo']")
    await page.select_option("#mode", "time")
    await page.select_option("#seconds", "15")
    await page.wait_for_selector(".stage[data-phase=typing] #test-text .ch")
    assert "15.0 s left" in await page.inner_text("#live-time")
    text = await page.evaluate(
        "[...document.querySelectorAll('#test-text .ch')].map((s) => s.textContent).join('')"
    )
    for ch, wait in zip(text[:24], delays(text[:25], seed=5), strict=True):
        await page.keyboard.type(ch)
        await page.clock.run_for(wait)
    await page.clock.run_for(16_000)  # the clock runs out: the test ends and is scored
    await page.wait_for_selector("#result[data-saved=true]")
    assert int(await page.inner_text("#result-wpm")) > 0


async def test_profile_boards_insights_challenge_and_achievements(
    pages: Pages, server: Server
) -> None:
    page = await pages.open()
    username = unique("stats")
    await sign_up(page, username)
    await seed_results(server, await token_of(page))
    # The profile shown after sign-up may have asked for its results between the two
    # submissions: look again now that both are accepted.
    await page.reload()
    await page.wait_for_selector("html[data-ready=true]")

    # Profile: rating (unrated until a race) and recent results, newest first.
    await reload_until(page, "#recent-results tbody tr")
    assert await page.locator("#recent-results tbody tr").count() == 2
    # Its records: totals, the streak, the personal best, WPM over time, no races yet.
    await reload_until(page, "#profile-stats[data-loaded=true] #stat-tests:text-is('2')")
    assert "unrated" in await page.inner_text("#profile-rating")
    await reload_until(page, "#stat-streak:has-text('1 day')")
    assert "0 played" in await page.inner_text("#stat-races")
    assert float(await page.inner_text("#stat-best")) > 0
    best = page.locator("#personal-bests tr[data-category='words-25-en']")
    assert await best.count() == 1 and "25 words · en" in await best.inner_text()
    assert await page.locator("#wpm-trend svg .chart-dot").count() == 2
    assert "No races yet" in await page.inner_text("#race-history")
    await shoot(page, "profile-desktop")

    # Leaderboards: the top of words-25-en, then the caller's place on it.
    await page.click("nav a[href='#/leaderboards']")
    await reload_until(page, f"#board tr[data-name='{username}']")
    await page.select_option("#board-window", "daily")
    await page.wait_for_selector(
        f"#board-out[data-loading=false] #board tr[data-name='{username}']"
    )
    await page.check("#board-around")
    await page.wait_for_selector("#board-note:has-text('You are #')")
    await page.wait_for_selector(f"#board tr.me[data-name='{username}']")
    await shoot(page, "leaderboards")

    # Insights: a heat map of typed keys, weak bigrams, and practice text in the solo screen.
    await page.click("nav a[href='#/insights']")
    await reload_until(page, "#heatmap .key[data-latency]")
    assert await page.locator("#heatmap .key[data-latency]").count() >= 10
    await page.select_option("#heatmap-measure", "errors")
    await page.wait_for_selector("#heatmap[data-measure=errors]")
    await shoot(page, "insights")
    await page.click("#practise")
    await page.wait_for_selector(".stage[data-phase=typing] #test-text .ch")
    assert await page.evaluate("location.hash") == "#/solo?practice=1"
    assert "Practice" in await page.inner_text("#solo h2")
    await page.keyboard.type("q")  # keys go to the practice text
    await page.wait_for_selector("#test-text .ch.ok, #test-text .ch.bad")

    # Daily challenge: today's text ready to type, the board with the attempt, the streak.
    await page.click("nav a[href='#/challenge']")
    await page.wait_for_selector("#challenge-stage[data-phase=typing] #challenge-text .ch")
    await reload_until(page, f"#challenge-table tr[data-name='{username}']")
    await page.wait_for_selector("#challenge-streak:has-text('Streak: 1 day')")
    await shoot(page, "challenge")

    # Achievements: the first test is unlocked, the rest show progress.
    await page.click("nav a[href='#/achievements']")
    await reload_until(page, "#achievements-unlocked li[data-id='first-test']")
    assert await page.locator("#achievements-locked li").count() > 0
    await page.set_viewport_size(PHONE)
    await shoot(page, "achievements-phone")
