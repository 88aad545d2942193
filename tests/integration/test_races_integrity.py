"""Issue 13's race attacks, through real sockets into the real workers.

Each test races on a gateway node (in-memory adapters, ``test_gateway``),
collects what it publishes on ``race-events`` and hands those events to the
``leaderboards`` and ``races`` worker handlers on both backends, then reads
the ``races`` board and the stored ratings: what a finish earns there, not
only what the socket said. Before the fix, the custom text "ab" finished
with two keystrokes gave 240 WPM, rank 1 on ``races`` and a rating change,
and a finish log squeezed into the last 3.3 s after progress at a steady
pace was accepted at ~220 WPM, unflagged. A matched player who never shows up
(``rooms.race`` rule 5a) is rated last: a loss, recorded once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection

from tests.integration.test_gateway import Node, Start, hello, recv, send, start_node  # noqa: F401
from tests.integration.test_races import position, recv_any, recv_reply
from tests.typing_logs import by_hand
from typogram import boards, topics
from typogram.db.schema import rating_history, user_ratings
from typogram.leaderboards import Leaderboards
from typogram.match_queues import MatchTicket, QueuedTicket
from typogram.platform import Platform
from typogram.ports import Event
from workers import leaderboards, races

pytestmark = pytest.mark.integration

PRIVATE: dict[str, Any] = {"race_countdown_ms": 300, "race_words": 12}
MATCHED: dict[str, Any] = {
    **PRIVATE,
    "race_words": 6,
    "match_interval_ms": 50,
    "match_max_wait_ms": 200,
    "race_no_show_ms": 500,  # a seat not taken up by start_at + 0.5 s is forfeited
}


class RaceEvents:
    """Everything a node publishes on ``race-events``."""

    def __init__(self, node: Node) -> None:
        self.events: list[Event] = []
        self._ended: dict[str, asyncio.Event] = {}
        self._task = asyncio.create_task(
            node.events.consume("integrity-test", [topics.RACE_EVENTS], self._record)
        )

    async def _record(self, topic: str, raw: bytes) -> None:
        event = Event.decode(raw)
        self.events.append(event)
        if event.type == topics.RACE_RESULT:  # the race's standings: its last event
            self._ended.setdefault(str(event.data["race"]), asyncio.Event()).set()

    async def finished(self, race: str) -> list[Event]:
        """Every event of ``race`` once its standings (``race.result``) are out."""
        await asyncio.wait_for(self._ended.setdefault(race, asyncio.Event()).wait(), 20)
        self._task.cancel()
        return [e for e in self.events if e.data.get("race") == race]


async def into_workers(platform: Platform, events: list[Event]) -> None:
    for event in events:
        await leaderboards.handle(platform, topics.RACE_EVENTS, event)
        await races.handle_race_event(platform, topics.RACE_EVENTS, event)


async def board(platform: Platform) -> list[tuple[str, float]]:
    period = boards.period("alltime", int(time.time() * 1000)).name
    board = Leaderboards(platform.db, platform.cache, platform.score_writes)
    entries = await board.top(boards.RACES, period, 10)
    return [(e["user_id"], e["wpm"]) for e in entries]


async def rated_users(platform: Platform, users: list[str]) -> set[str]:
    async with platform.db.read(primary=True) as conn:
        rows = await conn.execute(
            select(user_ratings.c.user_id).where(user_ratings.c.user_id.in_(users))
        )
        return {str(r.user_id) for r in rows}


async def private_race(
    node: Node, host: str, pal: str, text: str | None
) -> tuple[ClientConnection, ClientConnection, str, str, int]:
    a, _ = await hello(node, host)
    b, _ = await hello(node, pal)
    await send(a, "race.create", {"text": text} if text else {"difficulty": "easy"}, id=1)
    race, code = (await recv_reply(a, 1))["d"].values()
    await send(b, "race.join", {"code": code}, id=2)
    await recv_reply(b, 2)
    await send(a, "race.start", {"race": race}, id=3)
    countdown = (await recv(b, "race.countdown"))["d"]
    return a, b, race, countdown["text"], countdown["start_at"]


async def at(start_at: int, ms: int) -> None:
    """Sleep until ``ms`` into the race."""
    await asyncio.sleep(max(0.0, (start_at + ms) / 1000 - time.time()))


async def test_a_custom_text_race_is_unrated_and_off_the_boards(
    start_node: Start,  # noqa: F811
    platform: Platform,
) -> None:
    node = await start_node(**PRIVATE)
    collected = RaceEvents(node)
    a, b, race, text, start_at = await private_race(node, "ann-ab", "bob-ab", "ab")
    assert text == "ab"
    await at(start_at, 400)
    for ws, user_id in ((a, 11), (b, 12)):
        await send(ws, "race.progress", {"race": race, "pos": 2, "errors": 0})
        await send(
            ws, "race.finish", {"race": race, "keystrokes": [[300, "a"], [400, "b"]]}, id=user_id
        )
    mine = (await recv_reply(a, 11))["d"]
    assert mine["place"] == 1
    # Scored on the race's clock (the finish arrived ~400 ms in), not on 100 ms of log.
    assert mine["wpm"] < 120 and mine["time_ms"] >= 400
    result = (await recv_any(a, "race.result"))["d"]
    assert [s["rated"] for s in result["standings"]] == [False, False]
    events = await collected.finished(race)
    finished = next(e for e in events if e.type == topics.RACE_RESULT)
    assert finished.data["custom"] is True
    assert all(e.data["rated"] is False for e in events if e.type == topics.RACE_FINISHED)
    await into_workers(platform, events)
    assert await board(platform) == []
    assert await rated_users(platform, ["ann-ab", "bob-ab"]) == set()
    for ws in (a, b):
        await ws.close()


async def test_a_finish_squeezed_into_the_last_seconds_is_flagged_and_unrated(
    start_node: Start,  # noqa: F811
    platform: Platform,
) -> None:
    node = await start_node(**PRIVATE)
    collected = RaceEvents(node)
    a, b, race, text, start_at = await private_race(node, "ann-sq", "bob-sq", None)
    honest = by_hand(text, wpm=60, seed=4, typo_at=None, start_ms=300)
    end = int(honest[-1][0])  # type: ignore[call-overload]
    squeezed = by_hand(text, wpm=len(text) / 5 / (3.3 / 60), seed=5, typo_at=None)
    squeezed = [[int(t) + end - 3_300, k] for t, k in squeezed]  # type: ignore[call-overload]
    for ms in range(500, end, 500):  # both report the honest 60 WPM pace, twice a second
        await at(start_at, ms)
        pos = position(honest, ms, text)
        for ws in (a, b):
            await send(ws, "race.progress", {"race": race, "pos": pos, "errors": 0})
    await at(start_at, end + 50)
    for ws, log, ref in ((a, squeezed, 21), (b, honest, 22)):
        await send(ws, "race.progress", {"race": race, "pos": len(text), "errors": 0})
        await send(ws, "race.finish", {"race": race, "keystrokes": log}, id=ref)
    cheat, fair = (await recv_reply(a, 21))["d"], (await recv_reply(b, 22))["d"]
    assert cheat["place"] in (1, 2) and "progress_mismatch" in cheat["flags"]
    assert fair["flags"] == []
    # Both WPM figures run over the race's clock: about the 60 WPM both reported.
    assert cheat["wpm"] < 80 and fair["wpm"] < 80
    events = await collected.finished(race)
    await into_workers(platform, events)
    assert [user for user, _ in await board(platform)] == ["bob-sq"]
    standings = next(e for e in events if e.type == topics.RACE_RESULT).data["standings"]
    assert {s["user"]: s["rated"] for s in standings} == {"ann-sq": False, "bob-sq": True}
    # One rated racer left: no rating changes (openskill needs two).
    assert await rated_users(platform, ["ann-sq", "bob-sq"]) == set()
    for ws in (a, b):
        await ws.close()


async def test_concurrent_duplicate_finishes_produce_one_result(
    start_node: Start,  # noqa: F811
) -> None:
    node = await start_node(**PRIVATE)
    collected = RaceEvents(node)
    a, b, race, text, start_at = await private_race(node, "ann-dup", "bob-dup", None)
    log = by_hand(text, wpm=120, seed=6, typo_at=None, start_ms=300)
    second, _ = await hello(node, "ann-dup")  # the same racer in a second tab
    await send(second, "race.join", {"race": race}, id=30)
    await recv_reply(second, 30)
    for ms in range(500, int(log[-1][0]), 500):  # type: ignore[call-overload]
        await at(start_at, ms)
        await send(a, "race.progress", {"race": race, "pos": position(log, ms, text), "errors": 0})
    await at(start_at, int(log[-1][0]) + 50)  # type: ignore[call-overload]
    await send(a, "race.progress", {"race": race, "pos": len(text), "errors": 0})
    finish = {"race": race, "keystrokes": log}
    await asyncio.gather(
        send(a, "race.finish", finish, id=31), send(second, "race.finish", finish, id=32)
    )
    answers = [(await recv_reply(a, 31))["t"], (await recv_reply(second, 32))["t"]]
    assert sorted(answers) == ["error", "race.finished"]
    await send(b, "race.leave", {"race": race}, id=33)
    events = await collected.finished(race)
    assert [e.data["user"] for e in events if e.type == topics.RACE_FINISHED] == ["ann-dup"]
    for ws in (a, b, second):
        await ws.close()


async def test_a_no_show_in_a_rated_match_loses_rating_once(
    start_node: Start,  # noqa: F811
    platform: Platform,
) -> None:
    """``rooms.race`` rule 5a: a matched player whose seat is never taken up forfeits it.
    In a rated race that is a loss, recorded once however often the standings arrive:
    were it free, a player could dodge a bad matchup (or keep a rating) by not showing."""
    node = await start_node(**MATCHED)
    collected = RaceEvents(node)
    # bob's ticket names a node that is gone: his match.found reaches nobody.
    now_ms = int(time.time() * 1000)
    ticket = MatchTicket("t-bob-ns", "bob-ns", 1500.0, "easy", "en", now_ms)
    assert await node.ports.queues.enqueue(QueuedTicket(ticket, "bob-ns", "gone"), 60) is None
    a, _ = await hello(node, "ann-ns")
    await send(a, "match.join", {"mode": "race", "difficulty": "easy", "lang": "en"}, id=1)
    assert (await recv_reply(a, 1))["t"] == "match.queued"
    found = (await recv(a, "match.found"))["d"]
    race, text, start_at = found["race"], found["text"], found["start_at"]
    assert {p["id"] for p in found["players"]} == {"ann-ns", "bob-ns"}

    standings = await type_to_the_end(a, race, text, start_at, seed=7)
    assert [(s["user"], s["place"], s["done"], s["rated"]) for s in standings] == [
        ("ann-ns", 1, True, True),
        ("bob-ns", 2, False, True),  # forfeited, not excused
    ]

    events = await collected.finished(race)
    await into_workers(platform, events)
    stored = await ratings_of(platform, ["ann-ns", "bob-ns"])
    assert stored["bob-ns"][0] < 1500.0 < stored["ann-ns"][0]
    assert {r[2] for r in stored.values()} == {1}
    # Delivered again (a consumer's retry, a second owner's duplicate): nothing more.
    await into_workers(platform, events)
    await asyncio.gather(*(into_workers(platform, events) for _ in range(3)))
    assert await ratings_of(platform, ["ann-ns", "bob-ns"]) == stored
    async with platform.db.read(primary=True) as conn:
        history = (await conn.execute(select(rating_history))).all()
    assert sorted((h.user_id, h.place) for h in history) == [("ann-ns", 1), ("bob-ns", 2)]
    await a.close()


async def type_to_the_end(
    ws: ClientConnection, race: str, text: str, start_at: int, seed: int
) -> list[dict[str, Any]]:
    """Types ``text`` by hand at 70 WPM with progress twice a second, finishes, and
    returns the race's standings (``race.result``)."""
    log = by_hand(text, wpm=70, seed=seed, typo_at=None, start_ms=300)
    for ms in range(500, int(log[-1][0]), 500):  # type: ignore[call-overload]
        await at(start_at, ms)
        await send(ws, "race.progress", {"race": race, "pos": position(log, ms, text), "errors": 0})
    await at(start_at, int(log[-1][0]) + 50)  # type: ignore[call-overload]
    await send(ws, "race.progress", {"race": race, "pos": len(text), "errors": 0})
    await send(ws, "race.finish", {"race": race, "keystrokes": log}, id=90)
    assert (await recv_reply(ws, 90))["t"] == "race.finished"
    standings: list[dict[str, Any]] = (await recv_any(ws, "race.result"))["d"]["standings"]
    return standings


