"""A staff approval counts a flagged result as acceptance would have; rejection never does.

Issue 13: "approval puts the result on its boards" left the rest behind — an
approved result stayed ``flagged`` in the user's history, never became a
personal best and never counted in ``user_stats`` (tests, time typed, average
and best WPM). Approval now does all of it exactly once: approving twice,
or twice at the same moment, counts the result once; a rejected result never
counts. Both backends, with the ``results``, ``leaderboards`` and ``reviews``
workers running (``typing_flag_wpm`` is lowered so a human-like log is flagged).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.integration.test_pipeline import client, eventually  # noqa: F401
from tests.integration.test_rest_results import register, submit, typed_by_hand
from tests.integration.test_reviews import (  # noqa: F401
    backend_settings,
    board_shows,
    flagged_result,
    on_board,
    queue,
    staff,
    workers,
)
from typogram import keys
from typogram.db.schema import personal_bests, test_results, user_stats
from typogram.platform import Platform

pytestmark = pytest.mark.integration


async def queued(http: httpx.AsyncClient, mod: dict[str, str], result_id: str) -> str:
    """The flag id of ``result_id`` once the ``reviews`` worker queued it."""

    async def found() -> str | None:
        flags = (await queue(http, mod, "?limit=100"))["flags"]
        return next((f["id"] for f in flags if f["subject_id"] == result_id), None)

    return await eventually(found)


async def queued_result(
    http: httpx.AsyncClient, platform: Platform, name: str, seed: int
) -> tuple[dict[str, str], dict[str, str], dict[str, Any], str]:
    """A moderator, a user ``name`` with a flagged result, the result and its flag id."""
    mod = await staff(http, platform, f"mod_{name}")
    auth = await register(http, name)
    result = await flagged_result(http, auth, seed=seed)
    return mod, auth, result, await queued(http, mod, result["id"])


async def decide(
    http: httpx.AsyncClient, mod: dict[str, str], flag: str, verb: str
) -> httpx.Response:
    """``verb`` the flag, waiting out a result the ``results`` worker has not stored yet."""

    async def answered() -> httpx.Response | None:
        response = await http.post(f"/api/v1/admin/flags/{flag}/{verb}", json={}, headers=mod)
        return None if response.status_code == 503 else response

    return await eventually(answered)


async def stored(platform: Platform, username: str) -> dict[str, Any]:
    user = await platform.accounts.get_by_username(username)
    assert user is not None
    async with platform.db.read(primary=True) as conn:
        stats = (
            (await conn.execute(select(user_stats).where(user_stats.c.user_id == user.id)))
            .mappings()
            .first()
        )
        bests = (
            await conn.execute(
                select(personal_bests.c.category, personal_bests.c.wpm).where(
                    personal_bests.c.user_id == user.id
                )
            )
        ).all()
        flagged = (
            await conn.execute(
                select(test_results.c.flagged).where(test_results.c.user_id == user.id)
            )
        ).all()
    return {
        "id": user.id,
        "tests": None if stats is None else stats["tests"],
        "flagged": None if stats is None else stats["flagged"],
        "best": None if stats is None else stats["best_wpm"],
        "bests": {str(c): float(w) for c, w in bests},
        "rows_flagged": sorted(int(f) for (f,) in flagged),
    }


async def test_approval_counts_a_result_once_as_acceptance_would_have_rejection_never(
    client: httpx.AsyncClient,  # noqa: F811
    platform: Platform,
    workers: None,  # noqa: F811
) -> None:
    mod, ann, result, flag = await queued_result(client, platform, "ann", seed=3)
    before = await stored(platform, "ann")
    assert (before["tests"], before["flagged"], before["bests"]) == (0, 1, {})  # stored

    # Three approvals at once, then one more: the same answer, nothing counted twice.
    url = f"/api/v1/admin/flags/{flag}/approve"
    again = await asyncio.gather(*(client.post(url, json={}, headers=mod) for _ in "abc"))
    assert [a.status_code for a in again] == [200, 200, 200], [a.text for a in again]
    assert {a.json()["flag"]["status"] for a in again} == {"approved"}
    assert (await decide(client, mod, flag, "approve")).status_code == 200
    assert (await decide(client, mod, flag, "reject")).status_code == 409

    after = await stored(platform, "ann")
    assert (after["tests"], after["flagged"], after["rows_flagged"]) == (1, 0, [0])
    assert after["bests"] == {"words-25-en": result["wpm"]} and after["best"] == result["wpm"]
    stats = (await client.get("/api/v1/users/ann/stats")).json()
    assert stats["tests"] == 1 and stats["best_wpm"] == round(result["wpm"], 2)
    assert [b["wpm"] for b in stats["personal_bests"]] == [round(result["wpm"], 2)]
    mine = (await client.get("/api/v1/results/me", headers=ann)).json()["results"]
    assert [(r["id"], r["flagged"]) for r in mine] == [(result["id"], False)]
    await board_shows(client, "words-25-en", ["ann"])
    best = await platform.cache.zscore(keys.user_bests(after["id"]), "words-25-en")
    assert best == result["wpm"]

    # A slower accepted result is no personal best: the approved one stands.
    test = (await client.get("/api/v1/tests/new?mode=words&count=25", headers=ann)).json()
    slow = await submit(client, ann, test["test_id"], typed_by_hand(test["text"], pace_ms=600))
    assert slow.status_code == 201 and slow.json()["result"]["flagged"] is False
    assert slow.json()["personal_best"] is False

    # Rejected: it never counts, and stays decided.
    mod, _, _, flag = await queued_result(client, platform, "bob", seed=4)
    rejected = await decide(client, mod, flag, "reject")
    assert rejected.status_code == 200, rejected.text
    assert (await decide(client, mod, flag, "approve")).status_code == 409
    assert (await decide(client, mod, flag, "reject")).status_code == 409

    async def kept() -> dict[str, Any] | None:  # once the results worker stored it
        now = await stored(platform, "bob")
        return now if now["flagged"] == 1 else None

    after = await eventually(kept)
    assert (after["tests"], after["flagged"], after["bests"]) == (0, 1, {})
    assert after["rows_flagged"] == [1]
    assert await platform.cache.zscore(keys.user_bests(after["id"]), "words-25-en") is None
    stats = (await client.get("/api/v1/users/bob/stats")).json()
    assert stats["tests"] == 0 and stats["personal_bests"] == []
    assert "bob" not in await on_board(client, "words-25-en")
