"""The ``analytics`` and ``achievements`` groups handle a batch as its events one after
another would, on both backends: same rows, a repeated event counted once, an unlock
stored and pushed exactly once, and a batch that clashes with a concurrent delivery
falling back to its events one by one."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import orjson
import pytest
from sqlalchemy import false, select

from tests.integration.test_pipeline import eventually
from typogram import keys, race_events, topics
from typogram.db.schema import (
    achievement_progress,
    user_achievements,
    user_bigram_stats,
    user_confusions,
    user_key_stats,
    user_trend,
)
from typogram.insights import smooth
from typogram.platform import Platform
from typogram.ports import Event
from typogram.protocol import parse_push
from workers import achievements, analytics

pytestmark = pytest.mark.integration
KA, RACES, ACH = topics.KEYSTROKE_ANALYTICS, topics.RACE_EVENTS, topics.ACHIEVEMENT_EVENTS


def analysed(user: str, n: int) -> Event:
    """Result ``n`` of ``user``: keys, bigrams and confusions overlapping with the others'."""
    data = {
        "result_id": f"{n:032d}", "user_id": user, "wpm": 50.0 + n, "accuracy": 90.0 + n % 7,
        "consistency": 70.0 + n, "created_at": 1_767_225_600_000 + n,
        "keys": {"a": {"hits": 5 + n, "misses": n % 3, "total_ms": 97 * (5 + n), "samples": 5 + n},
                 "A": {"hits": 1, "misses": 1, "total_ms": 0, "samples": 0},
                 f"k{n % 3}": {"hits": 3, "misses": 0, "total_ms": 3 * 131 * n, "samples": 3},
                 "toolongkey": {"hits": 1, "misses": 0, "total_ms": 9, "samples": 1}},
        "bigrams": {"th": {"total_ms": 41 * n + 7, "samples": 1 + n % 2},
                    f"b{n % 2}": {"total_ms": 300, "samples": 2},
                    "zz": {"total_ms": 5, "samples": 0}},
        "confusions": {"e": {"r": 1 + n % 2, "w": 1}, f"c{n % 2}": {"x": n}},
    }  # fmt: skip
    return Event(type="analytics.result", data=data, key=user, id=f"{user[:8]}-a-{n}")


async def rows_of(platform: Platform, user: str) -> dict[str, Any]:
    """Everything analytics stored for ``user``, without the write times."""
    out: dict[str, Any] = {}
    async with platform.db.read(primary=True) as conn:
        for table in (user_key_stats, user_bigram_stats, user_confusions, user_trend):
            found = await conn.execute(select(table).where(table.c.user_id == user))
            out[table.name] = sorted(
                tuple(v for k, v in row.items() if k not in {"user_id", "updated_at"}
                      and (k != "created_at" or table is user_trend))
                for row in found.mappings()
            )  # fmt: skip
    return out


async def test_an_analytics_batch_stores_what_its_events_one_by_one_store(
    platform: Platform,
) -> None:
    alone, batched, other = "1" * 32, "2" * 32, "3" * 32
    for user in (alone, batched):  # a stored row for each to fold into
        await analytics.handle(platform, KA, analysed(user, 1))
    for n in (1, 2, 3, 4, 5):
        await analytics.handle(platform, KA, analysed(alone, n))
    # 1 was applied before, 3 comes twice, another user's results sit in between.
    batch = [analysed(batched, n) for n in (1, 2, 3, 3, 4)]
    batch[2:2] = [analysed(other, 7), analysed(other, 8)]
    version = keys.insights_version(batched)
    before = await platform.cache.get(version)
    await analytics.handle_batch(platform, KA, [*batch, analysed(batched, 5)])
    assert await rows_of(platform, batched) == await rows_of(platform, alone)
    token = await platform.cache.get(version)  # cached insights built before are stale
    assert token is not None and token != before
    lone = "4" * 32
    for n in (7, 8):
        await analytics.handle(platform, KA, analysed(lone, n))
    assert await rows_of(platform, other) == await rows_of(platform, lone)
    await analytics.handle_batch(platform, KA, batch)  # replayed: changes nothing
    assert await rows_of(platform, batched) == await rows_of(platform, alone)
    assert await platform.cache.get(version) == token