async def ratings_of(platform: Platform, users: list[str]) -> dict[str, tuple[float, float, int]]:
    async with platform.db.read(primary=True) as conn:
        rows = await conn.execute(select(user_ratings).where(user_ratings.c.user_id.in_(users)))
        return {str(r.user_id): (r.mu, r.sigma, r.races) for r in rows}


async def matched_pair(
    node: Node, ann: str, bob: str
) -> tuple[ClientConnection, ClientConnection, str, str, int]:
    """``ann`` and ``bob`` queued and matched: both sockets, the race, its text, start_at."""
    a, _ = await hello(node, ann)
    b, _ = await hello(node, bob)
    for ws in (a, b):
        await send(ws, "match.join", {"mode": "race", "difficulty": "easy", "lang": "en"}, id=1)
        assert (await recv_reply(ws, 1))["t"] == "match.queued"
    found = (await recv(a, "match.found"))["d"]
    assert (await recv(b, "match.found"))["d"]["race"] == found["race"]
    return a, b, found["race"], found["text"], found["start_at"]


async def test_leaving_a_match_during_the_countdown_is_a_rated_loss(
    start_node: Start,  # noqa: F811
    platform: Platform,
) -> None:
    """``rooms.race`` rule 4: bob sees whom he was matched against and leaves before the
    start. That used to free his seat (out of the standings, unrated: a free dodge); it
    is a forfeit now, rated last, and joining again does not give the seat back."""
    node = await start_node(**{**MATCHED, "race_countdown_ms": 3_000})
    collected = RaceEvents(node)
    a, b, race, text, start_at = await matched_pair(node, "ann-dodge", "bob-dodge")
    await send(b, "race.leave", {"race": race}, id=2)
    assert (await recv_reply(b, 2))["d"] == {"race": race, "forfeited": True}
    assert int(time.time() * 1000) < start_at  # still counting down
    await send(b, "race.join", {"race": race}, id=3)  # back, to reset the forfeit
    assert (await recv_reply(b, 3))["t"] == "race.joined"

    await at(start_at, 500)
    await send(b, "race.progress", {"race": race, "pos": 1, "errors": 0})
    refused = await recv(b, "error")
    assert refused["d"]["code"] == "conflict"  # done with this race
    standings = await type_to_the_end(a, race, text, start_at, seed=8)
    assert [(s["user"], s["place"], s["done"], s["rated"]) for s in standings] == [
        ("ann-dodge", 1, True, True),
        ("bob-dodge", 2, False, True),
    ]
    await into_workers(platform, await collected.finished(race))
    stored = await ratings_of(platform, ["ann-dodge", "bob-dodge"])
    assert stored["bob-dodge"][0] < 1500.0 < stored["ann-dodge"][0]
    for ws in (a, b):
        await ws.close()


