"""``typogram.adapters.memory_queues.MemoryMatchQueues`` with the clock passed in: markers
expire on it, and a player is never in two places whatever the order of calls. The
rules both adapters keep are in ``tests/contract/test_match_queues.py``."""

from __future__ import annotations

import pytest
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


async def test_markers_expire_on_the_clock_given() -> None:
    clock = Clock()
    async with MemoryMatchQueues(clock) as queue:
        await queue.claim("ada", "r1", TTL_S)
        assert await queue.enqueue(entry("t1", "bob"), TTL_S) is None
        clock.now += TTL_S - 0.001
        assert (await queue.where("ada"), await queue.where("bob")) == ("r:r1", "q:t1")
        clock.now += 0.001  # a crashed node cannot pin a player forever
        assert (await queue.where("ada"), await queue.where("bob")) == (None, None)


async def test_taken_tickets_races_expire_on_the_clock_and_are_swept() -> None:
    """The races of taken tickets are kept for the take's TTL, then forgotten: the store
    holds no more than the tickets taken within one TTL."""
    clock = Clock()
    async with MemoryMatchQueues(clock) as queue:
        for n in range(50):
            group = [entry(f"a{n}", f"ada{n}"), entry(f"b{n}", f"bob{n}")]
            for e in group:
                await queue.enqueue(e, TTL_S)
            assert await queue.take(group[0].queue, group, f"r{n}", TTL_S)
            clock.now += 1.0
        assert await queue.matched("ada49", "a49") == "r49"
        assert await queue.matched("ada25", "a25") == "r25"  # taken 25 s ago
        assert await queue.matched("ada19", "a19") is None  # taken 31 s ago, kept 30 s
        clock.now += TTL_S
        assert await queue.matched("ada49", "a49") is None
        assert len(queue._outcomes) <= 2 * (TTL_S + 1)  # swept as takes go by, not kept
        group = [entry("a-last", "ada"), entry("b-last", "bob")]
        for e in group:
            await queue.enqueue(e, TTL_S)
        assert await queue.take(group[0].queue, group, "r-last", TTL_S)
        assert len(queue._outcomes) == 2


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


async def test_a_flush_forgets_tickets_and_markers_and_refuses_once_closed() -> None:
    async with MemoryMatchQueues(Clock()) as queue:
        await queue.enqueue(entry("t1", "ada"), TTL_S)
        await queue.claim("bob", "r1", TTL_S)
        taken = [entry("t2", "cy"), entry("t3", "dan")]
        for e in taken:
            await queue.enqueue(e, TTL_S)
        assert await queue.take(taken[0].queue, taken, "r2", TTL_S)
        queue.flush()
        assert await queue.matched("cy", "t2") is None
        assert (await queue.queues(), await queue.where("ada"), await queue.where("bob")) == (
            [],
            None,
            None,
        )
        assert queue.statistics()["enqueued"] == 3  # counts are this process's, not stored
    with pytest.raises(RuntimeError, match="closed"):
        queue.flush()
