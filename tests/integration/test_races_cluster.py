"""Races across three real ``typogram gateway`` processes on one Redis.

Each test starts its own cluster (three subprocesses, distinct WebSocket and
HTTP ports, one Redis with a fresh ``TYPOGRAM_REDIS_PREFIX``, one migrated
SQLite data dir) and stops the survivors with SIGTERM in teardown. Races are
small and fast (``CLUSTER``: three-seat races that start when full, short
texts, a 1.5 s race lease).

* Matchmaking across nodes: one client per node queues; the three get one
  race (each seat taken up as its node delivers ``match.found``: one player
  starts typing only after the no-show time and keeps the seat), type it,
  and all see the same standings.
* Failover: the node owning the race (``race:{id}:owner`` in Redis, mapped to
  a process through the session records' ``node``) is SIGKILLed mid-race.
  The players on the other nodes keep getting ``race.state`` once another
  node adopts the lapsed lease; the killed node's player reconnects to a
  surviving node within the resume window, re-joins by race id, keeps the
  seat, and everyone finishes with one ``race.result``.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from tests.gateway_nodes import EXIT_WITHIN_S, Node, migrate, running_nodes
from tests.integration.test_races import human_log
from tests.race_players import (
    WAIT_S,
    Player,
    close_players,
    connected_player,
    finish,
    matched,
    play,
    type_until,
)
from typogram import keys
from typogram.client import ClientError
from typogram.settings import load
from typogram.tokens import TokenService

pytestmark = pytest.mark.integration

SECRET = "race-cluster-secret-" + "r" * 32
LEASE_S = 1.5
CLUSTER: dict[str, object] = {
    "race_words": 6,
    "race_countdown_ms": 500,
    "race_no_show_ms": 1_000,  # a seat not taken up by start_at + 1 s is forfeited
    "race_max_players": 3,  # a group starts as soon as it is full...
    "match_max_wait_ms": 30_000,  # ...and never with fewer
    "match_interval_ms": 50,
    "race_lease_s": LEASE_S,
    "race_forward_timeout_s": 0.5,
    "gateway_drain_timeout_s": 3,
}


@dataclass
class Cluster:
    nodes: list[Node]
    redis_url: str
    prefix: str
    tokens: TokenService = field(
        default_factory=lambda: TokenService(load(env={}, environment="test", jwt_secret=SECRET))
    )

    async def get(self, key: str) -> bytes | None:
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            value = await client.get(self.prefix + key)
            return value.encode() if isinstance(value, str) else value
        finally:
            await client.aclose()


@pytest.fixture(scope="module")
def migrated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrate(tmp_path_factory.mktemp("race-cluster-data"), SECRET)


@pytest.fixture
def cluster(
    migrated_dir: Path, redis_url: str, unique_prefix: str, tmp_path: Path
) -> Iterator[Cluster]:
    with running_nodes(
        "ABC",
        data_dir=migrated_dir,
        secret=SECRET,
        redis_url=redis_url,
        prefix=unique_prefix,
        log_dir=tmp_path,
        env={f"TYPOGRAM_{k.upper()}": str(v) for k, v in CLUSTER.items()},
    ) as nodes:
        yield Cluster(nodes, redis_url, unique_prefix)


@pytest.fixture
async def connect(cluster: Cluster) -> AsyncIterator[Any]:
    """``await connect(node_index, name, resume_from=None)`` -> a reading ``Player``."""
    players: list[Player] = []

    async def open_player(index: int, name: str, resume_from: Player | None = None) -> Player:
        if resume_from is None:
            token, claims = cluster.tokens.issue_guest(name)
            user, session = claims.subject, None
        else:  # resume the dead node's session elsewhere
            token, user = resume_from.client.token, resume_from.user
            session = (resume_from.client.session, resume_from.client.last_seq)
        player = await connected_player(cluster.nodes[index].url, token, user, index, session)
        players.append(player)
        return player

    yield open_player
    await close_players(players)


async def test_three_nodes_match_one_race_and_share_its_standings(connect: Any) -> None:
    players = [await connect(i, name) for i, name in enumerate(("ann", "bob", "cat"))]
    found = await matched(players)
    race, text, start_at = found["race"], found["text"], found["start_at"]

    # Each node that delivered match.found told the owner its player has the seat: the
    # seats, awaited until then, show connected before anyone types.
    for player in players:
        while not any(all(q["connected"] for q in d["players"]) for _, d in player.states()):
            assert time.time() * 1000 < start_at + 2_000, f"{player.user}: seats not taken"
            await asyncio.sleep(0.02)

    rng = random.Random(11)
    logs = [human_log(text, wpm, rng) for wpm in (110, 90, 70)]

    async def late(player: Player, log: list[list[Any]]) -> Any:
        # Past the no-show time (start_at + 1 s): a delivered seat is kept.
        await asyncio.sleep(max(0.0, (start_at + 1_500) / 1000 - time.time()))
        return await play(player, race, text, start_at, log)

    finished = await asyncio.gather(
        play(players[0], race, text, start_at, logs[0]),
        play(players[1], race, text, start_at, logs[1]),
        late(players[2], logs[2]),
    )
    assert [f["place"] for f in finished] == [1, 2, 3]

    results = [(await p.push("race.result")).d for p in players]
    standings = results[0]["standings"]
    assert all(r == results[0] for r in results)  # one result, the same on every node
    assert [s["user"] for s in standings] == [p.user for p in players]
    assert [s["place"] for s in standings] == [1, 2, 3] and all(s["done"] for s in standings)
    for player in players:  # every node relayed the owner's snapshots
        assert any(len(d["players"]) == 3 for _, d in player.states())


async def test_the_race_survives_sigkill_of_its_owner_node(cluster: Cluster, connect: Any) -> None:
    players = [await connect(i, name) for i, name in enumerate(("ann", "bob", "cat"))]
    found = await matched(players)
    race, text, start_at = found["race"], found["text"], found["start_at"]
    owner = (await cluster.get(keys.race_owner(race)) or b"").decode()
    assert owner, "the race has no owner"
    by_node = {}
    for player in players:
        record = await cluster.get(keys.session_state(player.client.session or ""))
        assert record is not None, f"no session record for {player.user}"
        by_node[orjson.loads(record)["node"]] = player
    victim = by_node[owner]  # the player connected to the owning node
    survivors = [p for p in players if p is not victim]

    rng = random.Random(12)
    logs = {p.user: human_log(text, 75, rng) for p in players}
    kill_at_ms = 1_200  # race time: everybody is typing
    typing = [asyncio.create_task(play(p, race, text, start_at, logs[p.user])) for p in survivors]
    await type_until(victim, race, text, start_at, logs[victim.user], kill_at_ms)
    await asyncio.sleep(0.3)  # let the owner apply and publish the last reports
    before = {p.user: max(p.own_positions(), default=0) for p in survivors}
    assert all(before.values()), f"no progress in race.state before the kill: {before}"

    node = cluster.nodes[victim.node]
    node.proc.kill()
    killed_at = time.monotonic()
    assert await asyncio.to_thread(node.proc.wait, EXIT_WITHIN_S) == -signal.SIGKILL

    # The killed node's player comes back on a surviving node and re-joins by race id.
    back = await connect((victim.node + 1) % 3, "", resume_from=victim)
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            joined = await back.client.request("race.join", {"race": race})
            break
        except ClientError as exc:
            assert exc.code == "unavailable", exc  # until a node adopts the race
            assert time.monotonic() < deadline, "the race was not adopted"
            await asyncio.sleep(0.1)
    assert joined.t == "race.joined"
    seats = {p["id"]: p["seat"] for p in found["players"]}
    assert {p["id"]: p["seat"] for p in joined.d["players"]} == seats  # the seat was kept
    new_owner = (await cluster.get(keys.race_owner(race)) or b"").decode()
    assert new_owner and new_owner != owner

    # The others keep getting snapshots from the new owner within a few seconds of the lapse.
    for player in survivors:
        await player.push("race.state", after=killed_at, wait_s=LEASE_S + 4)
    victim_log = logs[victim.user]
    await type_until(back, race, text, start_at, victim_log, victim_log[-1][0])
    finished = [*await asyncio.gather(*typing), await finish(back, race, text, victim_log)]
    last_finish = time.monotonic()
    assert sorted(f["place"] for f in finished) == [1, 2, 3]

    results = [(await p.push("race.result", wait_s=4)).d for p in [*survivors, back]]
    assert all(r == results[0] for r in results)
    standings = results[0]["standings"]
    assert sorted(s["user"] for s in standings) == sorted(p.user for p in players)
    assert all(s["done"] for s in standings)
    assert max(at for p in (*survivors, back) for at, f in p.frames if f.t == "race.result") < (
        last_finish + 3
    )
    for player in survivors:  # snapshots after the kill show their progress moving on
        assert max(player.own_positions(after=killed_at), default=0) > before[player.user]
