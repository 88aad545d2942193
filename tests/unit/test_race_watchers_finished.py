"""A finished race's channel is dropped on each node once its result has gone out."""

from __future__ import annotations

from gateway.races.members import FINISHED_LINGER_S, Watchers
from tests.unit.test_race_pushes import session
from typogram import keys
from typogram.adapters.memory_pubsub import MemoryPubSub
from typogram.protocol import Push, push_payload

DONE, RUNNING = keys.channel_race("done"), keys.channel_race("running")


def push(kind: str, race: str) -> Push:
    return Push(kind, push_payload(kind, {"race": race}))


async def test_channels_of_finished_races_go_after_the_linger() -> None:
    now = [100.0]
    async with MemoryPubSub() as pubsub:
        watchers = Watchers(pubsub, clock=lambda: now[0])
        (a, link_a), (b, _) = session("a"), session("b")
        for channel in (DONE, RUNNING):
            await watchers.add(channel, a)
        await watchers.add(DONE, b)
        watchers.receive(DONE, push("race.state", "done"))
        watchers.receive(DONE, push("race.result", "done"))  # from the owner elsewhere
        watchers.deliver(RUNNING, push("race.state", "running"))  # owned here, still going
        assert [f["t"] for f in link_a.frames] == ["race.state", "race.result", "race.state"]

        now[0] += FINISHED_LINGER_S - 0.1
        assert await watchers.drop_finished() == []
        assert watchers.watching(DONE, a) and watchers.subscribed(DONE)

        now[0] += 0.2
        assert await watchers.drop_finished() == [DONE]
        assert not watchers.watching(DONE, a) and not watchers.watching(DONE, b)
        assert not watchers.subscribed(DONE)
        assert watchers.watching(RUNNING, a) and watchers.subscribed(RUNNING)
        assert await watchers.drop_finished() == []  # once


async def test_a_result_owned_here_counts_too_and_a_race_without_watchers_is_ignored() -> None:
    now = [0.0]
    async with MemoryPubSub() as pubsub:
        watchers = Watchers(pubsub, clock=lambda: now[0])
        a, _ = session("a")
        await watchers.add(DONE, a)
        watchers.deliver(DONE, push("race.result", "done"))
        watchers.deliver(RUNNING, push("race.result", "running"))  # nobody here watches it
        now[0] += FINISHED_LINGER_S
        assert await watchers.drop_finished() == [DONE]
        assert len(watchers) == 0
