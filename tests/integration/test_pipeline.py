"""The results pipeline end to end through REST and the worker groups, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select

from rest.app import create_app
from tests.conftest import running_groups
from tests.integration.test_rest_results import register, submit, typed_by_hand
from tests.result_events import accepted
from typogram import keys, race_events, topics
from typogram.db.schema import user_confusions, user_key_stats, user_stats
from typogram.platform import Platform
from typogram.ports import Event
from typogram.protocol import parse_push
from workers import analytics
from workers.groups import GROUPS

pytestmark = pytest.mark.integration
T = TypeVar("T")
WAIT_S = 30.0
PIPELINE = ("results", "leaderboards", "analytics", "challenges", "achievements")


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(platform))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
async def workers(platform: Platform) -> AsyncIterator[None]:
    async with running_groups(platform, [name for name in PIPELINE if name in GROUPS]):
        yield


async def eventually(probe: Callable[[], Awaitable[T | None]], limit_s: float = WAIT_S) -> T:
    async def poll() -> T:
        while True:
            value = await probe()
            if value is not None:
                return value
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), limit_s)


async def typed_test(
    client: httpx.AsyncClient, auth: dict[str, str], *, pace: int = 140, seed: int = 1
) -> dict[str, Any]:
    test = (await client.get("/api/v1/tests/new?mode=words&count=25", headers=auth)).json()
    response = await submit(
        client, auth, test["test_id"], typed_by_hand(test["text"], pace_ms=pace, seed=seed)
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


async def test_a_result_reaches_board_insights_and_stats(
    client: httpx.AsyncClient, platform: Platform, workers: None
) -> None:
    alice, bob = await register(client, "alice"), await register(client, "bob")
    slow = await typed_test(client, alice, pace=200)
    fast = await typed_test(client, bob, pace=120)

    async def board() -> dict[str, Any] | None:
        r = await client.get("/api/v1/leaderboards/words-25-en?window=daily&limit=10")
        body: dict[str, Any] = r.json()
        return body if len(body["entries"]) == 2 else None

    top = await eventually(board)
    assert [e["username"] for e in top["entries"]] == ["bob", "alice"]
    assert top["entries"][0]["wpm"] == fast["wpm"] and top["entries"][1]["wpm"] == slow["wpm"]
    assert top["period"].startswith("daily-") and top["entries"][0]["rank"] == 1
    me = await client.get("/api/v1/leaderboards/words-25-en?window=weekly&around=me", headers=alice)
    assert me.status_code == 200 and me.json()["rank"] == 2

    async def insights() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get("/api/v1/insights/me", headers=alice)).json()
        return body if body["tests"] >= 1 else None

    doc = await eventually(insights)
    assert doc["keys"] and doc["trend"]["points"][0]["wpm"] == slow["wpm"]
    await typed_test(client, alice, pace=150, seed=2)  # the cached insights must refresh
    refreshed = await eventually(_tests_at_least(client, alice, 2))
    assert refreshed["tests"] == 2
    practice = await client.get("/api/v1/practice/next?count=10", headers=alice)
    assert practice.status_code == 200, practice.text
    assert len(practice.json()["text"].split(" ")) == 10 and "focus" in practice.json()

    alice_id = str(top["entries"][1]["user_id"])
    stats = await eventually(_stats(platform, alice_id, 2))
    assert stats["best_wpm"] == max(slow["wpm"], refreshed["trend"]["points"][-1]["wpm"])
    async with platform.db.read(primary=True) as conn:
        keys = (await conn.execute(select(user_key_stats.c.key))).all()
    assert keys


def _stats(
    platform: Platform, user_id: str, tests: int
) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    async def probe() -> dict[str, Any] | None:
        async with platform.db.read(primary=True) as conn:
            row = (
                (await conn.execute(select(user_stats).where(user_stats.c.user_id == user_id)))
                .mappings()
                .first()
            )
        return dict(row) if row is not None and row["tests"] >= tests else None

    return probe


def _tests_at_least(
    client: httpx.AsyncClient, auth: dict[str, str], n: int
) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    async def probe() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get("/api/v1/insights/me", headers=auth)).json()
        return body if body["tests"] >= n else None

    return probe


async def test_a_repeated_event_counts_once_and_flagged_stays_off(
    client: httpx.AsyncClient, platform: Platform, workers: None
) -> None:
    user, cheat = "a" * 32, "c" * 32
    event = accepted(user, "1" * 32, wpm=80.0)
    for _ in range(2):
        await platform.events.publish(topics.TEST_RESULTS, event)
    await platform.events.publish(
        topics.TEST_RESULTS, accepted(cheat, "2" * 32, wpm=200.0, flagged=True)
    )
    # The handler alone is idempotent too (no runtime marker involved).
    await GROUPS["results"].handle(platform, topics.TEST_RESULTS, event)
    stats = await eventually(_stats(platform, user, 1))
    await asyncio.sleep(0.3)  # let any wrongly repeated application land
    stats = await eventually(_stats(platform, user, 1))
    assert stats["tests"] == 1 and stats["wpm_sum"] == 80.0
    board = "/api/v1/leaderboards/words-25-en?window=alltime"

    async def listed() -> list[dict[str, Any]] | None:
        entries: list[dict[str, Any]] = (await client.get(board)).json()["entries"]
        return entries or None

    entries = await eventually(listed)
    assert [e["user_id"] for e in entries] == [user]
    flagged = await eventually(_flagged(platform, cheat))
    assert flagged["tests"] == 0 and flagged["best_wpm"] == 0


def _flagged(platform: Platform, user_id: str) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    async def probe() -> dict[str, Any] | None:
        async with platform.db.read(primary=True) as conn:
            row = (
                (await conn.execute(select(user_stats).where(user_stats.c.user_id == user_id)))
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None

    return probe


async def test_bad_board_window_and_limit(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/leaderboards/words-30-en")).status_code == 404
    assert (await client.get("/api/v1/leaderboards/words-25-xx")).status_code == 404
    response = await client.get("/api/v1/leaderboards/races?window=monthly")
    assert response.status_code == 400 and response.json()["error"]["fields"] == {
        "window": "unknown"
    }
    assert (await client.get("/api/v1/leaderboards/races?limit=0")).status_code == 400
    assert (await client.get("/api/v1/leaderboards/races?around=me")).status_code == 401
    assert (await client.get("/api/v1/leaderboards/races?around=you")).status_code == 400
    assert (await client.get("/api/v1/insights/me")).status_code == 401
    auth = await register(client, "carol")
    assert (await client.get("/api/v1/practice/next?lang=zz", headers=auth)).status_code == 400
    empty = (await client.get("/api/v1/leaderboards/challenge-2026-01-02")).json()
    assert empty["entries"] == []


async def test_daily_challenge_attempt_board_and_streak(
    client: httpx.AsyncClient, platform: Platform, workers: None
) -> None:
    auth = await register(client, "dora")
    today = (await client.get("/api/v1/challenges/today")).json()
    assert today == (await client.get("/api/v1/challenges/today")).json()
    assert len(today["text"].split(" ")) == 30 and today["board"] == f"challenge-{today['id']}"
    url = f"/api/v1/challenges/{today['id']}/attempts"
    log = typed_by_hand(today["text"])
    response = await client.post(url, json={"keystrokes": log}, headers=auth)
    assert response.status_code == 201, response.text
    attempt = response.json()["attempt"]

    async def on_board() -> list[dict[str, Any]] | None:
        r = await client.get(f"/api/v1/leaderboards/{today['board']}?window=daily")
        entries: list[dict[str, Any]] = r.json()["entries"]
        return entries or None

    entries = await eventually(on_board)
    assert entries[0]["username"] == "dora" and entries[0]["wpm"] == attempt["wpm"]
    again = await client.post(url, json={"keystrokes": log}, headers=auth)
    assert again.status_code == 201

    async def streak() -> dict[str, Any] | None:
        body: dict[str, Any] = (
            await client.get("/api/v1/challenges/streak/me", headers=auth)
        ).json()
        return body if body["current"] else None

    assert (await eventually(streak))["current"] == 1
    other = await client.post(
        "/api/v1/challenges/2001-01-01/attempts", json={"keystrokes": log}, headers=auth
    )
    assert other.status_code == 404
    garbage = await client.post(url, json={"keystrokes": [[0, "ab"]]}, headers=auth)
    assert (
        garbage.status_code == 422 and garbage.json()["error"]["fields"]["keystrokes"] == "bad_key"
    )
    assert (await client.post(url, json={"keystrokes": []})).status_code == 401
    robotic = [[i * 100, ch] for i, ch in enumerate(today["text"])]
    assert (await client.post(url, json={"keystrokes": robotic}, headers=auth)).status_code == 422


async def test_achievements_unlock_once(
    client: httpx.AsyncClient, platform: Platform, workers: None
) -> None:
    auth = await register(client, "erin")
    result = await typed_test(client, auth, pace=140)
    me = (await client.get("/api/v1/users/me", headers=auth)).json()
    user_id = me.get("id") or me["user"]["id"]

    async def unlocked(wanted: str) -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get("/api/v1/achievements/me", headers=auth)).json()
        return body if wanted in {a["id"] for a in body["unlocked"]} else None

    body = await eventually(lambda: unlocked("first-test"))
    ids = [a["id"] for a in body["unlocked"]]
    assert ids.count("first-test") == 1 and ("wpm-60" in ids) == (result["wpm"] >= 60)
    assert "tests-10" in {p["id"] for p in body["progress"]}
    pushes: list[bytes] = []

    def listen(_channel: str, message: bytes) -> None:
        pushes.append(message)

    await platform.pubsub.subscribe(keys.channel_user(user_id), listen)
    # A win as a gateway published it before the rename (docs/events.md, race-events):
    # ``race.result`` version 1. Repeated, it still counts once.
    race_win = Event(
        type="race.result",
        data={"race": "r" * 32, "place": 1, "user": user_id, "guest": False, "wpm": 90.0},
        key="r" * 32,
        version=1,
    )
    for _ in range(2):  # a repeated race event counts once
        await platform.events.publish(topics.RACE_EVENTS, race_win)
    await GROUPS["achievements"].handle(platform, topics.RACE_EVENTS, race_win)
    await eventually(lambda: unlocked("race-win"))

    async def unlock_pushed() -> list[Any] | None:
        frames = [parse_push(m) for m in pushes]  # what every gateway node would deliver
        return [f for f in frames if f.type == "achievement.unlocked"] or None

    assert await eventually(unlock_pushed)
    await platform.pubsub.unsubscribe(keys.channel_user(user_id), listen)

    async def races_board() -> list[dict[str, Any]] | None:
        entries: list[dict[str, Any]] = (
            await client.get("/api/v1/leaderboards/races?window=alltime")
        ).json()["entries"]
        return entries or None

    assert (await eventually(races_board))[0]["user_id"] == user_id
    assert await race_wins(client, auth) == 1
    # The same kind of win as an upgraded gateway publishes it: ``race.finished`` version 2.
    new_win = race_events.finish_event("s" * 32, {**race_win.data, "race": "s" * 32})
    await platform.events.publish(topics.RACE_EVENTS, new_win)
    await eventually(lambda: _wins_reach(client, auth, 2))
    await asyncio.sleep(0.5)  # a repeated application would land meanwhile
    assert await race_wins(client, auth) == 2
    catalogue = (await client.get("/api/v1/achievements")).json()["achievements"]
    assert len(catalogue) >= 12
    assert (await client.get("/api/v1/achievements/me")).status_code == 401


async def race_wins(client: httpx.AsyncClient, auth: dict[str, str]) -> int:
    progress = (await client.get("/api/v1/achievements/me", headers=auth)).json()["progress"]
    return int(next(p for p in progress if p["id"] == "race-wins-10")["current"])


async def _wins_reach(client: httpx.AsyncClient, auth: dict[str, str], wins: int) -> bool | None:
    return True if await race_wins(client, auth) >= wins else None


async def test_analytics_accumulate_per_key(platform: Platform) -> None:
    handle = GROUPS["analytics"].handle
    user = "d" * 32

    def analysed(result_id: str, ms: int) -> Event:
        data = {
            "result_id": result_id, "user_id": user, "wpm": 60.0, "accuracy": 95.0,
            "consistency": 70.0, "created_at": 1_767_225_600_000,
            "keys": {"A": {"hits": 5, "misses": 1, "total_ms": 5 * ms, "samples": 5},
                     "a": {"hits": 2, "misses": 0, "total_ms": 2 * ms, "samples": 2}},
            "bigrams": {"th": {"total_ms": 3 * ms, "samples": 3}},
            "confusions": {"e": {"r": 2}},
        }  # fmt: skip
        return Event(type="analytics.result", data=data, key=user, id=result_id)

    first = analysed("1" * 32, 100)
    for event in (first, first, analysed("2" * 32, 200)):
        await handle(platform, topics.KEYSTROKE_ANALYTICS, event)
    async with platform.db.read(primary=True) as conn:
        rows = (await conn.execute(select(user_key_stats))).mappings().all()
        confusions = (await conn.execute(select(user_confusions))).mappings().all()
    by_key = {row["key"]: row for row in rows}
    assert set(by_key) == {"A", "a"}  # case matters, on MySQL too
    assert by_key["A"]["hits"] == 10 and by_key["A"]["misses"] == 2
    assert by_key["A"]["latency_ms"] == pytest.approx(0.3 * 200 + 0.7 * 100)
    assert [row["count"] for row in confusions] == [4]


PAIR = ("user_id", "expected", "pressed")


async def test_analytics_upsert_keeps_created_at_and_counts_rows_once(platform: Platform) -> None:
    """New and changed rows go in one upsert: a stored row adds the new count and keeps
    ``created_at``."""
    user = "e" * 32
    new = [{"user_id": user, "expected": "e", "pressed": "r", "count": 1,
            "created_at": 1, "updated_at": 1}]  # fmt: skip
    async with platform.db.write() as conn:
        await analytics._write(conn, user_confusions, new, PAIR)
    more = [{"user_id": user, "expected": "e", "pressed": "w", "count": 1,
             "created_at": 2, "updated_at": 2}]  # fmt: skip
    changed = [{"user_id": user, "expected": "e", "pressed": "r", "count": 4,
                "created_at": 2, "updated_at": 2}]  # fmt: skip
    async with platform.db.write() as conn:
        await analytics._write(conn, user_confusions, more + changed, PAIR)
    async with platform.db.read(primary=True) as conn:
        rows = (await conn.execute(select(user_confusions))).mappings().all()
    by_pair = {(r["expected"], r["pressed"]): r for r in rows}
    assert set(by_pair) == {("e", "r"), ("e", "w")}
    assert by_pair[("e", "r")]["count"] == 5
    assert (by_pair[("e", "r")]["created_at"], by_pair[("e", "r")]["updated_at"]) == (1, 2)
    assert (by_pair[("e", "w")]["created_at"], by_pair[("e", "w")]["updated_at"]) == (2, 2)
