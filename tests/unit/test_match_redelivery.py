"""``Matchmaker.redeliver``: a ``matched`` message is sent again while its seat is awaited.

Pub/sub keeps nothing: a ``matched`` published to a node that has not
resubscribed yet (after a Redis restart) is lost, and that player never gets
``match.found``. The matching node sends it again each round, only for seats
the race still awaits (``rooms.race`` rule 5a), until the no-show time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import msgspec
import pytest

from gateway.races.engine import RaceEngine
from gateway.races.matcher import Matchmaker
from gateway.races.messages import Matched
from rooms import race
from rooms.race_state import RaceState
from typogram.adapters.memory import MemoryCache
from typogram.adapters.memory_queues import MemoryMatchQueues
from typogram.match_queues import MatchTicket, QueuedTicket
from typogram.settings import load


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class EngineFake:
    """What the matchmaker asks of the race engine: create, load, send to a node."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.states: dict[str, RaceState] = {}
        self.sent: list[tuple[str, Matched]] = []

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def create(self, state: RaceState, events: list[race.Event]) -> tuple[RaceState, Any]:
        for event in events:
            state, _ = race.handle(state, event, self.now_ms())
        self.states[state.race_id] = state
        return state, []

    def apply(self, race_id: str, event: race.Event) -> None:
        self.states[race_id], _ = race.handle(self.states[race_id], event, self.now_ms())

    async def load(self, race_id: str) -> RaceState | None:
        return self.states.get(race_id)

    def watched_from(self, race_id: str, node: str) -> None:
        pass

    async def send_to_node(self, node: str, message: Matched) -> None:
        self.sent.append((node, message))


def matching(
    queues: MemoryMatchQueues, clock: Clock, **settings: Any
) -> tuple[Matchmaker, EngineFake]:
    """A matchmaker on node ``a`` for two-seat races, its engine a fake."""
    engine = EngineFake(clock)
    config = load(env={}, environment="test", race_max_players=2, race_words=5, **settings)
    matcher = Matchmaker(
        config, node_id="a", queue=queues, cache=MemoryCache(), clock=clock,
        engine=cast(RaceEngine, engine),
    )  # fmt: skip
    return matcher, engine


@pytest.fixture
async def queues() -> AsyncIterator[MemoryMatchQueues]:
    async with MemoryMatchQueues() as entered:
        yield entered


def ticket(user: str, node: str, at_ms: int) -> QueuedTicket:
    return QueuedTicket(MatchTicket(f"t-{user}", user, 1500.0, "easy", "en", at_ms), user, node)


async def test_a_lost_match_notice_is_sent_again_until_the_seat_is_taken_up(
    queues: MemoryMatchQueues,
) -> None:
    clock = Clock()
    matcher, engine = matching(queues, clock, race_countdown_ms=1_000, race_no_show_ms=5_000)
    for user, node in (("ada", "a"), ("bob", "b")):
        assert await queues.enqueue(ticket(user, node, int(clock() * 1000)), 60) is None
    assert await matcher.round() == 1
    assert [(node, m.user) for node, m in engine.sent] == [("a", "ada"), ("b", "bob")]
    (race_id,) = engine.states
    first = {m.user: m for _, m in engine.sent}

    engine.sent.clear()
    clock.now += 1.0  # neither node has confirmed the seat yet: both sent again, unchanged
    assert await matcher.redeliver() == 2
    assert {m.user: m for _, m in engine.sent} == {
        user: msgspec.structs.replace(m, again=True) for user, m in first.items()
    }

    engine.sent.clear()
    engine.apply(race_id, race.Reconnect("ada"))  # ada's node delivered match.found
    clock.now += 1.0
    assert await matcher.redeliver() == 1
    assert [(node, m.user) for node, m in engine.sent] == [("b", "bob")]

    engine.sent.clear()
    clock.now += 5.0  # past start_at + the no-show time: bob's seat is the race's to forfeit
    assert await matcher.redeliver() == 0 and engine.sent == []
    assert await matcher.redeliver() == 0  # forgotten


async def test_nothing_is_sent_again_once_every_seat_is_taken_or_the_race_is_gone(
    queues: MemoryMatchQueues,
) -> None:
    clock = Clock()
    matcher, engine = matching(queues, clock)
    for round_ in range(2):
        for user in ("ada", "bob"):
            entry = ticket(f"{user}{round_}", "a", int(clock() * 1000))
            assert await queues.enqueue(entry, 60) is None
        assert await matcher.round() == 1
    first, second = engine.states
    for user in ("ada0", "bob0"):  # both nodes delivered match.found
        engine.apply(first, race.Reconnect(user))
    del engine.states[second]  # gone (finished and expired)
    engine.sent.clear()
    assert await matcher.redeliver() == 0 and engine.sent == []
