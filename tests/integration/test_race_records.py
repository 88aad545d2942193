"""A finished race recorded by the ``races`` worker, on both backends: results, ratings and
their history in one transaction, exactly once, read back after the cache is gone.

The attacks: a rating that fails mid-transaction must leave no result (before, the
result rows came from the finishes on their own); replayed and concurrent
duplicate events must change nothing; a guest must never get a stored rating; and
after a cache flush matchmaking and profiles must read the stored rating, not 1500.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gateway.races.matcher import Matchmaker
from gateway.sessions.replay import ReplayBuffer
from gateway.sessions.session import Session
from tests.conftest import flush_cache
from tests.conftest import register_user as register
from typogram import keys, race_events, topics
from typogram.db.schema import race_results, races, rated_races, rating_history, user_ratings
from typogram.platform import Platform
from typogram.ports import Event
from typogram.protocol import MatchJoin
from typogram.ratings import StoredRating
from typogram.tokens import Claims, TokenType
from workers import races as races_worker

pytestmark = pytest.mark.integration

SCORE = {"raw_wpm": 90.0, "consistency": 70.0, "flags": []}


def standing(user: str, place: int, wpm: float, *, done: bool = True, **extra: Any) -> dict:
    row = {"user": user, "name": user[:8], "guest": False, "place": place, "wpm": wpm}
    row |= {"accuracy": 97.0 if done else None, "time_ms": 20_000 if done else None}
    return row | {"done": done, "pos": 40} | extra


def race_standings(race_id: str, *rows: dict[str, Any], **extra: Any) -> Event:
    now = int(time.time() * 1000)
    results = {
        r["user"]: {"wpm": r["wpm"], "accuracy": 97.0, "time_ms": 20_000, **SCORE}
        for r in rows
        if r["done"]
    }
    data = {
        "race": race_id,
        "standings": list(rows),
        "results": results,
        "text": "pack my box with five dozen liquor jugs",
        "difficulty": "easy",
        "lang": "en",
        "seed": 42,
        "started_at": now - 30_000,
        "ended_at": now,
        "tournament": None,
        **extra,
    }
    return race_events.standings_event(race_id, data)


def race_finish(race_id: str, row: dict[str, Any]) -> Event:
    """What the gateway publishes for one finish, before the race ends."""
    data = {"race": race_id, "user": row["user"], "guest": row["guest"], "place": row["place"]}
    data |= {"wpm": row["wpm"], "accuracy": 97.0, "time_ms": 20_000, "difficulty": "easy"}
    data |= {"lang": "en", "seed": 42, "chars": 40, "tournament": None, **SCORE}
    return race_events.finish_event(race_id, data)


def legacy(event: Event) -> Event:
    """``event`` as a gateway published it before the rename (version 1: names swapped)."""
    old = {topics.RACE_RESULT: topics.RACE_FINISHED, topics.RACE_FINISHED: topics.RACE_RESULT}
    return replace(event, type=old[event.type], version=race_events.LEGACY_VERSION)


async def count(platform: Platform, table: Any, *where: Any) -> int:
    async with platform.db.read(primary=True) as conn:
        found = await conn.execute(select(func.count()).select_from(table).where(*where))
        return int(found.scalar_one())


async def ratings_of(platform: Platform) -> dict[str, tuple[float, float, int]]:
    async with platform.db.read(primary=True) as conn:
        rows = await conn.execute(select(user_ratings))
        return {r.user_id: (r.mu, r.sigma, r.races) for r in rows}


def users(n: int) -> list[str]:
    return [uuid.uuid4().hex for _ in range(n)]


async def test_a_race_is_recorded_once_with_its_results_ratings_and_history(
    platform: Platform,
) -> None:
    ada, bob, cy = users(3)
    event = race_standings(
        "race1",
        standing(ada, 1, 88.0, rated=True),
        standing(bob, 2, 61.0, rated=True),
        standing(cy, 3, 20.0, done=False),  # no field: rated, like an old event
        standing("guest:zed", 4, 10.0, done=False, guest=True),
    )
    assert await races_worker.record_race(platform, event) is True
    assert await count(platform, race_results) == 3
    assert await count(platform, race_results, race_results.c.finished == 0) == 1
    async with platform.db.read(primary=True) as conn:
        race = (await conn.execute(select(races))).one()
        history = {r.user_id: r for r in await conn.execute(select(rating_history))}
    assert race.text.startswith("pack my box") and race.players == 4 and not race.custom
    stored = await ratings_of(platform)
    assert set(stored) == {ada, bob, cy} == set(history)
    assert stored[ada][0] > stored[bob][0] > stored[cy][0]
    assert history[ada].mu_before == 1500.0 and history[ada].mu_after == stored[ada][0]
    assert history[ada].display_before == 0.0 < history[ada].display_after
    cached = await platform.ratings.get(ada)
    assert cached is not None and cached.mu == stored[ada][0] and cached.races == 1

    # A replay (the runtime's marker lost with a flushed cache) changes nothing.
    await flush_cache(platform)
    assert await races_worker.record_race(platform, event) is False
    await races_worker.handle_race_event(platform, topics.RACE_EVENTS, event)
    assert await ratings_of(platform) == stored
    assert await count(platform, race_results) == 3
    assert await count(platform, rating_history) == 3


async def test_a_race_published_before_the_rename_is_recorded_exactly_once(
    platform: Platform,
) -> None:
    """A rolling deploy (docs/events.md): version 1 events, their names swapped, are
    still in the log when the upgraded worker reads it."""
    ada, bob = users(2)
    rows = [standing(ada, 1, 80.0), standing(bob, 2, 60.0)]
    for row in rows:  # an old gateway's finishes (``race.result`` then): nothing stored
        old_finish = legacy(race_finish("old1", row))
        assert old_finish.type == "race.result" and old_finish.version == 1
        await races_worker.handle_race_event(platform, topics.RACE_EVENTS, old_finish)
    assert await count(platform, rated_races) == 0
    old = legacy(race_standings("old1", *rows))
    assert old.type == "race.finished" and old.version == 1
    await races_worker.handle_race_event(platform, topics.RACE_EVENTS, old)
    assert await count(platform, rated_races) == 1 and await count(platform, race_results) == 2
    stored = await ratings_of(platform)
    assert {r[2] for r in stored.values()} == {1}
    # Delivered again, and the same race from an upgraded owner after a failover.
    await races_worker.handle_race_event(platform, topics.RACE_EVENTS, old)
    await races_worker.handle_race_event(
        platform, topics.RACE_EVENTS, race_standings("old1", *rows)
    )
    assert await count(platform, rated_races) == 1 and await count(platform, race_results) == 2
    assert await ratings_of(platform) == stored


async def test_concurrent_duplicate_finishes_produce_one_result(platform: Platform) -> None:
    ada, bob = users(2)
    event = race_standings("race2", standing(ada, 1, 70.0), standing(bob, 2, 60.0))
    outcomes = await asyncio.gather(*(races_worker.record_race(platform, event) for _ in range(4)))
    assert sorted(outcomes) == [False, False, False, True]
    assert await count(platform, race_results) == 2
    assert await count(platform, rated_races) == 1
    assert {r[2] for r in (await ratings_of(platform)).values()} == {1}  # rated once


async def test_a_rating_that_fails_leaves_no_result(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada, bob = users(2)
    rows = [standing(ada, 1, 75.0), standing(bob, 2, 55.0)]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("rating model failed")

    monkeypatch.setattr(races_worker.rating, "update", broken)
    # What the gateway publishes: one race.finished per finish, then race.result.
    for row in rows:
        await races_worker.handle_race_event(platform, topics.RACE_EVENTS, race_finish("r3", row))
    with pytest.raises(RuntimeError):
        await races_worker.handle_race_event(
            platform, topics.RACE_EVENTS, race_standings("r3", *rows)
        )
    for table in (race_results, races, rated_races, user_ratings, rating_history):
        assert await count(platform, table) == 0, table.name
    assert await platform.ratings.get(ada) is None

    monkeypatch.undo()  # the runtime's retry, once the cause is gone
    assert await races_worker.record_race(platform, race_standings("r3", *rows)) is True
    assert await count(platform, race_results) == 2 and len(await ratings_of(platform)) == 2


async def test_a_malformed_race_is_refused_whole(platform: Platform) -> None:
    ada = users(1)[0]
    twice = race_standings("r4", standing(ada, 1, 70.0), standing(ada, 2, 60.0))
    with pytest.raises(Exception):  # noqa: B017 - a duplicate key or the rating's ValueError
        await races_worker.record_race(platform, twice)
    garbage = race_events.standings_event("r5", {"race": "r5", "standings": [{"place": 1}]})
    with pytest.raises(ValueError, match="does not fit"):
        await races_worker.record_race(platform, garbage)
    for table in (race_results, races, rated_races, user_ratings):
        assert await count(platform, table) == 0, table.name


async def test_guests_flagged_finishes_and_custom_texts_are_never_rated(
    platform: Platform,
) -> None:
    ada, bob, cy = users(3)
    guest = "guest:" + uuid.uuid4().hex
    mixed = race_standings(
        "r6",
        standing(guest, 1, 99.0, rated=True),  # a guest's id: no rating, whatever the flag says
        standing(ada, 2, 80.0),
        standing(bob, 3, 70.0, rated=False),  # a flagged finish
        standing(cy, 4, 60.0, guest=True),
    )
    await races_worker.record_race(platform, mixed)
    assert await ratings_of(platform) == {}  # only ada was rated: fewer than two, nobody
    assert await count(platform, race_results) == 2  # ada and bob, not the guests
    custom = race_standings("r7", standing(ada, 1, 80.0), standing(bob, 2, 70.0), custom=True)
    await races_worker.record_race(platform, custom)
    assert await ratings_of(platform) == {}
    async with platform.db.read(primary=True) as conn:
        assert (await conn.execute(select(races.c.custom).where(races.c.id == "r7"))).scalar()
    assert await platform.ratings.get(guest) is None
    assert await platform.cache.get(keys.user_rating(guest)) is None


async def test_ratings_survive_a_cache_flush_for_matchmaking_and_profiles(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    ada, _ = await register(client, "ada")
    bob, _ = await register(client, "bob")
    for n in range(3):  # ada wins three times: well above 1500
        await races_worker.record_race(
            platform, race_standings(f"w{n}", standing(ada, 1, 90.0), standing(bob, 2, 50.0))
        )
    stored = await ratings_of(platform)
    shown = (await client.get("/api/v1/users/ada")).json()["rating"]
    assert shown > 0

    await flush_cache(platform)
    assert await platform.cache.get(keys.user_rating(ada)) is None
    assert (await client.get("/api/v1/users/ada")).json()["rating"] == shown
    rating = await platform.ratings.get(ada)
    assert rating is not None and rating.mu == stored[ada][0]

    # Matchmaking: the ticket carries the stored mu, not the 1500 of an unknown player.
    settings = platform.settings
    queue = platform.match_queues
    matcher = Matchmaker(
        settings,
        node_id="n1",
        queue=queue,
        cache=platform.cache,
        engine=None,  # type: ignore[arg-type]  # joining a queue starts no race
        clock=time.time,
        ratings=platform.ratings,
    )
    await flush_cache(platform)
    claims = Claims(ada, TokenType.ACCESS, 0, "ada", "user", "", 0)
    session = Session("s1", claims, ReplayBuffer(8, 4096))
    await matcher.join(session, MatchJoin(difficulty="easy", lang="en"))
    (ticket,) = await queue.tickets(keys.race_queue("easy", "en"))
    assert ticket.ticket.rating == stored[ada][0] > 1500.0


async def test_ranks_count_everyone_above_exactly_near_and_by_histogram_far(
    platform: Platform,
) -> None:
    def row(user: str, display: float) -> dict[str, Any]:
        # sigma 100: display = mu - 300
        return {"user_id": user, "mu": display + 300, "sigma": 100.0, "races": 1}

    displays = [5.0, 250.0, 251.0, 255.5, 259.0, 700.0, 1200.0, 1200.0]
    async with platform.db.write() as conn:
        await conn.execute(
            user_ratings.insert(),
            [row(f"u{n}", d) | {"display": d, "updated_at": 0} for n, d in enumerate(displays)],
        )
    now = int(time.time() * 1000)
    mine = StoredRating(252.0 + 300, 100.0, 1, 0)  # display 252: in the 250-260 bucket
    assert await platform.ratings.rank(mine, now_ms=now) == 1 + 5  # 255.5, 259, 700, 1200 x2
    top = StoredRating(1200.0 + 300, 100.0, 1, 0)
    assert await platform.ratings.rank(top, now_ms=now) == 1  # ties share the rank
    async with platform.db.write() as conn:
        await conn.execute(
            user_ratings.insert(),
            [
                row("near", 253.0) | {"display": 253.0, "updated_at": 0},
                row("far", 900.0) | {"display": 900.0, "updated_at": 0},
            ],
        )
    # Within the bucket at once; a far bucket once the histogram is rebuilt.
    assert await platform.ratings.rank(mine, now_ms=now + 1) == 1 + 6
    later = now + int(platform.settings.rating_rank_histogram_s * 1000) + 1
    assert await platform.ratings.rank(mine, now_ms=later) == 1 + 7
    await flush_cache(platform)
    assert await platform.ratings.rank(mine, now_ms=later) == 1 + 7