@pytest.fixture
def blind_markers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both groups' "applied before?" reads find nothing, as in a transaction that raced
    a concurrent delivery of the same event: its marker insert clashes."""
    monkeypatch.setattr(analytics, "_TRENDS_AMONG", analytics._TRENDS_AMONG.where(false()))
    monkeypatch.setattr(achievements, "_SEEN_AMONG", achievements._SEEN_AMONG.where(false()))


async def test_an_analytics_batch_that_clashes_applies_its_results_one_by_one(
    platform: Platform, blind_markers: None
) -> None:
    alone, batched = "5" * 32, "6" * 32
    for n in (1, 2, 3):
        await analytics.handle(platform, KA, analysed(alone, n))
    await analytics.handle(platform, KA, analysed(batched, 2))  # "the concurrent delivery"
    await analytics.handle_batch(platform, KA, [analysed(batched, n) for n in (1, 2, 3)])
    # 2 clashed and stays applied once; 1 and 3 are applied on their own. Only the
    # smoothed latencies depend on the order (2, 1, 3 here): the counts must match.
    got, want = await rows_of(platform, batched), await rows_of(platform, alone)
    assert got["user_trend"] == want["user_trend"]
    assert got["user_confusions"] == want["user_confusions"]
    assert [r[:4] for r in got["user_key_stats"]] == [r[:4] for r in want["user_key_stats"]]
    assert [r[:2] for r in got["user_bigram_stats"]] == [r[:2] for r in want["user_bigram_stats"]]


def fact_events(user: str) -> list[Event]:
    """Tests, a race win and a challenge streak: unlocks on the way, some twice over."""
    out = [
        Event(type="achievement.test", key=user, id=f"{user[:8]}-t-{n}",
              data={"user_id": user, "wpm": wpm, "accuracy": acc, "lang": lang})
        for n, (wpm, acc, lang) in enumerate(
            [(35.0, 96.0, "en"), (62.0, 97.0, "de"), (41.0, 99.0, "en"), (85.0, 80.0, "fr"),
             (70.0, 98.0, "en"), (71.0, 98.0, "en"), (72.0, 98.0, "en"), (73.0, 98.0, "en"),
             (74.0, 99.0, "en")]
        )
    ]  # fmt: skip
    won = {"race": "r" * 32, "place": 1, "user": user, "wpm": 90.0}
    out.insert(3, replace(race_events.finish_event("r" * 32, won), id=f"{user[:8]}-race"))
    out.append(Event(type="achievement.challenge_streak", key=user, id=f"{user[:8]}-c",
                     data={"user_id": user, "days": 3}))  # fmt: skip
    second = {"race": "s" * 32, "place": 2, "user": user, "wpm": 50.0}
    out.append(replace(race_events.finish_event("s" * 32, second), id=f"{user[:8]}-race-2"))
    return out


async def progress_of(platform: Platform, user: str) -> tuple[str | None, list[str]]:
    async with platform.db.read(primary=True) as conn:
        p, u = achievement_progress, user_achievements
        facts = (
            await conn.execute(select(p.c.facts).where(p.c.user_id == user))
        ).scalar_one_or_none()
        unlocked = (
            await conn.execute(select(u.c.achievement_id).where(u.c.user_id == user))
        ).scalars()
        return facts, sorted(unlocked)


class Pushes:
    """``achievement.unlocked`` pushes on some users' channels."""

    def __init__(self) -> None:
        self.ids: dict[str, list[str]] = {}

    def listener(self, user: str) -> Any:
        def listen(_channel: str, message: bytes) -> None:
            if parse_push(message).type == achievements.UNLOCKED:
                self.ids.setdefault(user, []).append(orjson.loads(message)["d"]["id"])

        return listen

    async def settled(self, user: str, count: int) -> list[str]:
        async def probe() -> list[str] | None:
            return self.ids.get(user) if len(self.ids.get(user, ())) >= count else None

        found = await eventually(probe, 10.0)
        await asyncio.sleep(0.2)  # anything pushed twice would land meanwhile
        return sorted(found)


async def test_an_achievements_batch_unlocks_what_its_events_one_by_one_unlock_once(
    platform: Platform,
) -> None:
    alone, batched = "a" * 32, "b" * 32
    pushes = Pushes()
    for user in (alone, batched):
        await platform.pubsub.subscribe(keys.channel_user(user), pushes.listener(user))
    events = fact_events(alone)
    for event in events:
        await achievements.handle(platform, topics.ACHIEVEMENT_EVENTS, event)
    mine = fact_events(batched)
    await achievements.handle(platform, ACH, mine[0])  # first-test unlocked before the batch
    await platform.cache.set(keys.achievements_progress(batched), b"stale")
    # Two batches: a repeated event inside one, an event of the first again in the second.
    await achievements.handle_batch(platform, ACH, [*mine[:6], mine[4], mine[0]])
    await achievements.handle_batch(platform, ACH, [mine[5], *mine[6:], mine[6]])
    facts, unlocked = await progress_of(platform, batched)
    assert (facts, unlocked) == await progress_of(platform, alone)
    assert {"first-test", "wpm-80", "race-win", "accuracy-5", "challenge-3"} <= set(unlocked)
    assert '"tests":9' in (facts or "").replace(" ", "")
    assert await platform.cache.get(keys.achievements_progress(batched)) is None
    assert await pushes.settled(alone, len(unlocked)) == unlocked
    assert await pushes.settled(batched, len(unlocked)) == unlocked  # each exactly once
    await achievements.handle_batch(platform, RACES, mine)  # replayed: nothing new
    assert await progress_of(platform, batched) == (facts, unlocked)
    assert await pushes.settled(batched, len(unlocked)) == unlocked


