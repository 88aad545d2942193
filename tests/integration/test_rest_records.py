"""Records through REST on both backends: ``GET /api/v1/users/{username}/stats`` and
``GET /api/v1/users/me/races``, fed by the real worker groups.

The attacks: someone else's race history must not be readable via ``/me`` (not with
their cursor, not with a query parameter, not as a guest); bad paging input is a 400;
cached stats must follow every write, and survive a cache flush.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest

from rest.records import RacePage, UserStatsView
from tests.conftest import flush_cache, running_groups
from tests.conftest import register_user as register
from tests.integration.test_pipeline import eventually
from tests.integration.test_race_records import race_standings, standing
from tests.integration.test_rest_results import submit, typed_by_hand
from typogram import keys, topics
from typogram.platform import Platform
from typogram.records import changed

pytestmark = pytest.mark.integration


@pytest.fixture
async def workers(platform: Platform) -> AsyncIterator[None]:
    async with running_groups(platform, ("results", "challenges", "races")):
        yield


async def typed(client: httpx.AsyncClient, auth: dict[str, str], count: int, seed: int) -> dict:
    test = (await client.get(f"/api/v1/tests/new?mode=words&count={count}", headers=auth)).json()
    log = typed_by_hand(test["text"], pace_ms=130 + 10 * seed, seed=seed)
    response = await submit(client, auth, test["test_id"], log)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


async def race(
    platform: Platform, race_id: str, *rows: dict[str, Any], at: int, **extra: Any
) -> None:
    event = race_standings(race_id, *rows, started_at=at - 30_000, ended_at=at, **extra)
    await platform.events.publish(topics.RACE_EVENTS, event)


def stats_with(client: httpx.AsyncClient, name: str, **want: Any) -> Any:
    """A probe: the stats once every ``path=value`` in ``want`` holds (paths with ``__``)."""

    async def probe() -> dict[str, Any] | None:
        doc: dict[str, Any] = (await client.get(f"/api/v1/users/{name}/stats")).json()
        for path, value in want.items():
            here: Any = doc
            for part in path.split("__"):
                here = here.get(part) if isinstance(here, dict) else None
            if here != value:
                return None
        return doc

    return probe


async def test_stats_show_tests_bests_races_rating_rank_and_streak(
    platform: Platform, client: httpx.AsyncClient, workers: None
) -> None:
    ada, ada_auth = await register(client, "ada")
    bob, _ = await register(client, "bob")
    empty = (await client.get("/api/v1/users/ada/stats")).json()
    assert (empty["tests"], empty["rating"], empty["personal_bests"]) == (0, None, [])
    assert empty["races"] == {"played": 0, "finished": 0, "won": 0}

    first = await typed(client, ada_auth, 10, seed=1)
    second = await typed(client, ada_auth, 25, seed=2)
    today = (await client.get("/api/v1/challenges/today")).json()
    attempt = await client.post(
        f"/api/v1/challenges/{today['id']}/attempts",
        json={"keystrokes": typed_by_hand(today["text"], seed=3)},
        headers=ada_auth,
    )
    assert attempt.status_code == 201, attempt.text
    await race(platform, "ra1", standing(ada, 1, 90.0), standing(bob, 2, 60.0), at=1_000_000)
    await race(
        platform, "ra2", standing(bob, 1, 70.0), standing(ada, 2, 20.0, done=False), at=2_000_000
    )
    doc = await eventually(
        stats_with(client, "ada", tests=2, races__played=2, challenge_streak__current=1)
    )
    assert doc["username"] == "ada" and doc["user_id"] == ada
    msgspec.convert(doc, UserStatsView)  # what the OpenAPI document promises
    assert doc["races"] == {"played": 2, "finished": 1, "won": 1}
    assert doc["best_wpm"] == max(first["wpm"], second["wpm"])
    assert doc["average_wpm"] == pytest.approx((first["wpm"] + second["wpm"]) / 2, abs=0.01)
    assert doc["time_typed_ms"] == first["duration_ms"] + second["duration_ms"]
    bests = {(b["mode"], b["length"], b["lang"]): b["wpm"] for b in doc["personal_bests"]}
    assert bests == {("words", 10, "en"): first["wpm"], ("words", 25, "en"): second["wpm"]}
    assert [p["wpm"] for p in doc["wpm_trend"]] == [first["wpm"], second["wpm"]]  # oldest first
    # A rank counts the players above from a histogram up to a minute old
    # (typogram.ratings rule 5): the races worker may have built it between the
    # two races. Read the ranks from a fresh one.
    await platform.cache.delete(keys.rating_histogram())
    await changed(platform.cache, [ada, bob], ttl_s=platform.records.ttl_s)
    doc = (await client.get("/api/v1/users/ada/stats")).json()
    bob_doc = (await client.get("/api/v1/users/bob/stats")).json()
    ranks = {doc["rating"]["rank"], bob_doc["rating"]["rank"]}
    assert ranks == {1, 2} and doc["rating"]["races"] == 2
    higher = doc if doc["rating"]["rating"] > bob_doc["rating"]["rating"] else bob_doc
    assert higher["rating"]["rank"] == 1
    assert (await client.get("/api/v1/users/nobody/stats")).status_code == 404
    assert (await client.get("/api/v1/users/" + "x" * 40 + "/stats")).status_code == 404

    # Cached, and renewed by the next write (no waiting for the TTL)...
    await race(platform, "ra3", standing(ada, 1, 95.0), standing(bob, 2, 50.0), at=3_000_000)
    renewed = await eventually(stats_with(client, "ada", races__played=3))
    assert renewed["races"]["won"] == 2
    # ...and read back from the database when the cache is gone.
    await flush_cache(platform)
    assert (await client.get("/api/v1/users/ada/stats")).json() == renewed


async def test_race_history_pages_newest_first_with_the_rating_change(
    platform: Platform, client: httpx.AsyncClient, workers: None
) -> None:
    ada, ada_auth = await register(client, "ada")
    bob, _ = await register(client, "bob")
    for n in range(5):
        # One at a time, as a player races: ratings apply in the order races are recorded.
        rows = [standing(ada, 1 + n % 2, 80.0 + n), standing(bob, 2 - n % 2, 60.0)]
        await race(platform, f"h{n}", *rows, at=1_000_000 + n * 1000)
        await eventually(stats_with(client, "ada", races__played=n + 1))
    await race(
        platform,
        "h5",
        standing(ada, 1, 70.0),
        standing(bob, 2, 10.0, done=False),
        at=1_010_000,
        custom=True,
        text="my own words",
    )

    async def six() -> list[dict[str, Any]] | None:
        got = await client.get("/api/v1/users/me/races?limit=50", headers=ada_auth)
        races: list[dict[str, Any]] = got.json()["races"]
        return races if len(races) == 6 else None

    everything = await eventually(six)
    assert [r["race"] for r in everything] == ["h5", "h4", "h3", "h2", "h1", "h0"]
    custom, rated = everything[0], everything[1:]
    assert custom["custom"] and not custom["rated"] and custom["rating_before"] is None
    assert custom["text"] == "my own words" and custom["players"] == 2
    for newer, older in itertools.pairwise(rated):
        assert newer["rating_before"] == older["rating_after"]  # one chain, race by race
    assert rated[-1]["rating_before"] == 0.0  # a new player's displayed rating
    assert all(r["text"].startswith("pack my box") and r["accuracy"] == 97.0 for r in rated)
    assert [r["place"] for r in rated] == [1, 2, 1, 2, 1]

    pages, cursor = [], None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = (await client.get(f"/api/v1/users/me/races?{query}", headers=ada_auth)).json()
        pages.append([r["race"] for r in body["races"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [["h5", "h4"], ["h3", "h2"], ["h1", "h0"]]
    msgspec.convert({"races": everything, "next_cursor": None}, RacePage)

    await flush_cache(platform)
    again = (await client.get("/api/v1/users/me/races?limit=50", headers=ada_auth)).json()
    assert again["races"] == everything


async def test_someone_elses_history_is_not_readable_via_me(
    platform: Platform, client: httpx.AsyncClient, workers: None
) -> None:
    ada, ada_auth = await register(client, "ada")
    bob, bob_auth = await register(client, "bob")
    cyd, cyd_auth = await register(client, "cyd")
    for n in range(3):
        rows = [standing(bob, 1, 90.0), standing(cyd, 2, 50.0)]
        await race(platform, f"b{n}", *rows, at=5_000_000 + n)
    await race(platform, "a0", standing(ada, 1, 60.0), standing(cyd, 2, 40.0), at=4_000_000)

    async def bobs() -> dict[str, Any] | None:
        got = (await client.get("/api/v1/users/me/races?limit=1", headers=bob_auth)).json()
        return got if got["races"] and got["next_cursor"] else None

    async def adas() -> list[dict[str, Any]] | None:
        got = (await client.get("/api/v1/users/me/races", headers=ada_auth)).json()
        races: list[dict[str, Any]] = got["races"]
        return races or None

    first_page = await eventually(bobs)
    assert [r["race"] for r in await eventually(adas)] == ["a0"]
    bob_cursor = first_page["next_cursor"]
    mine = await client.get(
        f"/api/v1/users/me/races?limit=50&cursor={bob_cursor}&user={bob}&user_id={bob}",
        headers=ada_auth,
    )
    assert mine.status_code == 200
    assert [r["race"] for r in mine.json()["races"]] == ["a0"]  # a cursor only says where
    guest = (await client.post("/api/v1/auth/guest", json={"name": "visitor"})).json()
    as_guest = await client.get(
        "/api/v1/users/me/races", headers={"Authorization": f"Bearer {guest['access_token']}"}
    )
    assert as_guest.status_code == 401
    assert (await client.get("/api/v1/users/me/races")).status_code == 401
    await client.post("/api/v1/auth/logout-all", headers=cyd_auth)
    assert (await client.get("/api/v1/users/me/races", headers=cyd_auth)).status_code == 401


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "limit=ten", "cursor=%21%21", "cursor=" + "A" * 201,
     "cursor=WzEsMl0", "cursor=eyJhIjoxfQ"],
)  # fmt: skip
async def test_bad_paging_is_a_400_naming_the_field(client: httpx.AsyncClient, query: str) -> None:
    _, auth = await register(client, "ada")
    got = await client.get(f"/api/v1/users/me/races?{query}", headers=auth)
    assert got.status_code == 400, got.text
    assert set(got.json()["error"]["fields"]) <= {"limit", "cursor"}
