"""Learning: enrol → lesson test → result → completion → next lesson → course, and the
attacks on it (foreign tests, forged ids, numbers out of range, concurrent completions)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.integration.courses_support import (
    Auth,
    client,
    course_worker,
    eventually,
    staff,
    user,
)
from tests.integration.test_rest_results import submit, typed_by_hand
from typogram.courses.learning import Learning
from typogram.platform import Platform

pytestmark = pytest.mark.integration
__all__ = ["client", "course_worker"]  # fixtures

FIRST, SECOND = "fjfj jfjf ffjj jjff fjjf", "dkdk kdkd ddkk kkdd dkkd"


async def two_lesson_course(client: httpx.AsyncClient, platform: Platform) -> None:
    editor = await staff(client, platform, "edna", "editor")
    course = {"slug": "drills", "title": "Drills", "published": True}
    assert (
        await client.post("/api/v1/admin/courses", json=course, headers=editor)
    ).status_code == 201
    for title, text in (("One", FIRST), ("Two", SECOND)):
        lesson = {"title": title, "source": {"kind": "fixed", "text": text},
                  "goal": {"wpm": 20, "accuracy": 90}}  # fmt: skip
        added = await client.post(
            "/api/v1/admin/courses/drills/lessons", json=lesson, headers=editor
        )
        assert added.status_code == 201


async def lesson_test(client: httpx.AsyncClient, auth: Auth, number: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/courses/drills/lessons/{number}/test", headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def take(
    client: httpx.AsyncClient, auth: Auth, test: dict[str, Any], *, pace_ms: int = 140
) -> dict[str, Any]:
    log = typed_by_hand(test["text"], pace_ms=pace_ms)
    response = await submit(client, auth, test["test_id"], log)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


async def lessons_of(client: httpx.AsyncClient, auth: Auth) -> list[dict[str, Any]]:
    page = (await client.get("/api/v1/courses/drills", headers=auth)).json()
    return [lesson["progress"] for lesson in page["lessons"]]


def when(client: httpx.AsyncClient, auth: Auth, number: int, **wanted: object) -> Any:
    async def probe() -> list[dict[str, Any]] | None:
        states = await lessons_of(client, auth)
        mine = states[number - 1]
        return states if all(mine[k] == v for k, v in wanted.items()) else None

    return eventually(probe)


async def test_enrol_lesson_result_completion_next_lesson_course(
    client: httpx.AsyncClient, platform: Platform, course_worker: None
) -> None:
    await two_lesson_course(client, platform)
    _, alice = await user(client, "alice")
    refused = await client.get("/api/v1/courses/drills/lessons/1/test", headers=alice)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_enrolled"
    first = await client.post("/api/v1/courses/drills/enroll", headers=alice)
    again = await client.post("/api/v1/courses/drills/enroll", headers=alice)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["enrollment"] == again.json()["enrollment"]
    assert (first.json()["created"], again.json()["created"]) == (True, False)
    locked = await client.get("/api/v1/courses/drills/lessons/2/test", headers=alice)
    assert locked.status_code == 403 and locked.json()["error"]["code"] == "lesson_locked"
    assert [s["state"] for s in await lessons_of(client, alice)] == ["available", "locked"]

    test = await lesson_test(client, alice, 1)
    plain = (await client.get("/api/v1/tests/new", headers=alice)).json()
    assert set(plain) <= set(test) and set(test) - set(plain) == {"lesson"}
    assert test["text"] == FIRST and test["board"] is None
    assert test["category"] == f"lesson-{test['lesson']['id']}"
    assert test["lesson"]["goal"] == {"wpm": 20.0, "accuracy": 90.0, "seconds": None}
    slow = await take(client, alice, test, pace_ms=900)  # ~13 WPM: short of the goal
    assert slow["wpm"] < 20
    states = await when(client, alice, 1, attempts=1)
    assert states[0]["state"] == "available" and states[0]["completed_at"] is None

    fast = await take(client, alice, await lesson_test(client, alice, 1))
    assert fast["wpm"] > 20 and fast["accuracy"] >= 90
    states = await when(client, alice, 1, state="completed")
    assert states[0]["attempts"] == 2 and states[0]["best_wpm"] == fast["wpm"]
    assert states[1]["state"] == "available"
    mine = (await client.get("/api/v1/enrollments/me", headers=alice)).json()["courses"]
    assert len(mine) == 1 and mine[0]["completed_lessons"] == 1 and mine[0]["progress"] == 0.5
    assert mine[0]["next_lesson"] == {"number": 2, "title": "Two"}

    await take(client, alice, await lesson_test(client, alice, 2))
    await when(client, alice, 2, state="completed")

    async def course_done() -> dict[str, Any] | None:
        body = (await client.get("/api/v1/enrollments/me", headers=alice)).json()
        course: dict[str, Any] = body["courses"][0]
        return course if course["enrollment"]["completed_at"] else None

    course = await course_done()
    assert course is not None and course["next_lesson"] is None and course["progress"] == 1.0

    async def graduated() -> list[str] | None:
        body = (await client.get("/api/v1/achievements/me", headers=alice)).json()
        ids = [a["id"] for a in body["unlocked"]]
        return ids if "course-1" in ids else None

    assert "course-1" in await eventually(graduated)
    # Lesson results are the learner's own: listed in their history, on no board.
    history = (await client.get("/api/v1/results/me", headers=alice)).json()["results"]
    assert sum(r["category"].startswith("lesson-") for r in history) == 3


async def test_attacks_on_lessons(
    client: httpx.AsyncClient, platform: Platform, course_worker: None
) -> None:
    await two_lesson_course(client, platform)
    alice_id, alice = await user(client, "alice")
    bob_id, bob = await user(client, "bobby")
    for who in (alice, bob):
        await client.post("/api/v1/courses/drills/enroll", headers=who)
    test = await lesson_test(client, alice, 1)
    # Someone else's lesson test: 404, and alice's lesson is untouched.
    stolen = await submit(client, bob, test["test_id"], typed_by_hand(test["text"]))
    assert stolen.status_code == 404
    # Forged lesson fields in the result body are refused outright.
    forged = await client.post(
        "/api/v1/results",
        json={"test_id": test["test_id"], "keystrokes": [], "lesson_id": test["lesson"]["id"]},
        headers=bob,
    )
    assert forged.status_code == 400
    # Numbers and slugs out of range.
    for path in ("drills/lessons/0", "drills/lessons/3", "drills/lessons/-1",
                 "drills/lessons/abc", "drills/lessons/1.0", "drills/lessons/99999999999999999999",
                 "nope/lessons/1", "DRILLS/lessons/1"):  # fmt: skip
        assert (await client.get(f"/api/v1/courses/{path}/test", headers=alice)).status_code == 404
    assert (await client.post("/api/v1/courses/nope/enroll", headers=alice)).status_code == 404
    assert (await client.get("/api/v1/courses/drills/lessons/1/test")).status_code == 401

    # A forged event: bob's result claiming alice's lesson test completes nothing.
    learning = Learning(platform.db)
    event = {
        "result_id": "f" * 32, "user_id": bob_id, "test_id": test["test_id"], "wpm": 99.0,
        "accuracy": 100.0, "duration_ms": 5_000, "mode": "words", "flagged": False,
        "chars": {"correct": 24, "incorrect": 0, "extra": 0, "missed": 0},
        "personal_best_category": test["category"], "created_at": 1,
    }  # fmt: skip
    assert await learning.apply_results([event]) == []
    assert await learning.apply_results([{**event, "test_id": "0" * 32}]) == []
    assert await learning.progress(alice_id, [test["lesson"]["id"]]) == {}
    # Alice's own result counts once, however often it is delivered.
    mine = {**event, "user_id": alice_id}
    done = await learning.apply_results([mine, mine])
    assert [c.lesson_id for c in done] == [test["lesson"]["id"]]
    assert await learning.apply_results([mine]) == []
    states = await lessons_of(client, alice)
    assert states[0]["attempts"] == 1 and states[0]["state"] == "completed"
    assert (await lessons_of(client, bob))[0]["state"] == "available"


async def test_concurrent_completions_complete_once(
    client: httpx.AsyncClient, platform: Platform, course_worker: None
) -> None:
    await two_lesson_course(client, platform)
    alice_id, alice = await user(client, "alice")
    await client.post("/api/v1/courses/drills/enroll", headers=alice)
    tests = [await lesson_test(client, alice, 1) for _ in range(3)]
    results = await asyncio.gather(*(take(client, alice, test) for test in tests))
    states = await when(client, alice, 1, attempts=3)
    assert states[0]["state"] == "completed"
    assert states[0]["completed_at"] in {r["created_at"] for r in results}
    # Two workers applying the same fresh results at once: one completion in all.
    tests = [await lesson_test(client, alice, 2) for _ in range(2)]
    events = [
        {"result_id": f"{i}" * 32, "user_id": alice_id, "test_id": t["test_id"], "wpm": 50.0,
         "accuracy": 99.0, "duration_ms": 6_000, "mode": "words", "flagged": False,
         "chars": {"missed": 0}, "personal_best_category": t["category"], "created_at": 10 + i}
        for i, t in enumerate(tests)
    ]  # fmt: skip
    learning = Learning(platform.db)
    rounds = await asyncio.gather(
        learning.apply_results(events),
        learning.apply_results(events[::-1]),
        learning.apply_results(events[:1]),
        return_exceptions=True,
    )
    done = [c for r in rounds if isinstance(r, list) for c in r]
    assert len(done) == 1 and done[0].course_completed
    # A round that lost a lock race fails whole and its retry finds everything applied.
    for outcome in rounds:
        if isinstance(outcome, BaseException):
            assert await learning.apply_results(events) == []
    states = await lessons_of(client, alice)
    assert states[1]["attempts"] == 2 and states[1]["state"] == "completed"
