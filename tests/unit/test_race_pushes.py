"""Owner-local delivery of race pushes (``gateway.races.pushes`` with ``gateway.races.members``).

Two "nodes" share one in-memory pub/sub, each with its own ``Watchers``: the
owner hands pushes to its own watchers directly (numbered per session, but
``race.state`` snapshots go without ``s``), sends a
``race.state`` to another node's inbox only once that node is known to watch
the race, and always publishes the rare pushes and the pushes of races it
adopted on their channel. What Redis brings back for a race the node owns is
dropped, not delivered twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
import pytest

from gateway.races.inbox import RaceInbox, pushes_message
from gateway.races.members import Watchers
from gateway.races.messages import Join, Start
from gateway.races.pushes import RacePushes
from gateway.sessions.replay import ReplayBuffer
from gateway.sessions.session import Session
from rooms.race_state import RaceConfig, RaceState
from tests.conftest import Clock, until
from tests.race_engines import InboxHandlerFake, two_engines
from typogram import keys
from typogram.adapters.memory_pubsub import MemoryPubSub
from typogram.protocol import Push, push_payload
from typogram.tokens import Claims, TokenType

CHANNEL = keys.channel_race("r1")


class Link:
    """An attached socket that keeps what it was sent."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def send(self, frame: bytes, kind: str) -> None:
        self.frames.append(orjson.loads(frame))

    def terminate(self, code: int, reason: str, *, flush: bool = False) -> None:
        pass

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["t"] == kind]


def session(user: str) -> tuple[Session, Link]:
    claims = Claims(user, TokenType.GUEST, 0, user, "guest", "", 2_000_000_000)
    watcher, link = Session(f"s-{user}", claims, ReplayBuffer(100, 1 << 20)), Link()
    watcher.link = link
    return watcher, link


def published(pubsub: MemoryPubSub) -> int:
    return int(pubsub.statistics()["published"])


@pytest.fixture
async def pubsub() -> AsyncIterator[MemoryPubSub]:
    async with MemoryPubSub() as bus:
        yield bus


async def inbox_of(pubsub: MemoryPubSub, node: str, watchers: Watchers) -> RaceInbox:
    """Node ``node``'s race inbox, handing ``pushes`` messages to its watchers."""
    pushes = RacePushes(pubsub, node_id=node, local=watchers)
    handler = InboxHandlerFake(pushes=pushes.received)
    inbox = RaceInbox(pubsub, node_id=node, timeout_s=1.0, handler=handler)
    await inbox.open()
    return inbox


async def test_the_owner_delivers_locally_and_sends_snapshots_only_to_watching_nodes(
    pubsub: MemoryPubSub,
) -> None:
    here, there = Watchers(pubsub), Watchers(pubsub)
    await inbox_of(pubsub, "b", there)
    pushes = RacePushes(pubsub, node_id="a", local=here)
    pushes.track("r1")
    ada, ada_link = session("ada")
    bob, bob_link = session("bob")
    await here.add(CHANNEL, ada)

    await pushes.send("r1", "race.state", {"race": "r1", "seq": 1})
    assert [f.get("s") for f in ada_link.of("race.state")] == [None]  # a snapshot: no s
    assert published(pubsub) == 0 and pushes.kept == 1  # nobody else watches

    pushes.watched_from("r1", "a")  # the owner itself is no other node
    await pushes.send("r1", "race.state", {"race": "r1", "seq": 2})
    assert published(pubsub) == 0 and pushes.remote("r1") == frozenset()

    await there.add(CHANNEL, bob)  # node b subscribes, then tells the owner (a command)
    pushes.watched_from("r1", "b")
    await pushes.send("r1", "race.state", {"race": "r1", "seq": 3})
    assert published(pubsub) == 1 and pushes.batched == 1  # to b's inbox
    assert [f["d"]["seq"] for f in ada_link.of("race.state")] == [1, 2, 3]  # once each
    assert [f["d"]["seq"] for f in bob_link.of("race.state")] == [3]
    assert [f.get("s") for f in ada_link.frames] == [None, None, None]
    assert here.echoes == 0  # the snapshot went to b's inbox, not the race channel

    # A tick slice: the result (on the race channel) and the snapshots of two races
    # (one message to b), in the order the core emitted them.
    pushes.track("r2")
    pushes.watched_from("r2", "b")
    await there.add(keys.channel_race("r2"), bob)
    before = published(pubsub)
    out = [
        pushes.prepare("r1", "race.result", {"race": "r1", "standings": []}),
        pushes.prepare("r1", "race.state", {"race": "r1", "seq": 4}),
        pushes.prepare("r2", "race.state", {"race": "r2", "seq": 1}),
    ]
    await pushes.publish(o for o in out if o is not None)
    assert published(pubsub) - before == 2 and pushes.batched == 3
    assert [(f["t"], f["d"]["race"]) for f in bob_link.frames[1:]] == [
        ("race.result", "r1"),
        ("race.state", "r1"),
        ("race.state", "r2"),
    ]
    assert [f.get("s") for f in bob_link.frames] == [None, 1, None, None]  # the result only
    assert here.echoes == 1  # the result came back on the channel: dropped, not doubled
    assert [f["t"] for f in ada_link.frames[3:]] == ["race.result", "race.state"]


