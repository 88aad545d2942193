"""The anti-cheat history rules judge race finishes too, and races build the history.

Issue 13: a race finish was judged without the racer's history, so a racer
whose results say ~30 WPM finished at ~90 unflagged — rank 1 on ``races``
and a rating change — and a brand-new account could take the ``races``
record at once. Now the node that takes a finish reads the racer's history
(``typogram.history``) into the finish: far above the racer's established
best is flagged ``far_from_history``, and before the minimum history a
finish above the board's record is flagged ``newcomer_record``; like any
flagged finish both are unrated, off the boards and queued for review. An
accepted finish adds to its racer's history once its race is recorded.

The race runs on a gateway node (in-memory adapters, ``test_gateway``) whose
cache holds the history; its events then go through the real workers on both
backends (``test_races_integrity``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from tests.integration.test_gateway import Node, Start, send, start_node  # noqa: F401
from tests.integration.test_races import position, recv_reply
from tests.integration.test_races_integrity import (
    PRIVATE,
    RaceEvents,
    at,
    board,
    into_workers,
    private_race,
    rated_users,
)
from tests.typing_logs import by_hand
from typogram import boards, history, keys, topics
from typogram.platform import Platform
from typogram.reviews import Reviews
from workers import reviews as reviews_worker

pytestmark = pytest.mark.integration


async def established(node: Node, user: str, best: float) -> None:
    """``user`` has the minimum history, with ``best`` WPM (node's cache)."""
    min_results = node.gateway.settings.typing_history_min_results
    await node.cache.set(keys.user_history_count(user), str(min_results).encode())
    await node.cache.zadd(keys.user_bests(user), {"words-25-en": best})


async def race_at(
    node: Node, players: tuple[str, str], paces: tuple[float, float]
) -> tuple[list[dict[str, Any]], list[Any]]:
    """A private race of two players typing at ``paces`` WPM (progress reported as
    typed): each one's ``race.finished`` reply and the race's events."""
    collected = RaceEvents(node)
    a, b, race, text, start_at = await private_race(node, *players, None)
    logs = [
        by_hand(text, wpm=w, seed=n + 7, typo_at=None, start_ms=300) for n, w in enumerate(paces)
    ]
    ends = [int(log[-1][0]) for log in logs]  # type: ignore[call-overload]
    sockets: list[ClientConnection] = [a, b]
    pending = {0, 1}
    ms = 500
    while pending:
        await at(start_at, ms)
        for n in sorted(pending):
            ws, log = sockets[n], logs[n]
            if ms < ends[n] + 50:
                pos = position(log, ms, text)
                await send_progress(ws, race, pos)
                continue
            await send_progress(ws, race, len(text))
            await send(ws, "race.finish", {"race": race, "keystrokes": log}, id=40 + n)
            pending.discard(n)
        ms += 250
    replies = [(await recv_reply(ws, 40 + n))["d"] for n, ws in enumerate(sockets)]
    events = await collected.finished(race)
    for ws in sockets:
        await ws.close()
    return replies, events


async def send_progress(ws: ClientConnection, race: str, pos: int) -> None:
    await send(ws, "race.progress", {"race": race, "pos": pos, "errors": 0})


async def queued_reasons(platform: Platform, events: list[Any]) -> dict[str, list[str]]:
    for event in events:
        await reviews_worker.handle(platform, topics.RACE_EVENTS, event)
    reviews = Reviews(
        platform.db, platform.cache, platform.records, score_writes=platform.score_writes
    )
    page, _ = await reviews.page("open", limit=100, cursor=None)
    return {f["user_id"]: f["reasons"] for f in page}


async def history_count(platform: Platform, user: str) -> int:
    raw = await platform.cache.get(keys.user_history_count(user))
    return int(raw) if raw is not None else 0


async def test_a_finish_far_above_the_racers_history_is_flagged_and_unrated(
    start_node: Start,  # noqa: F811
    platform: Platform,
) -> None:
    node = await start_node(**PRIVATE)
    await established(node, "ann-far", best=30.0)
    (cheat, fair), events = await race_at(node, ("ann-far", "bob-far"), (90.0, 60.0))
    assert cheat["flags"] == ["far_from_history"] and cheat["wpm"] > 60
    assert fair["flags"] == []  # a newcomer on an empty board: nothing to compare with
    await into_workers(platform, events)
    assert [user for user, _ in await board(platform)] == ["bob-far"]
    assert await rated_users(platform, ["ann-far", "bob-far"]) == set()  # one rated racer
    assert (await queued_reasons(platform, events))["ann-far"] == ["far_from_history"]
    # The honest finish joined its racer's history, once (a replay adds nothing).
    await into_workers(platform, events)
    assert await history_count(platform, "bob-far") == 1
    assert await history_count(platform, "ann-far") == 0
    best = await platform.cache.zscore(keys.user_bests("bob-far"), history.RACES_BEST)
    assert best == fair["wpm"]


async def test_a_newcomer_cannot_take_the_record(
    start_node: Start,  # noqa: F811
    platform: Platform,
) -> None:
    node = await start_node(**PRIVATE)
    alltime = boards.period("alltime", int(time.time() * 1000)).name
    record = boards.encode(50.0, int(time.time() * 1000))
    await node.cache.zadd(keys.leaderboard(boards.RACES, alltime), {"champ": record})
    await established(node, "bob-rec", best=65.0)
    (new, known), events = await race_at(node, ("ann-rec", "bob-rec"), (70.0, 70.0))
    assert new["flags"] == ["newcomer_record"] and new["wpm"] > 50
    assert known["flags"] == []  # an established racer's own pace
    await into_workers(platform, events)
    assert [user for user, _ in await board(platform)] == ["bob-rec"]
    assert (await queued_reasons(platform, events))["ann-rec"] == ["newcomer_record"]
