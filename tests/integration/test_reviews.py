"""Flag, don't ban: the review queue end to end on both backends.

A result the checks flag is stored, kept off its boards and queued (the
``reviews`` worker); staff list it with its reasons and evidence and approve
or reject it; approval puts it on its boards, rejection keeps it off, each
decision once and audited; everyone else gets 403. ``typing_flag_wpm`` is
lowered so an ordinary human-like log is flagged (``wpm_high``) on purpose.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.integration.test_pipeline import client, eventually  # noqa: F401
from tests.integration.test_rest_results import register, submit, typed_by_hand
from typogram import boards, keys, race_events, topics
from typogram.db.schema import audit_log
from typogram.platform import Platform
from typogram.roles import Role
from typogram.settings import Settings
from typogram.staff import Actor, desk_of
from workers import reviews as reviews_worker
from workers.groups import GROUPS
from workers.runtime import GroupRunner

pytestmark = pytest.mark.integration


@pytest.fixture
def backend_settings(backend_settings: Settings) -> Settings:
    return backend_settings.replace(typing_flag_wpm=40.0)


@pytest.fixture
async def workers(platform: Platform) -> AsyncIterator[None]:
    names = ("results", "leaderboards", "reviews")
    tasks = [asyncio.create_task(GroupRunner(platform, GROUPS[n]).run()) for n in names]
    await asyncio.sleep(0.1)  # the in-process log registers a group on its first consume
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def staff(http: httpx.AsyncClient, platform: Platform, name: str) -> dict[str, str]:
    """A registered user made moderator, signed in again (the role travels in the token)."""
    await register(http, name)
    user = await platform.accounts.get_by_username(name)
    assert user is not None
    await desk_of(platform).set_role(Actor("test-admin", Role.ADMIN), user.id, Role.MODERATOR)
    login = await http.post("/api/v1/auth/login", json={"login": name, "password": "correct horse"})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def flagged_result(
    http: httpx.AsyncClient, auth: dict[str, str], seed: int
) -> dict[str, Any]:
    test = (await http.get("/api/v1/tests/new?mode=words&count=25", headers=auth)).json()
    response = await submit(http, auth, test["test_id"], typed_by_hand(test["text"], seed=seed))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()["result"]
    assert result["flagged"] is True and result["category"] == "words-25-en"
    return result


async def queue(http: httpx.AsyncClient, auth: dict[str, str], query: str = "") -> dict[str, Any]:
    response = await http.get(f"/api/v1/admin/flags{query}", headers=auth)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def on_board(http: httpx.AsyncClient, board: str) -> list[str]:
    """The named users on ``board`` (on Kafka the workers also replay earlier tests'
    events, whose users are gone: their entries have no name)."""
    response = await http.get(f"/api/v1/leaderboards/{board}?window=alltime")
    return [entry["username"] for entry in response.json()["entries"] if entry["username"]]


async def board_shows(http: httpx.AsyncClient, board: str, names: list[str]) -> None:
    """Wait until ``board``'s view shows ``names`` (a view is rebuilt at most once a second)."""

    async def shown() -> bool | None:
        return True if await on_board(http, board) == names else None

    await eventually(shown)


