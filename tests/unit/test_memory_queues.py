"""``typogram.adapters.memory_queues.MemoryMatchQueues``: the embedded match queues' rules
(a player in one place at a time, groups taken all or none, markers that expire), with
the clock passed in. The rules both adapters keep are in
``tests/contract/test_match_queues.py``."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import Clock
from typogram.adapters.memory_queues import MemoryMatchQueues
from typogram.match_queues import MatchTicket, QueuedTicket

TTL_S = 30.0


def entry(ticket: str, user: str, lang: str = "en") -> QueuedTicket:
    return QueuedTicket(
        MatchTicket(ticket, user, 1500.0, "medium", lang, 0, False), name=user, node="n1"
    )


async def test_a_player_is_queued_once_and_cancel_frees_them() -> None:
    async with MemoryMatchQueues(Clock()) as queue:
        assert await queue.enqueue(entry("t1", "ada"), TTL_S) is None
        assert await queue.enqueue(entry("t2", "ada", "de"), TTL_S) == "q:t1"
        assert await queue.cancel("bob", "t1") is False  # not bob's ticket
        assert await queue.cancel("ada", "t1") is True
        assert await queue.where("ada") is None and await queue.queues() == []


async def test_a_group_is_taken_all_or_none() -> None:
    async with MemoryMatchQueues(Clock()) as queue:
        ada, bob = entry("t1", "ada"), entry("t2", "bob")
        for e in (ada, bob):
            await queue.enqueue(e, TTL_S)
        await queue.cancel("bob", "t2")
        assert await queue.take(ada.queue, [ada, bob], "r1", TTL_S) is False
        assert await queue.where("ada") == "q:t1"  # untouched
        assert [e.ticket.ticket_id for e in await queue.tickets(ada.queue)] == ["t1"]
        await queue.enqueue(bob, TTL_S)
        assert await queue.take(ada.queue, [ada, bob], "r1", TTL_S) is True
        assert (await queue.where("ada"), await queue.where("bob")) == ("r:r1", "r:r1")
        assert await queue.take(ada.queue, [ada, bob], "r2", TTL_S) is False  # taken already


async def test_claim_and_release_only_for_that_race_and_markers_expire() -> None:
    clock = Clock()
    async with MemoryMatchQueues(clock) as queue:
        assert await queue.claim("ada", "r1", TTL_S) is None
        assert await queue.claim("ada", "r1", TTL_S) is None  # the same race: fine
        assert await queue.claim("ada", "r2", TTL_S) == "r:r1"
        assert await queue.enqueue(entry("t1", "ada"), TTL_S) == "r:r1"
        await queue.release("ada", "r2")  # not that race: still in r1
        assert await queue.where("ada") == "r:r1"
        await queue.release("ada", "r1")
        assert await queue.where("ada") is None
        await queue.claim("bob", "r3", TTL_S)
        clock.now += TTL_S  # a crashed node cannot pin a player forever
        assert await queue.where("bob") is None


users = st.sampled_from(["ada", "bob", "cy"])
operations = st.lists(
    st.tuples(st.sampled_from(["enqueue", "cancel", "take", "claim", "release"]), users, users),
    max_size=30,
)


@given(steps=operations)
async def test_a_player_is_never_in_two_places(steps: list[tuple[str, str, str]]) -> None:
    async with MemoryMatchQueues(Clock()) as queue:
        for n, (op, user, other) in enumerate(steps):
            mine = entry(f"t{n}", user)
            if op == "enqueue":
                await queue.enqueue(mine, TTL_S)
            elif op == "cancel":
                for waiting in await queue.tickets(mine.queue):
                    await queue.cancel(waiting.ticket.user_id, waiting.ticket.ticket_id)
            elif op == "take":
                group = [
                    e for e in await queue.tickets(mine.queue) if e.ticket.user_id in {user, other}
                ]
                if group:
                    await queue.take(mine.queue, group, f"r{n}", TTL_S)
            elif op == "claim":
                await queue.claim(user, f"r{n % 3}", TTL_S)
            else:
                await queue.release(user, f"r{n % 3}")
            queued = [e for name in await queue.queues() for e in await queue.tickets(name)]
            players = [e.ticket.user_id for e in queued]
            assert len(players) == len(set(players))
            for e in queued:
                assert await queue.where(e.ticket.user_id) == "q:" + e.ticket.ticket_id