async def test_malformed_pushes_messages_are_dropped(pubsub: MemoryPubSub) -> None:
    watchers = Watchers(pubsub)
    await inbox_of(pubsub, "b", watchers)
    ada, link = session("ada")
    await watchers.add(CHANNEL, ada)
    inbox = keys.channel_race_node("b")
    await pubsub.publish(inbox, b'{"t":"pushes","p":[["r1","race.state",{"seq":')
    await pubsub.publish(inbox, b'{"t":"pushes","p":[["r1","race.state",5]]}')
    await pubsub.publish(inbox, b'{"t":"pushes","p":"nope"}')
    assert link.frames == []
    good = pushes_message([("r1", "race.state", push_payload("race.state", {"seq": 1}))])
    await pubsub.publish(inbox, good)
    await pubsub.publish(inbox, pushes_message([("r7", "race.state", b'{"t":"x","d":1}')]))
    assert [(f["t"], f["d"]["seq"]) for f in link.frames] == [("race.state", 1)]  # r7: not watched


async def test_rare_pushes_adopted_races_and_nodes_without_watchers_always_publish(
    pubsub: MemoryPubSub,
) -> None:
    here = Watchers(pubsub)
    pushes = RacePushes(pubsub, node_id="a", local=here)
    pushes.track("r1")
    out = pushes.prepare("r1", "race.countdown", {"race": "r1", "start_at": 5})
    assert out == (CHANNEL, push_payload("race.countdown", {"race": "r1", "start_at": 5}))
    assert pushes.prepare("r1", "race.result", {"race": "r1", "standings": []}) is not None
    assert pushes.prepare("r1", "race.state", {"race": "r1"}) is None

    pushes.track("r2", adopted=True)  # others may watch it without this node knowing
    assert pushes.remote("r2") is None
    assert pushes.prepare("r2", "race.state", {"race": "r2"}) is not None
    assert pushes.prepare("r9", "race.state", {"race": "r9"}) is not None  # not tracked

    bare = RacePushes(pubsub, node_id="a")  # no local watchers: everything via pub/sub
    bare.track("r1")
    assert bare.prepare("r1", "race.state", {"race": "r1"}) is not None

    pushes.forget("r1")  # no longer ours: no more local delivery decisions for it
    assert pushes.remote("r1") is None and len(pushes) == 1


async def test_an_owner_drops_what_redis_brings_for_its_races(pubsub: MemoryPubSub) -> None:
    watchers = Watchers(pubsub)
    ada, link = session("ada")
    await watchers.add(CHANNEL, ada)
    assert watchers.subscribed(CHANNEL)
    await pubsub.publish(CHANNEL, push_payload("race.state", {"seq": 1}))
    assert [f["d"]["seq"] for f in link.frames] == [1]  # owned elsewhere: from Redis

    watchers.own(CHANNEL)  # this node adopted the race: it delivers the pushes itself
    await pubsub.publish(CHANNEL, push_payload("race.state", {"seq": 2}))  # its own echo
    watchers.receive(CHANNEL, _push("race.state", {"seq": 2}))  # a deposed owner's batch
    assert watchers.echoes == 2 and len(link.frames) == 1
    watchers.deliver(CHANNEL, _push("race.state", {"seq": 2}))
    assert [f["d"]["seq"] for f in link.frames] == [1, 2]
    assert watchers.statistics()["race_channels_local"] == 1

    watchers.disown(CHANNEL)  # lost it: the new owner's pushes come through Redis again
    await pubsub.publish(CHANNEL, push_payload("race.state", {"seq": 3}))
    assert [f["d"]["seq"] for f in link.frames] == [1, 2, 3]
    assert [f.get("s") for f in link.frames] == [None, None, None]

    await watchers.remove(CHANNEL, ada)
    assert not watchers.subscribed(CHANNEL)


