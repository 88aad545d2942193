"""The race inbox between two nodes on one in-memory pub/sub: quiet commands batched per
owner, a forwarded command never overtaking them, refusals reported, owner notices."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.races import inbox as race_inbox
from gateway.races.inbox import Command, RaceInbox, Replies
from gateway.races.messages import Answer
from tests.race_engines import InboxHandlerFake
from typogram import keys
from typogram.adapters.memory_pubsub import MemoryPubSub
from typogram.codes import ErrorCode
from typogram.errors import AppError


class Owner:
    """What node "a" serves: records commands; refuses pos < 0; owns only "r1"."""

    def __init__(self) -> None:
        self.served: list[tuple[str, Command]] = []

    async def serve(self, race_id: str, command: Command) -> Replies | None:
        if race_id != "r1":
            return None
        self.served.append((race_id, dict(command)))
        if command.get("pos", 0) < 0:
            raise AppError(ErrorCode.BAD_REQUEST, "progress never goes backwards")
        return [("race.finished", {"race": race_id})] if command["k"] == "finish" else []


@pytest.fixture
async def nodes() -> AsyncIterator[tuple[MemoryPubSub, Owner, RaceInbox, RaceInbox]]:
    async with MemoryPubSub() as pubsub:
        owner = Owner()

        a = RaceInbox(
            pubsub, node_id="a", timeout_s=1.0, handler=InboxHandlerFake(serve=owner.serve)
        )
        b = RaceInbox(pubsub, node_id="b", timeout_s=1.0, handler=InboxHandlerFake())
        for inbox in (a, b):
            await inbox.open()
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(a.run()), group.create_task(b.run())]
            yield pubsub, owner, a, b
            for task in tasks:
                task.cancel()
        await a.close()
        await b.close()


async def test_quiet_commands_travel_in_one_batch_and_only_refusals_come_back(
    nodes: tuple[MemoryPubSub, Owner, RaceInbox, RaceInbox],
) -> None:
    pubsub, owner, _, b = nodes
    messages: list[bytes] = []
    await pubsub.subscribe(keys.channel_race_node("a"), lambda _c, m: messages.append(m))
    answers: list[Answer] = []
    for pos in (2, 4, -1, 6):
        command = {"k": "progress", "user": "ada", "pos": pos, "errors": 0}
        b.send_quiet("a", "r1", command, answers.append)
    b.send_quiet("a", "r9", {"k": "progress", "user": "ada", "pos": 2, "errors": 0}, answers.append)
    assert owner.served == []  # nothing sent yet: the batch waits for more
    await asyncio.sleep(race_inbox.BATCH_WINDOW_S * 4)
    assert len(messages) == 1 and b.batches_sent == 1
    assert [c["pos"] for _, c in owner.served] == [2, 4, -1, 6]  # in order
    assert len(answers) == 2
    assert answers[0].error == (ErrorCode.BAD_REQUEST.value, "progress never goes backwards")
    assert answers[1].moved  # r9 is not owned there
    assert b.quiet_pending == 0  # the owner settled the batch: no callback held until timeout


async def test_callbacks_of_an_unsettled_batch_wait_until_they_time_out(
    nodes: tuple[MemoryPubSub, Owner, RaceInbox, RaceInbox],
) -> None:
    pubsub, _, _, b = nodes
    b.send_quiet("c", "r1", {"k": "progress", "user": "ada", "pos": 2, "errors": 0}, lambda a: None)
    await asyncio.sleep(race_inbox.BATCH_WINDOW_S * 4)
    assert b.quiet_pending == 1  # node "c" (an older version, or gone) never settles
    inbox = keys.channel_race_node("b")
    for bad in (b'{"t":"settled"}', b'{"t":"settled","reqs":"q1"}', b'{"t":"settled","reqs":[1]}'):
        await pubsub.publish(inbox, bad)  # malformed: ignored
    assert b.quiet_pending == 1


async def test_a_forwarded_command_goes_after_the_quiet_ones_it_follows(
    nodes: tuple[MemoryPubSub, Owner, RaceInbox, RaceInbox],
) -> None:
    _, owner, _, b = nodes
    progress = {"k": "progress", "user": "ada", "pos": 118, "errors": 0}
    b.send_quiet("a", "r1", progress, lambda answer: None)
    answer = await b.forward("a", "r1", {"k": "finish", "user": "ada", "keys": []})
    assert answer.replies == [("race.finished", {"race": "r1"})]
    assert [c["k"] for _, c in owner.served] == ["progress", "finish"]


async def test_a_full_outbox_refuses_at_once(
    nodes: tuple[MemoryPubSub, Owner, RaceInbox, RaceInbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, owner, _, b = nodes
    monkeypatch.setattr(race_inbox, "OUTBOX_SIZE", 2)
    answers: list[Answer] = []
    for pos in (2, 4, 6):
        b.send_quiet(
            "a", "r1", {"k": "progress", "user": "u", "pos": pos, "errors": 0}, answers.append
        )
    assert [a.error and a.error[0] for a in answers] == [ErrorCode.UNAVAILABLE.value]
    await asyncio.sleep(race_inbox.BATCH_WINDOW_S * 4)
    assert [c["pos"] for _, c in owner.served] == [2, 4]


async def test_owner_notices_reach_the_other_nodes_only() -> None:
    async with MemoryPubSub() as pubsub:
        heard = {"a": InboxHandlerFake(), "b": InboxHandlerFake()}
        a = RaceInbox(pubsub, node_id="a", timeout_s=1.0, handler=heard["a"])
        b = RaceInbox(pubsub, node_id="b", timeout_s=1.0, handler=heard["b"])
        for inbox in (a, b):
            await inbox.open()
        await a.announce_owner("r7")
        assert (heard["a"].owners, heard["b"].owners) == ([], [("r7", "a")])
        for inbox in (a, b):
            await inbox.close()