async def test_an_achievements_batch_that_clashes_applies_its_events_one_by_one(
    platform: Platform, blind_markers: None
) -> None:
    user = "c" * 32
    tests = fact_events(user)[:3]
    await achievements.handle(platform, ACH, tests[0])  # seen-check blind: applied once
    await achievements.handle_batch(platform, ACH, tests)  # tests[0]'s marker clashes
    facts, unlocked = await progress_of(platform, user)
    assert '"tests":3' in (facts or "").replace(" ", "") and unlocked.count("first-test") == 1


async def test_a_clash_with_a_concurrent_unlock_is_run_again(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another event of the same user unlocked first-test concurrently: the batch's
    unlock insert clashes, and the rerun counts the event without unlocking again."""
    user = "d" * 32
    first, second = fact_events(user)[:2]
    await achievements.handle(platform, ACH, first)
    real = achievements._UNLOCKED_OF
    monkeypatch.setattr(achievements, "_UNLOCKED_OF", real.where(false()))
    apply = achievements._apply

    async def blind_once(*args: Any) -> Any:
        try:
            return await apply(*args)
        finally:
            monkeypatch.setattr(achievements, "_UNLOCKED_OF", real)

    monkeypatch.setattr(achievements, "_apply", blind_once)
    await achievements.handle_batch(platform, ACH, [second])
    facts, unlocked = await progress_of(platform, user)
    assert '"tests":2' in (facts or "").replace(" ", "")
    assert unlocked == ["first-test", "wpm-40", "wpm-60"]


def folded(events: list[Event]) -> dict[str, list[tuple[Any, ...]]]:
    """The reference: each test folded into the rows one after another in Python, with
    ``typogram.insights.smooth`` (rule 1), as the folding upserts must do in SQL."""
    keys_: dict[str, list[Any]] = {}
    bigrams: dict[str, list[Any]] = {}
    for event in events:
        for key, s in event.data["keys"].items():
            if len(key) > analytics.MAX_CHAR:
                continue
            n, total = s["samples"], s["total_ms"]
            row = keys_.setdefault(key, [0, 0, 0, 0.0])
            if n:
                row[3] = smooth(row[3] if row[2] else None, total / n)
            row[0] += s["hits"]
            row[1] += s["misses"]
            row[2] += n
        for bigram, s in event.data["bigrams"].items():
            if s["samples"]:
                mean = s["total_ms"] / s["samples"]
                row = bigrams.setdefault(bigram, [0, None])
                row[1] = smooth(row[1], mean)
                row[0] += s["samples"]
    return {
        "user_key_stats": sorted((k, *row) for k, row in keys_.items()),
        "user_bigram_stats": sorted((b, *row) for b, row in bigrams.items()),
    }


async def test_the_folding_upserts_smooth_exactly_as_the_rule_says(platform: Platform) -> None:
    one_by_one, batched = "7" * 32, "8" * 32
    events = {u: [analysed(u, n) for n in (3, 1, 4, 1, 5, 9, 2, 6)] for u in (one_by_one, batched)}
    for tests in events.values():  # "A": timed only from the third test on
        for i, event in enumerate(tests):
            timed = 2 if i >= 2 else 0
            event.data["keys"]["A"] = {"hits": 2, "misses": 0, "samples": timed,
                                       "total_ms": timed * (90 + 7 * i)}  # fmt: skip
    for event in events[one_by_one]:
        await analytics.handle(platform, KA, event)
    await analytics.handle_batch(platform, KA, events[batched])
    for user in (one_by_one, batched):
        got = await rows_of(platform, user)
        want = folded([e for i, e in enumerate(events[user]) if i != 3])  # 1 came twice
        assert got["user_key_stats"] == want["user_key_stats"]  # exact: the same arithmetic
        assert got["user_bigram_stats"] == want["user_bigram_stats"]


@pytest.mark.parametrize("backend", ["distributed"])
async def test_concurrent_workers_lose_no_facts(platform: Platform) -> None:
    """Two workers (say, one on ``achievement-events``, one on ``race-events``) apply
    facts of the same user at once: the second waits for the first's row."""
    user = "9" * 32
    events = fact_events(user)[:8]
    await asyncio.gather(*(achievements.handle_batch(platform, ACH, [event]) for event in events))
    facts, _ = await progress_of(platform, user)
    assert facts is not None
    stored = orjson.loads(facts)
    alone = "a" * 32
    for event in fact_events(alone)[:8]:
        await achievements.handle(platform, ACH, event)
    expected, _ = await progress_of(platform, alone)
    assert expected is not None
    # The order they ran in is any one: compare what does not depend on it.
    order_free = ("tests", "best_wpm", "race_wins")
    assert {k: stored[k] for k in order_free} == {k: orjson.loads(expected)[k] for k in order_free}
