"""``RaceEngine.progress``: the hot path of ``race.progress``, on the owner and forwarded.

Two engines on one in-memory cache and pub/sub: node "a" owns a running race;
a report applied on "a" changes the state and is written behind; a refused one
raises at once; a report sent from "b" goes to "a" without waiting (through
the owner "b" remembers, once it has asked) and a refusal comes back to
``on_error``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.races.engine import RaceEngine
from gateway.races.messages import Join, Start
from rooms.race_state import RaceConfig, RaceState
from tests.conftest import Clock
from tests.race_engines import two_engines
from typogram.codes import ErrorCode
from typogram.errors import AppError

TEXT = "abc def ghi jkl"


@pytest.fixture
async def running() -> AsyncIterator[tuple[Clock, RaceEngine, RaceEngine]]:
    clock = Clock()
    async with two_engines(clock) as nodes:
        a, b = nodes.a, nodes.b
        state = RaceState("r1", TEXT, 1, "easy", "en", RaceConfig(countdown_ms=1_000))
        await a.create(state, [])
        for user in ("ada", "bob"):
            await a.apply("r1", Join(user, user))
        await a.apply("r1", Start("ada"))
        clock.now += 2  # past start_at: the next event finds it running
        tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
        try:
            yield clock, a, b
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def position(engine: RaceEngine, user: str) -> int:
    state = await engine.load("r1")
    assert state is not None
    return state.racers[user].pos


def never(exc: AppError) -> None:
    raise AssertionError(f"unexpected refusal: {exc}")


async def test_on_the_owner_a_report_moves_the_racer_and_a_bad_one_raises(
    running: tuple[Clock, RaceEngine, RaceEngine],
) -> None:
    _, a, _ = running
    await a.progress("r1", "ada", 4, 0, never)
    assert await position(a, "ada") == 4
    assert a.statistics()["races_dirty"] == 1  # written behind, not at once

    with pytest.raises(AppError) as refused:
        await a.progress("r1", "ada", 2, 0, never)  # backwards
    assert refused.value.code is ErrorCode.BAD_REQUEST
    with pytest.raises(AppError) as stranger:
        await a.progress("r1", "cy", 2, 0, never)
    assert stranger.value.code is ErrorCode.FORBIDDEN
    assert await position(a, "ada") == 4  # unchanged by the refusals

    with pytest.raises(AppError) as missing:
        await a.progress("r9", "ada", 2, 0, never)
    assert missing.value.code is ErrorCode.NOT_FOUND


async def test_a_forwarded_report_goes_without_waiting_and_refusals_come_back(
    running: tuple[Clock, RaceEngine, RaceEngine],
) -> None:
    _, a, b = running
    errors: list[AppError] = []
    answered = asyncio.Event()

    def refused(exc: AppError) -> None:
        errors.append(exc)
        answered.set()

    await b.progress("r1", "bob", 6, 1, refused)  # asks Redis for the owner once
    await b.progress("r1", "bob", 8, 1, refused)  # the remembered owner: no lookup
    await b.progress("r1", "bob", 3, 1, refused)  # backwards: refused over there
    await asyncio.wait_for(answered.wait(), 5)
    assert await position(a, "bob") == 8
    assert [e.code for e in errors] == [ErrorCode.BAD_REQUEST]
    assert not b.owns("r1")
