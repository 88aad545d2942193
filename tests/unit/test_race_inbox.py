"""The race inbox between two nodes on one in-memory pub/sub: quiet commands batched per
owner, a forwarded command never overtaking them, refusals reported, owner notices."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from gateway.races import inbox as race_inbox
from gateway.races import messages
from gateway.races.inbox import RaceInbox, Replies
from gateway.races.messages import Answer, Finish, Progress, RaceCommand, Settled
from tests.conftest import until
from tests.race_engines import InboxHandlerFake
from typogram import keys
from typogram.adapters.memory_pubsub import MemoryPubSub
from typogram.codes import ErrorCode
from typogram.errors import AppError


class Owner:
    """What node "a" serves: records commands; refuses pos < 0; owns only "r1"."""

    def __init__(self) -> None:
        self.served: list[tuple[str, RaceCommand]] = []

    async def serve(self, race_id: str, command: RaceCommand) -> Replies | None:
        if race_id != "r1":
            return None
        self.served.append((race_id, command))
        if isinstance(command, Progress) and command.pos < 0:
            raise AppError(ErrorCode.BAD_REQUEST, "progress never goes backwards")
        return [("race.finished", {"race": race_id})] if isinstance(command, Finish) else []

    def positions(self) -> list[int]:
        return [c.pos for _, c in self.served if isinstance(c, Progress)]


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
    sent: list[bytes] = []
    await pubsub.subscribe(keys.channel_race_node("a"), lambda _c, m: sent.append(m))
    answers: list[Answer] = []
    for pos in (2, 4, -1, 6):
        b.send_quiet("a", "r1", Progress("ada", pos, 0), answers.append)
    b.send_quiet("a", "r9", Progress("ada", 2, 0), answers.append)
    assert owner.served == []  # nothing sent yet: the batch waits for more
    await asyncio.sleep(race_inbox.BATCH_WINDOW_S * 4)
    assert len(sent) == 1 and b.batches_sent == 1
    assert owner.positions() == [2, 4, -1, 6]  # in order
    assert len(answers) == 2
    assert answers[0].error == (ErrorCode.BAD_REQUEST.value, "progress never goes backwards")
    assert answers[1].moved  # r9 is not owned there
    assert b.quiet_pending == 0  # the owner settled the batch: no callback held until timeout


async def test_callbacks_of_an_unsettled_batch_wait_until_they_time_out(
    nodes: tuple[MemoryPubSub, Owner, RaceInbox, RaceInbox],
) -> None:
    pubsub, _, _, b = nodes
    b.send_quiet("c", "r1", Progress("ada", 2, 0), lambda a: None)
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
    b.send_quiet("a", "r1", Progress("ada", 118, 0), lambda answer: None)
    answer = await b.forward("a", "r1", Finish("ada", []))
    assert answer.replies == [("race.finished", {"race": "r1"})]
    assert [type(c) for _, c in owner.served] == [Progress, Finish]


async def test_bad_commands_on_the_wire_are_answered_bad_request_and_the_rest_served(
    nodes: tuple[MemoryPubSub, Owner, RaceInbox, RaceInbox],
) -> None:
    pubsub, owner, _, _ = nodes
    heard: list[bytes] = []
    await pubsub.subscribe(keys.channel_race_node("n"), lambda _c, m: heard.append(m))
    good = {"k": "progress", "user": "ada", "pos": 3, "errors": 0}
    inbox = keys.channel_race_node("a")
    apply = {"t": "apply", "req": "x1", "from": "n", "race": "r1", "cmd": {"k": "fly"}}
    await pubsub.publish(inbox, orjson.dumps(apply))
    batch = {
        "t": "batch",
        "from": "n",
        "cmds": [["q1", "r1", {**good, "pos": None}], ["q2", "r1", good]],
    }
    await pubsub.publish(inbox, orjson.dumps(batch))
    await until(lambda: len(heard) == 3)
    answers = [messages.decode(m) for m in heard]
    bad = ErrorCode.BAD_REQUEST.value
    assert [(a.req, a.error and a.error[0]) for a in answers if isinstance(a, Answer)] == [
        ("x1", bad),
        ("q1", bad),
    ]
    assert answers[2] == Settled(["q2"])
    assert owner.served == [("r1", Progress("ada", 3, 0))]


async def test_a_full_outbox_refuses_at_once(
    nodes: tuple[MemoryPubSub, Owner, RaceInbox, RaceInbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, owner, _, b = nodes
    monkeypatch.setattr(race_inbox, "OUTBOX_SIZE", 2)
    answers: list[Answer] = []
    for pos in (2, 4, 6):
        b.send_quiet("a", "r1", Progress("u", pos, 0), answers.append)
    assert [a.error and a.error[0] for a in answers] == [ErrorCode.UNAVAILABLE.value]
    await asyncio.sleep(race_inbox.BATCH_WINDOW_S * 4)
    assert owner.positions() == [2, 4]


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
