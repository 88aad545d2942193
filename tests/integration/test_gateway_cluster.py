"""Three real ``typogram gateway`` processes sharing one Redis: cross-node chat and presence.

Each test starts its own cluster (three subprocesses, distinct ports, one
Redis with a fresh ``TYPOGRAM_REDIS_PREFIX``) and stops it in teardown with
SIGTERM, asserting a clean exit within ``EXIT_WITHIN_S``. Clients use the SDK
(``typogram.client``) with reconnects off, so close codes stay visible.

Room channels are subscribed on a node only once a local member joined, and
``room.joined`` may reach the client before that SUBSCRIBE is confirmed, so
the tests wait for Redis to report the expected subscriber count
(``PUBSUB NUMSUB``) before relying on delivery to a fresh member.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.gateway_nodes import EXIT_WITHIN_S, Node, migrate, running_nodes
from typogram import keys
from typogram.client import ConnectionLost, TypogramClient
from typogram.protocol import ServerFrame
from typogram.settings import load
from typogram.tokens import TokenService

pytestmark = pytest.mark.integration

SECRET = "cluster-test-secret-" + "y" * 32
NODES = 3
WAIT_S = 5.0
QUIET_S = 0.3  # how long to listen for duplicates after the expected frames came
HEARTBEAT_S = 1.0  # presence TTL is three heartbeats: a killed node's users expire fast
ROOM = "cluster-room"


@dataclass
class Cluster:
    nodes: list[Node]
    redis_url: str
    prefix: str
    tokens: TokenService = field(default_factory=lambda: TokenService(_token_settings()))

    def token(self, name: str) -> tuple[str, str]:
        """A guest token and the user id it carries."""
        token, claims = self.tokens.issue_guest(name)
        return token, claims.subject

    async def subscribers(self, room: str) -> int:
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            channel = self.prefix + keys.channel_room(room)
            [(_, count)] = await client.pubsub_numsub(channel)
            return int(count)
        finally:
            await client.aclose()

    async def wait_subscribers(self, room: str, count: int) -> None:
        deadline = time.monotonic() + WAIT_S
        while (seen := await self.subscribers(room)) != count:
            assert time.monotonic() < deadline, f"{room}: {seen} node(s) subscribed, not {count}"
            await asyncio.sleep(0.02)


def _token_settings() -> Any:
    return load(env={}, environment="test", jwt_secret=SECRET)


@pytest.fixture(scope="module")
def migrated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrate(tmp_path_factory.mktemp("cluster-data"), SECRET)


@pytest.fixture
def cluster(
    migrated_dir: Path, redis_url: str, unique_prefix: str, tmp_path: Path
) -> Iterator[Cluster]:
    with running_nodes(
        "ABC"[:NODES],
        data_dir=migrated_dir,
        secret=SECRET,
        redis_url=redis_url,
        prefix=unique_prefix,
        log_dir=tmp_path,
        env={
            "TYPOGRAM_WS_HEARTBEAT_S": str(HEARTBEAT_S),
            "TYPOGRAM_GATEWAY_DRAIN_TIMEOUT_S": "3",
        },
    ) as nodes:
        yield Cluster(nodes, redis_url, unique_prefix)


@pytest.fixture
async def connect(cluster: Cluster) -> AsyncIterator[Any]:
    """``await connect(node_index, name)`` -> (client, user id); all closed at the end."""
    clients: list[TypogramClient] = []

    async def open_client(index: int, name: str) -> tuple[TypogramClient, str]:
        token, user_id = cluster.token(name)
        client = TypogramClient(cluster.nodes[index].url, token, reconnect=False)
        await client.__aenter__()
        clients.append(client)
        return client, user_id

    yield open_client
    for client in clients:
        await client.close()


async def _push(client: TypogramClient, t: str, wait_s: float = WAIT_S) -> ServerFrame:
    """The next push of type ``t`` (others are skipped)."""
    async with asyncio.timeout(wait_s):
        while True:
            frame = await client.receive()
            if frame.t == t:
                return frame


async def _collect(client: TypogramClient, t: str, count: int) -> list[ServerFrame]:
    """Exactly ``count`` pushes of type ``t``, then nothing more of that type for QUIET_S."""
    frames = [await _push(client, t) for _ in range(count)]
    try:
        extra = await _push(client, t, QUIET_S)
    except TimeoutError:
        return frames
    raise AssertionError(f"an extra {t}: {extra.d}")


async def _left(client: TypogramClient) -> list[str]:
    """Ids in the next ``room.presence`` that reports a departure (arrivals are skipped)."""
    while not (frame := await _push(client, "room.presence")).d["left"]:
        pass
    return [u["id"] for u in frame.d["left"]]


async def _join(cluster: Cluster, client: TypogramClient, nodes_in_room: int) -> None:
    await client.request("room.join", {"room": ROOM})
    await cluster.wait_subscribers(ROOM, nodes_in_room)


async def _closed(client: TypogramClient, wait_s: float = WAIT_S) -> int | None:
    async with asyncio.timeout(wait_s):
        while True:
            try:
                await client.receive()
            except ConnectionLost:
                return client.close_code


async def test_chat_and_presence_cross_all_three_nodes(cluster: Cluster, connect: Any) -> None:
    alice, alice_id = await connect(0, "alice")
    bob, bob_id = await connect(1, "bob")
    carol, carol_id = await connect(2, "carol")

    await _join(cluster, alice, 1)
    await _join(cluster, bob, 2)
    joined = await _push(alice, "room.presence")
    assert [u["id"] for u in joined.d["joined"]] == [bob_id]
    await _join(cluster, carol, 3)
    for member in (alice, bob):
        joined = await _push(member, "room.presence")
        assert [u["id"] for u in joined.d["joined"]] == [carol_id]

    texts = [f"message {i}" for i in range(25)]
    for text in texts:
        await alice.send("chat.send", {"room": ROOM, "text": text})
    ids = None
    for member in (alice, bob, carol):
        got = await _collect(member, "chat.message", len(texts))
        assert [f.d["text"] for f in got] == texts  # each once, in order
        assert {f.d["user"]["id"] for f in got} == {alice_id}
        seqs = [f.s for f in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        ids = ids or [f.d["id"] for f in got]
        assert [f.d["id"] for f in got] == ids

    # Presence lives in the shared cache: node C sees users of A and B.
    state = await carol.request("presence.query", {"users": [alice_id, bob_id, "g-nobody"]})
    assert state.d["users"] == {alice_id: "online", bob_id: "online", "g-nobody": "offline"}
    await alice.request("presence.set", {"status": "away"})
    state = await carol.request("presence.query", {"users": [alice_id]})
    assert state.d["users"] == {alice_id: "away"}

    # Leaves reach the other nodes: an explicit leave, then a normal disconnect.
    await carol.request("room.leave", {"room": ROOM})
    for member in (alice, bob):
        left = await _push(member, "room.presence")
        assert (left.d["joined"], [u["id"] for u in left.d["left"]]) == ([], [carol_id])
    await bob.close()
    left = await _push(alice, "room.presence")
    assert [u["id"] for u in left.d["left"]] == [bob_id]
    state = await carol.request("presence.query", {"users": [bob_id]})
    assert state.d["users"] == {bob_id: "offline"}  # cleared when its last session ended


async def test_sigterm_drains_one_node_with_1012_and_the_rest_keep_working(
    cluster: Cluster, connect: Any
) -> None:
    alice, _ = await connect(0, "alice")
    bob, _ = await connect(1, "bob")
    carol, carol_id = await connect(2, "carol")
    for count, member in enumerate((alice, bob, carol), start=1):
        await _join(cluster, member, count)

    node_c = cluster.nodes[2]
    node_c.proc.send_signal(signal.SIGTERM)
    assert await _closed(carol) == 1012
    code = await asyncio.to_thread(node_c.proc.wait, EXIT_WITHIN_S)
    assert code == 0, node_c.log_tail()
    # Its sessions ended during the drain: the others saw carol leave.
    for member in (alice, bob):
        assert await _left(member) == [carol_id]
    await cluster.wait_subscribers(ROOM, 2)

    await bob.send("chat.send", {"room": ROOM, "text": "still here"})
    for member in (alice, bob):
        [message] = await _collect(member, "chat.message", 1)
        assert message.d["text"] == "still here"


async def test_a_killed_node_does_not_stop_the_others(cluster: Cluster, connect: Any) -> None:
    alice, _ = await connect(0, "alice")
    bob, _ = await connect(1, "bob")
    carol, carol_id = await connect(2, "carol")
    for count, member in enumerate((alice, bob, carol), start=1):
        await _join(cluster, member, count)

    node_c = cluster.nodes[2]
    node_c.proc.kill()
    assert await asyncio.to_thread(node_c.proc.wait, EXIT_WITHIN_S) == -signal.SIGKILL
    assert await _closed(carol) == 1006  # no close frame from a dead process
    await cluster.wait_subscribers(ROOM, 2)  # Redis dropped the dead node's subscription

    for sender, text in ((alice, "from A"), (bob, "from B")):
        await sender.send("chat.send", {"room": ROOM, "text": text})
        for member in (alice, bob):
            [message] = await _collect(member, "chat.message", 1)
            assert message.d["text"] == text
    # Nobody refreshes carol's presence any more: it expires after three heartbeats.
    deadline = time.monotonic() + 3 * HEARTBEAT_S + WAIT_S
    while (await alice.request("presence.query", {"users": [carol_id]})).d["users"] != {
        carol_id: "offline"
    }:
        assert time.monotonic() < deadline, "a dead node's user stayed online"
        await asyncio.sleep(0.2)
    # A new client on a surviving node joins and chats normally.
    dave, _ = await connect(1, "dave")
    await dave.request("room.join", {"room": ROOM})
    await dave.send("chat.send", {"room": ROOM, "text": "hi from dave"})
    [message] = await _collect(alice, "chat.message", 1)
    assert message.d["text"] == "hi from dave"