async def test_staff_approve_or_reject_flagged_results(
    client: httpx.AsyncClient,  # noqa: F811
    platform: Platform,
    workers: None,
) -> None:
    mod = await staff(client, platform, "modo")
    ann = await register(client, "ann")
    kept = await flagged_result(client, ann, seed=1)
    dropped = await flagged_result(client, await register(client, "bob"), seed=2)
    assert await on_board(client, "words-25-en") == []

    def ours(flags: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """This test's flags (on Kafka the worker also queues earlier tests' results)."""
        return [f for f in flags if f["subject_id"] in (kept["id"], dropped["id"])]

    async def both_queued() -> list[dict[str, Any]] | None:
        flags = ours((await queue(client, mod, "?limit=100"))["flags"])
        return flags if len(flags) == 2 else None

    flags = await eventually(both_queued)
    by_subject = {f["subject_id"]: f for f in flags}
    first = by_subject[kept["id"]]
    assert first["kind"] == "result" and first["status"] == "open" and first["username"] == "ann"
    assert first["reasons"] == ["wpm_high"] and "exceptionally fast" in first["message"]
    assert first["evidence"]["timing"]["intervals"] > 100 and first["evidence"]["raw_wpm"] > 40
    assert {b["board"] for b in first["boards"]} == {"words-25-en"} and len(first["boards"]) == 3

    # Nobody but staff.
    assert (await client.get("/api/v1/admin/flags", headers=ann)).status_code == 403
    url = f"/api/v1/admin/flags/{first['id']}"
    assert (await client.post(f"{url}/approve", json={}, headers=ann)).status_code == 403
    assert (await client.post(f"{url}/approve", json={})).status_code == 401

    approved = await client.post(f"{url}/approve", json={"note": "known fast typist"}, headers=mod)
    assert approved.status_code == 200, approved.text
    assert approved.json()["flag"]["status"] == "approved"
    await board_shows(client, "words-25-en", ["ann"])
    again = await client.post(f"{url}/reject", json={}, headers=mod)
    assert again.status_code == 409

    other = by_subject[dropped["id"]]
    rejected = await client.post(f"/api/v1/admin/flags/{other['id']}/reject", json={}, headers=mod)
    assert rejected.status_code == 200 and rejected.json()["flag"]["status"] == "rejected"
    assert await on_board(client, "words-25-en") == ["ann"]
    assert ours((await queue(client, mod, "?limit=100"))["flags"]) == []
    decided = ours((await queue(client, mod, "?status=rejected"))["flags"])
    assert [f["subject_id"] for f in decided] == [dropped["id"]]

    moderator = await platform.accounts.get_by_username("modo")
    assert moderator is not None
    async with platform.db.read(primary=True) as conn:
        audit = (
            await conn.execute(select(audit_log).where(audit_log.c.actor_id == moderator.id))
        ).mappings()
        # The decision is on the flagged user's record, by the moderator.
        actions = [(e["action"], e["outcome"], e["user_id"] != moderator.id) for e in audit]
    assert ("flag.approve", "ok", True) in actions and ("flag.reject", "ok", True) in actions

    missing = await client.post(
        "/api/v1/admin/flags/" + "0" * 32 + "/approve", json={}, headers=mod
    )
    assert missing.status_code == 404
    bad = await client.get("/api/v1/admin/flags?status=maybe&limit=0", headers=mod)
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"status"}


async def test_one_decision_wins_and_pages_follow_the_queue(
    client: httpx.AsyncClient,  # noqa: F811
    platform: Platform,
) -> None:
    mod = await staff(client, platform, "mira")
    now = int(time.time() * 1000)
    # Flagged race finishes straight into the worker: one per user, oldest first.
    for n in range(3):
        data = {
            "race": f"race{n}", "user": f"racer{n}", "place": 1, "wpm": 90.0 + n, "raw_wpm": 92.0,
            "accuracy": 97.0, "consistency": 80.0, "time_ms": 30_000,
            "flags": ["progress_mismatch"], "guest": False, "rated": False, "ranked": True,
        }  # fmt: skip
        event = replace(race_events.finish_event(f"race{n}", data), ts=now + n)
        await reviews_worker.handle(platform, topics.RACE_EVENTS, event)
        await reviews_worker.handle(platform, topics.RACE_EVENTS, event)  # a replay: no new row
    first = await queue(client, mod, "?limit=2")
    assert [f["subject_id"] for f in first["flags"]] == ["race0:racer0", "race1:racer1"]
    assert first["flags"][0]["boards"][0]["board"] == boards.RACES
    rest = await queue(client, mod, f"?limit=2&cursor={first['next_cursor']}")
    assert [f["subject_id"] for f in rest["flags"]] == ["race2:racer2"]
    assert rest["next_cursor"] is None

    url = f"/api/v1/admin/flags/{first['flags'][0]['id']}"
    answers = await asyncio.gather(
        client.post(f"{url}/approve", json={}, headers=mod),
        client.post(f"{url}/reject", json={}, headers=mod),
    )
    assert sorted(a.status_code for a in answers) == [200, 409]
    winner = next(a for a in answers if a.status_code == 200).json()["flag"]["status"]
    period = boards.period("alltime", now).name
    entries = await platform.cache.zrevrange(keys.leaderboard(boards.RACES, period), 0, -1)
    assert [user for user, _ in entries] == (["racer0"] if winner == "approved" else [])
