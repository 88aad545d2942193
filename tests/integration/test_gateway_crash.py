"""A gateway node SIGKILLed under a live race and chat members: sessions outlive it.

Three real ``typogram gateway`` processes on one Redis (``tests.gateway_nodes``).
On node A: the host of a private race, a second racer, and two chat members;
on B and C one racer each, and a chat writer on B. A is SIGKILLed mid-race
(it owns the race: the host created it there). Every client on A is an SDK
client (``TypogramClient``) with the other gateways as ``fallback_urls``: it
reconnects by itself, one racer and one chat member to B, the others to C.

Each gets its **session back** (same id) with ``resumed: true`` although A never
answered the takeover (its node lease was still valid), the SDK rejoins the
race by itself, the race (adopted by B or C) finishes with each result once,
and no acknowledged chat message is lost.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway_nodes import EXIT_WITHIN_S, Node, migrate, running_nodes
from tests.integration.test_races import human_log
from tests.race_players import (
    WAIT_S,
    Player,
    close_players,
    connected_player,
    play,
    type_until,
)
from typogram.settings import load
from typogram.tokens import TokenService

pytestmark = pytest.mark.integration

SECRET = "crash-cluster-secret-" + "c" * 32
ROOM = "crash-room"
CLUSTER: dict[str, object] = {
    "race_words": 8,
    "race_countdown_ms": 500,
    "race_max_players": 4,
    "race_lease_s": 1.5,
    "race_forward_timeout_s": 0.5,
    "ws_takeover_wait_s": 0.5,
    "gateway_drain_timeout_s": 3,
}


@pytest.fixture(scope="module")
def migrated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrate(tmp_path_factory.mktemp("crash-cluster-data"), SECRET)


@pytest.fixture
def nodes(
    migrated_dir: Path, redis_url: str, unique_prefix: str, tmp_path: Path
) -> Iterator[list[Node]]:
    with running_nodes(
        "ABC",
        data_dir=migrated_dir,
        secret=SECRET,
        redis_url=redis_url,
        prefix=unique_prefix,
        log_dir=tmp_path,
        env={f"TYPOGRAM_{k.upper()}": str(v) for k, v in CLUSTER.items()},
    ) as started:
        yield started


@pytest.fixture
async def connect(nodes: list[Node]) -> AsyncIterator[Any]:
    """``await connect(node, name, fallback=None)`` -> a reading ``Player``."""
    tokens = TokenService(load(env={}, environment="test", jwt_secret=SECRET))
    players: list[Player] = []

    async def open_player(index: int, name: str, fallback: int | None = None) -> Player:
        token, claims = tokens.issue_guest(name)
        urls = [] if fallback is None else [nodes[fallback].url]
        player = await connected_player(
            nodes[index].url, token, claims.subject, index, fallback_urls=urls
        )
        players.append(player)
        return player

    yield open_player
    await close_players(players)


async def _back(player: Player) -> None:
    deadline = time.monotonic() + WAIT_S
    while player.client.reconnects < 1:
        assert time.monotonic() < deadline, f"{player.user} did not reconnect"
        await asyncio.sleep(0.05)


def _texts(player: Player) -> list[str]:
    return [
        str(f.d["text"]) for _, f in player.frames if f.t == "chat.message" and f.d["room"] == ROOM
    ]


async def test_sessions_races_and_chat_outlive_a_sigkilled_node(
    nodes: list[Node], connect: Any
) -> None:
    host, second = await connect(0, "host", 1), await connect(0, "second", 2)
    on_b, on_c = await connect(1, "bee"), await connect(2, "cee")
    member_b, member_c = await connect(0, "mem-b", 1), await connect(0, "mem-c", 2)
    writer = await connect(1, "writer")
    for member in (member_b, member_c, writer):
        await member.client.request("room.join", {"room": ROOM})

    created = await host.client.request("race.create", {})
    race, code = created.d["race"], created.d["code"]
    for racer in (second, on_b, on_c):
        await racer.client.request("race.join", {"code": code})
    await host.client.send("race.start", {"race": race})
    countdown = (await host.push("race.countdown")).d
    text, start_at = countdown["text"], countdown["start_at"]
    racers = [host, second, on_b, on_c]
    rng = random.Random(22)
    logs = {
        p.user: human_log(text, wpm, rng) for p, wpm in zip(racers, (80, 75, 70, 65), strict=True)
    }

    acked = [(await writer.client.request("chat.send", {"room": ROOM, "text": "before"})).d]
    await asyncio.sleep(0.3)  # the members' records follow what they were sent
    sessions = {p.user: p.client.session for p in (host, second, member_b, member_c)}

    typing = [
        asyncio.create_task(type_until(p, race, text, start_at, logs[p.user], 1_000))
        for p in racers
    ]
    await asyncio.gather(*typing)
    node = nodes[0]
    node.proc.kill()
    assert await asyncio.to_thread(node.proc.wait, EXIT_WITHIN_S) == -signal.SIGKILL

    acked.append((await writer.client.request("chat.send", {"room": ROOM, "text": "during"})).d)
    victims = [(host, 1), (second, 2), (member_b, 1), (member_c, 2)]
    for player, survivor in victims:
        await _back(player)
        client = player.client
        assert client.url == nodes[survivor].url
        assert client.session == sessions[player.user], f"{player.user} got a new session"
        assert client.resumed, f"{player.user} was not resumed"
    acked.append((await writer.client.request("chat.send", {"room": ROOM, "text": "after"})).d)

    # The SDK rejoined the race by itself; everybody finishes on the adopted race.
    for racer in (host, second):
        await racer.push("race.joined", after=time.monotonic() - WAIT_S)
    finished = await asyncio.gather(*(play(p, race, text, start_at, logs[p.user]) for p in racers))
    assert sorted(f["place"] for f in finished) == [1, 2, 3, 4]
    results = [(await p.push("race.result", wait_s=6)).d for p in racers]
    assert all(r == results[0] for r in results)
    assert sorted(s["user"] for s in results[0]["standings"]) == sorted(p.user for p in racers)
    await asyncio.sleep(0.5)
    for racer in racers:  # each result exactly once
        assert sum(1 for _, f in racer.frames if f.t == "race.result") == 1

    # No acknowledged chat message lost, none twice.
    for member in (member_b, member_c):
        deadline = time.monotonic() + WAIT_S
        while _texts(member) != ["before", "during", "after"]:
            assert time.monotonic() < deadline, (member.user, _texts(member), acked)
            await asyncio.sleep(0.05)
