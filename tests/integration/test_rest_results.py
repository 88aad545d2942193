"""Typing tests and results through REST, on both backends."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from rest.app import create_app
from tests.typing_logs import by_hand
from typogram import topics
from typogram.platform import Platform
from typogram.ports import Event
from typogram.typing import replay, score

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(platform))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def register(client: httpx.AsyncClient, name: str = "alice") -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": "correct horse"},
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def new_test(client: httpx.AsyncClient, auth: dict[str, str], query: str = "") -> dict:
    response = await client.get(f"/api/v1/tests/new?mode=words&count=10{query}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def typed_by_hand(text: str, *, pace_ms: int = 140, seed: int = 1, typo_at: int = 3) -> list:
    """A human-like log (``tests.typing_logs``) at about ``pace_ms`` a key, one corrected typo."""
    return by_hand(text, wpm=12_000 / pace_ms, seed=seed, typo_at=typo_at)


async def submit(
    client: httpx.AsyncClient, auth: dict[str, str], test_id: str, log: list, **headers: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/results", json={"test_id": test_id, "keystrokes": log}, headers={**auth, **headers}
    )


async def test_new_tests_and_their_parameters(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    words = await new_test(client, auth, "&lang=de&punctuation=true")
    assert words["mode"] == "words" and words["lang"] == "de" and words["count"] == 10
    assert len(words["text"].split(" ")) == 10 and words["category"] == "words-10-de-punct"
    assert len(words["test_id"]) == 32 and isinstance(words["seed"], int)
    timed = await client.get("/api/v1/tests/new?mode=time&seconds=60&lang=es", headers=auth)
    assert timed.status_code == 200
    assert timed.json()["board"] == "time-60-es" and len(timed.json()["text"]) >= 1500
    bad = await client.get(
        "/api/v1/tests/new?mode=x&count=0&lang=xx&seconds=99999&numbers=maybe&difficulty=z",
        headers=auth,
    )
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {
        "mode",
        "count",
        "lang",
        "seconds",
        "numbers",
        "difficulty",
    }
    assert (await client.get("/api/v1/tests/new")).status_code == 401
    guest = (await client.post("/api/v1/auth/guest")).json()["access_token"]
    assert (
        await client.get("/api/v1/tests/new", headers={"Authorization": f"Bearer {guest}"})
    ).status_code == 200


async def test_a_typed_test_is_scored_stored_and_published(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    received: list[Event] = []

    async def record(topic: str, raw: bytes) -> None:
        received.append(Event.decode(raw))

    group = f"test-{uuid.uuid4().hex[:8]}"
    consumer = asyncio.create_task(platform.events.consume(group, [topics.TEST_RESULTS], record))
    await asyncio.sleep(0.05)  # the in-process log registers the group on its first consume
    try:
        auth = await register(client)
        test = await new_test(client, auth, "&lang=en")
        log = typed_by_hand(test["text"])
        response = await submit(client, auth, test["test_id"], log)
        assert response.status_code == 201, response.text
        body = response.json()
        expected = score(replay(test["text"], [tuple(k) for k in log]))
        result = body["result"]
        assert result["wpm"] == expected.wpm and result["raw_wpm"] == expected.raw_wpm
        assert result["accuracy"] == expected.accuracy < 100
        assert result["consistency"] == expected.consistency
        assert result["duration_ms"] == expected.duration_ms
        assert result["chars"] == {"correct": len(test["text"]), "incorrect": 0} | {
            "extra": 0,
            "missed": 0,
        }
        assert body["personal_best"] is True and body["stored"] is True
        assert result["flagged"] is False and len(result["per_second"]) >= 1

        async def published() -> Event:
            while True:
                for event in received:
                    if event.data.get("result_id") == result["id"]:
                        return event
                await asyncio.sleep(0.05)

        event = await asyncio.wait_for(published(), 30)
        assert event.type == "result.accepted" and event.key == event.data["user_id"]
        data = event.data
        assert data["username"] == "alice" and data["wpm"] == expected.wpm
        assert data["category"] is None and data["personal_best_category"] == "words-10-en"
        assert data["keys"][test["text"][0]]["hits"] >= 1 and data["bigrams"]
        again = await submit(client, auth, test["test_id"], log)
        assert again.status_code == 409
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)


async def test_personal_best_only_when_faster(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    outcomes = []
    for pace in (150, 190, 125):  # (a jump far past one's best is flagged: anticheat rule 6)
        test = await new_test(client, auth)
        response = await submit(
            client, auth, test["test_id"], typed_by_hand(test["text"], pace_ms=pace)
        )
        assert response.status_code == 201, response.text
        outcomes.append(response.json()["personal_best"])
    assert outcomes == [True, False, True]


async def test_idempotency_key_returns_the_first_answer(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    test = await new_test(client, auth)
    log = typed_by_hand(test["text"])
    first = await submit(client, auth, test["test_id"], log, **{"Idempotency-Key": "k-1"})
    repeat = await submit(client, auth, test["test_id"], log, **{"Idempotency-Key": "k-1"})
    assert first.status_code == repeat.status_code == 201
    assert first.json() == repeat.json()
    assert repeat.headers["Idempotent-Replayed"] == "true"
    page = (await client.get("/api/v1/results/me", headers=auth)).json()
    assert len(page["results"]) == 1
    other = await submit(client, auth, test["test_id"], log[:-1], **{"Idempotency-Key": "k-1"})
    assert other.status_code == 422
    bad_key = await submit(client, auth, test["test_id"], log, **{"Idempotency-Key": "a b"})
    assert bad_key.status_code == 400


async def test_implausible_logs_are_422(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    test = await new_test(client, auth)
    text = test["text"]
    too_fast = [[i * 4, ch] for i, ch in enumerate(text)]  # ~3,000 WPM
    robotic = [[i * 120, ch] for i, ch in enumerate(text)]
    for log, reason in ((too_fast, "wpm_over_cap"), (robotic, "robotic_timing")):
        response = await submit(client, auth, test["test_id"], log)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "unprocessable"
        assert reason in response.json()["error"]["fields"]["keystrokes"]
    unfinished = typed_by_hand(text[: len(text) // 2])
    response = await submit(client, auth, test["test_id"], unfinished)
    assert "text_not_reproduced" in response.json()["error"]["fields"]["keystrokes"]


async def test_garbage_unknown_and_oversized(client: httpx.AsyncClient, platform: Platform) -> None:
    auth = await register(client)
    test = await new_test(client, auth)
    for log in ("x", [[0]], [[-1, "a"]], [["0", "a"]]):  # not shaped like a log: 400
        response = await submit(client, auth, test["test_id"], log)  # type: ignore[arg-type]
        assert response.status_code == 400, (log, response.text)
        assert "keystrokes" in response.json()["error"]["fields"]
    # Shaped like one but not a log (a "key" of two characters): 422 with a reason code.
    response = await submit(client, auth, test["test_id"], [[0, "a"], [90, "ab"]])
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"] == {"keystrokes": "bad_key"}
    not_json = await client.post("/api/v1/results", content=b"{oops", headers=auth)
    assert not_json.status_code == 400
    unknown = await submit(client, auth, uuid.uuid4().hex, [[0, "a"], [100, "b"]])
    assert unknown.status_code == 404
    theirs = await submit(client, await register(client, "bob"), test["test_id"], [[0, "a"]])
    assert theirs.status_code == 404
    huge = [[1, "a"]] * (platform.settings.typing_max_keystrokes + 1)
    assert (await submit(client, auth, test["test_id"], huge)).status_code == 413


async def test_guests_are_scored_but_not_stored(client: httpx.AsyncClient) -> None:
    guest = (await client.post("/api/v1/auth/guest")).json()["access_token"]
    auth = {"Authorization": f"Bearer {guest}"}
    test = await new_test(client, auth)
    response = await submit(client, auth, test["test_id"], typed_by_hand(test["text"]))
    assert response.status_code == 200, response.text
    assert response.json()["stored"] is False and response.json()["result"]["id"] is None
    assert (await client.get("/api/v1/results/me", headers=auth)).status_code == 401


async def test_a_time_test_takes_a_prefix(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    response = await client.get("/api/v1/tests/new?mode=time&seconds=15", headers=auth)
    test = response.json()
    log = typed_by_hand(test["text"][:60], pace_ms=150)
    submitted = await submit(client, auth, test["test_id"], log)
    assert submitted.status_code == 201, submitted.text
    result = submitted.json()["result"]
    assert result["seconds"] == 15 and result["count"] is None
    assert result["chars"]["missed"] == 0 and result["category"] == "time-15-en"


async def test_results_page_newest_first_with_a_cursor(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    auth = await register(client)
    ids = []
    for seed in range(3):
        test = await new_test(client, auth)
        response = await submit(
            client, auth, test["test_id"], typed_by_hand(test["text"], seed=seed)
        )
        ids.append(response.json()["result"]["id"])
    first = (await client.get("/api/v1/results/me?limit=2", headers=auth)).json()
    assert [r["id"] for r in first["results"]] == ids[:0:-1]
    assert first["next_cursor"]
    second = (
        await client.get(f"/api/v1/results/me?limit=2&cursor={first['next_cursor']}", headers=auth)
    ).json()
    assert [r["id"] for r in second["results"]] == [ids[0]] and second["next_cursor"] is None
    everything = (await client.get("/api/v1/results/me?limit=50", headers=auth)).json()
    assert [r["id"] for r in everything["results"]] == ids[::-1]
    cached = (await client.get("/api/v1/results/me?limit=10", headers=auth)).json()
    assert cached == {"results": everything["results"], "next_cursor": None}
    for query in ("limit=0", "limit=abc", "cursor=%%%", "cursor=" + "x" * 300):
        response = await client.get(f"/api/v1/results/me?{query}", headers=auth)
        assert response.status_code == 400, query
    stored = orjson.loads(orjson.dumps(cached["results"][0]))
    assert stored["chars"]["correct"] > 0


# -- the attacks of issue 13 (each was accepted before) ----------------------------


async def board_entries(client: httpx.AsyncClient, board: str) -> list[dict]:
    response = await client.get(f"/api/v1/leaderboards/{board}?window=alltime")
    assert response.status_code == 200, response.text
    entries: list[dict] = response.json()["entries"]
    return entries


async def test_two_keystrokes_in_a_sixty_second_test_score_over_the_whole_clock(
    client: httpx.AsyncClient,
) -> None:
    """Scored over the typed span, two keys 100 ms apart made 240 WPM and rank 1."""
    auth = await register(client)
    test = (await client.get("/api/v1/tests/new?mode=time&seconds=60", headers=auth)).json()
    log = [[0, test["text"][0]], [100, test["text"][1]]]
    response = await submit(client, auth, test["test_id"], log)
    assert response.status_code == 201, response.text
    result = response.json()["result"]
    assert result["duration_ms"] == 60_000
    assert result["wpm"] == result["raw_wpm"] == 0.4  # 2 characters over a minute
    assert len(response.json()["result"]["per_second"]) == 60
    for entry in await board_entries(client, "time-60-en"):
        assert entry["wpm"] < 1


async def test_nineteen_uniform_keystrokes_are_refused(client: httpx.AsyncClient) -> None:
    """The robotic-timing check started at 20 intervals: 19 uniform keys passed."""
    auth = await register(client)
    test = (await client.get("/api/v1/tests/new?mode=time&seconds=15", headers=auth)).json()
    log = [[i * 110, ch] for i, ch in enumerate(test["text"][:19])]
    response = await submit(client, auth, test["test_id"], log)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"]["keystrokes"] == "robotic_timing"


async def test_the_gaussian_jitter_bot_is_kept_off_the_boards(client: httpx.AsyncClient) -> None:
    """Intervals drawn from N(49 ms, 20 ms) were accepted at ~247 WPM, unflagged."""
    auth = await register(client)
    test = (await client.get("/api/v1/tests/new?mode=words&count=50", headers=auth)).json()
    rng = random.Random(49)
    t, log = 0, []
    for ch in test["text"]:
        log.append([t, ch])
        t += max(1, round(rng.gauss(49, 20)))
    response = await submit(client, auth, test["test_id"], log)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["result"]["flagged"] is True, body["result"]
    assert body["personal_best"] is False
    assert await board_entries(client, "words-50-en") == []