async def test_a_match_everyone_leaves_during_the_countdown_ends_at_once(
    start_node: Start,  # noqa: F811
    platform: Platform,
) -> None:
    """Both players leave before the start: the race ends then (not at the time limit),
    both in the standings as forfeits, and the workers take those standings."""
    node = await start_node(**{**MATCHED, "race_countdown_ms": 3_000})
    collected = RaceEvents(node)
    a, b, race, _, start_at = await matched_pair(node, "ann-gone", "bob-gone")
    for ws, id_ in ((a, 2), (b, 3)):
        await send(ws, "race.leave", {"race": race}, id=id_)
        assert (await recv_reply(ws, id_))["d"]["forfeited"] is True
    events = await collected.finished(race)
    assert int(time.time() * 1000) < start_at + 1_000  # ended in the countdown
    result = next(e for e in events if e.type == topics.RACE_RESULT)
    assert {(s["user"], s["place"], s["done"]) for s in result.data["standings"]} == {
        ("ann-gone", 1, False),  # (seats by match order)
        ("bob-gone", 1, False),
    }
    await into_workers(platform, events)  # a tie: rated, nobody ahead
    stored = await ratings_of(platform, ["ann-gone", "bob-gone"])
    assert {r[2] for r in stored.values()} == {1}
    for ws in (a, b):
        await ws.close()