def _push(kind: str, data: dict[str, Any]) -> Push:
    return Push(kind, push_payload(kind, data))


async def test_a_malformed_push_from_redis_is_dropped(pubsub: MemoryPubSub) -> None:
    watchers = Watchers(pubsub)
    ada, link = session("ada")
    await watchers.add(CHANNEL, ada)
    await pubsub.publish(CHANNEL, b'{"t": "race.state", "d": ')
    await pubsub.publish(CHANNEL, b"not json")
    assert link.frames == []
    await pubsub.publish(CHANNEL, push_payload("race.state", {"seq": 1}))
    assert [f["d"]["seq"] for f in link.frames] == [1]


async def test_two_engines_send_snapshots_through_redis_only_once_a_node_forwards() -> None:
    async with two_engines(Clock(), watched=True) as nodes:
        a, b, here, there = nodes.a, nodes.b, nodes.here, nodes.there
        assert here is not None and there is not None
        ada, ada_link = session("ada")
        bob, bob_link = session("bob")
        tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
        try:
            await here.add(CHANNEL, ada)
            state = RaceState("r1", "abc def ghi", 1, "easy", "en", RaceConfig(countdown_ms=0))
            await a.create(state, [])
            await a.apply("r1", Join("ada", "Ada"))
            await until(lambda: ada_link.of("race.state"))
            assert a.statistics()["race_states_kept_local"] >= 1
            assert a.statistics()["race_pushes_published"] == 0

            await there.add(CHANNEL, bob)  # b watches, then forwards bob's join
            replies = await b.apply("r1", Join("bob", "Bob"))
            assert [kind for kind, _ in replies] == ["race.joined"]
            await until(lambda: bob_link.of("race.state"))
            last = bob_link.of("race.state")[-1]["d"]
            assert sorted(p["user"] for p in last["players"]) == ["ada", "bob"]
            assert a.statistics()["race_states_batched"] >= 1  # one message per slice to b
            seqs = [f["d"]["seq"] for f in ada_link.of("race.state")]
            assert seqs == sorted(set(seqs))  # in order, none twice (no echo)
            numbered = [f["s"] for f in ada_link.frames if "s" in f]
            assert numbered == list(range(1, len(numbered) + 1))

            await a.apply("r1", Start("ada"))  # the countdown goes to both
            await until(lambda: bob_link.of("race.countdown"))
            assert len(ada_link.of("race.countdown")) == 1  # its echo from Redis was dropped
            assert here.echoes == 1
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert here.statistics()["race_channels_local"] == 0  # stopping disowned it


class SlowPubSub(MemoryPubSub):
    """Records each ``publish_many`` call; the first waits until ``go`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()
        self.calls: list[list[str]] = []

    async def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> None:
        batch = list(messages)
        self.calls.append([payload.decode() for _, payload in batch])
        if len(self.calls) == 1:
            await self.go.wait()
        await super().publish_many(batch)


async def test_queued_pushes_go_out_in_order_without_the_caller_waiting() -> None:
    async with SlowPubSub() as pubsub:
        pushes = RacePushes(pubsub, node_id="a")  # no local watchers: every push published
        first = pushes.publish_soon([("ch:race:r1", b"1")])
        assert first is not None
        await asyncio.sleep(0)  # the sender is out with the first one, Redis is slow
        for n in (2, 3, 4):  # the ticker's next slices: queued, not waited for
            pushes.publish_soon([("ch:race:r1", str(n).encode())])
        assert pushes.backlog == 4 and not first.done()
        waited = asyncio.ensure_future(pushes.publish([("ch:race:r2", b"5")]))
        await asyncio.sleep(0)
        assert not waited.done()  # an awaited publish waits behind what was queued
        pubsub.go.set()
        await waited
        assert first.done() and pushes.backlog == 0 and pushes.published == 5
        assert pubsub.calls == [["1"], ["2", "3", "4", "5"]]  # in order, queued ones together
        await pushes.aclose()


async def test_a_failed_publish_is_logged_and_the_queue_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Failing(MemoryPubSub):
        async def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> None:
            raise ConnectionError("redis is down")

    async with Failing() as pubsub:
        pushes = RacePushes(pubsub, node_id="a")
        pushes.publish_soon([("ch:race:r1", b"1")])  # nobody waits: logged, not raised
        await pushes.drained()
        assert "not published" in caplog.text and pushes.backlog == 0
        with pytest.raises(ConnectionError):  # one that is awaited raises as before
            await pushes.publish([("ch:race:r1", b"2")])
        await pushes.aclose()
