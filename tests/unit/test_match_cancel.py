"""``Matchmaker.cancel``: a ticket matched before its cancel arrived answers with its race.

The client sent ``match.cancel`` while the matcher took its ticket: the queue no
longer holds it, and ``not_found`` alone would leave a client that has not seen
``match.found`` yet with a seat it does not know about (forfeited after the no-show
time). The answer is ``conflict`` naming the race; an unknown ticket, or another
player's, answers ``not_found`` and tells nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gateway.sessions.session import Session
from tests.unit.test_match_redelivery import Clock, matching, queues, ticket  # noqa: F401
from typogram.adapters.memory_queues import MemoryMatchQueues
from typogram.codes import ErrorCode
from typogram.errors import AppError


@dataclass
class User:
    id: str


@dataclass
class Player:
    """All ``Matchmaker.cancel`` reads of a session: whose it is."""

    user: User


def of(user: str) -> Session:
    return Player(User(user))  # type: ignore[return-value]


async def test_a_ticket_matched_before_its_cancel_answers_conflict_with_the_race(
    queues: MemoryMatchQueues,  # noqa: F811
) -> None:
    clock = Clock()
    matcher, engine = matching(queues, clock)
    for user in ("ada", "bob"):
        assert await queues.enqueue(ticket(user, "a", int(clock() * 1000)), 60) is None
    assert await matcher.round() == 1
    (race_id,) = engine.states

    with pytest.raises(AppError) as matched:
        await matcher.cancel(of("ada"), "t-ada")
    assert matched.value.code is ErrorCode.CONFLICT
    assert matched.value.details == {"race": race_id}
    assert race_id in matched.value.message
    assert await queues.where("ada") == "r:" + race_id  # the seat is still hers

    for user, ticket_id in (("bob", "t-ada"), ("cy", "t-ada"), ("ada", "t-none")):
        with pytest.raises(AppError) as unknown:  # another's ticket tells nothing
            await matcher.cancel(of(user), ticket_id)
        assert unknown.value.code is ErrorCode.NOT_FOUND
        assert unknown.value.details is None
        assert race_id not in unknown.value.message


async def test_a_queued_ticket_is_cancelled_and_then_not_found(
    queues: MemoryMatchQueues,  # noqa: F811
) -> None:
    matcher, _ = matching(queues, Clock())
    assert await queues.enqueue(ticket("ada", "a", 1_000_000), 60) is None
    await matcher.cancel(of("ada"), "t-ada")
    assert await queues.where("ada") is None
    with pytest.raises(AppError) as again:
        await matcher.cancel(of("ada"), "t-ada")
    assert again.value.code is ErrorCode.NOT_FOUND
