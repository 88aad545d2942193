"""Result submission with the event log as the durable record (``typogram.results``) and
the batched ``results`` worker (``workers.results``), on both backends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import func, select

from rest.app import create_app
from tests.integration.test_pipeline import accepted, eventually
from tests.integration.test_rest_results import new_test, register, submit, typed_by_hand
from typogram import boards, keys, results, topics
from typogram.anticheat import Limits, judge
from typogram.db.schema import applied_results, personal_bests, test_results, user_stats
from typogram.errors import AppError
from typogram.platform import Platform
from typogram.ports import Event, EventLog
from typogram.result_record import ResultRecord, Submission
from typogram.results import Results
from typogram.texts import TextSpec
from typogram.typing import replay, score
from workers import results as results_worker
from workers.runtime import Group, GroupRunner

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(platform))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def results_group(**changes: Any) -> Group:
    """The ``results`` group under a name of its own: a fresh consumer group per test."""
    return replace(results_worker.GROUP, name=f"results-{uuid.uuid4().hex[:8]}", **changes)


async def running(platform: Platform, group: Group) -> asyncio.Task[None]:
    task = asyncio.create_task(GroupRunner(platform, group).run())
    await asyncio.sleep(0.1)  # the in-process log registers a group on its first consume
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def count(platform: Platform, table: Any, *where: Any) -> int:
    async with platform.db.read(primary=True) as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()
        )


async def user_id_of(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    return str((await client.get("/api/v1/users/me", headers=auth)).json()["id"])


async def typed(
    client: httpx.AsyncClient, auth: dict[str, str], *, pace: int, seed: int
) -> dict[str, Any]:
    test = await new_test(client, auth)
    response = await submit(
        client, auth, test["test_id"], typed_by_hand(test["text"], pace_ms=pace, seed=seed)
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_your_results_are_listed_right_after_the_201(
    client: httpx.AsyncClient, platform: Platform, backend: str
) -> None:
    auth = await register(client)
    user = await user_id_of(client, auth)
    ids = [(await typed(client, auth, pace=150, seed=seed))["result"]["id"] for seed in range(3)]
    stored = await count(platform, test_results, test_results.c.user_id == user)
    # Kafka is the durable record: no SQL write on the request path; the in-process
    # log is not durable, so there the row is written before the 201.
    assert stored == (0 if backend == "distributed" else 3)

    async def listing() -> tuple[list[str], list[str], list[str]]:
        first = (await client.get("/api/v1/results/me?limit=2", headers=auth)).json()
        cursor = first["next_cursor"]
        second = (
            await client.get(f"/api/v1/results/me?limit=2&cursor={cursor}", headers=auth)
        ).json()
        assert second["next_cursor"] is None
        everything = (await client.get("/api/v1/results/me?limit=50", headers=auth)).json()
        return (
            [r["id"] for r in first["results"]],
            [r["id"] for r in second["results"]],
            [r["id"] for r in everything["results"]],
        )

    expected = (ids[:0:-1], [ids[0]], ids[::-1])
    assert await listing() == expected
    worker = await running(platform, results_group())
    try:
        if backend == "embedded":  # published before the group existed: hand them over
            for result_id in ids:
                await platform.events.publish(
                    topics.TEST_RESULTS, await _event_of(platform, user, result_id)
                )
        await eventually(lambda: _at_least(platform, applied_results, user, 3))
    finally:
        await stop(worker)
    assert await count(platform, test_results, test_results.c.user_id == user) == 3
    assert await listing() == expected
    # Once the worker wrote them, SQL alone lists them (the accepted list expired).
    await platform.cache.delete(keys.user_accepted_results(user))
    assert await listing() == expected


async def _event_of(platform: Platform, user: str, result_id: str) -> Event:
    async with platform.db.read(primary=True) as conn:
        row = (
            (await conn.execute(select(test_results).where(test_results.c.id == result_id)))
            .mappings()
            .one()
        )
    event = accepted(user, result_id, wpm=float(row["wpm"]))
    event.data["created_at"] = int(row["created_at"])
    event.data["test_id"] = row["test_id"]
    return event


async def _at_least(platform: Platform, table: Any, user: str, n: int) -> bool | None:
    return True if await count(platform, table, table.c.user_id == user) >= n else None


@pytest.mark.parametrize("backend", ["distributed"])
async def test_a_worker_killed_mid_batch_applies_every_result_exactly_once(
    platform: Platform,
) -> None:
    users = [uuid.uuid4().hex for _ in range(3)]
    events = [accepted(users[i % 3], uuid.uuid4().hex, wpm=60.0 + i) for i in range(12)]
    for i, event in enumerate(events):
        event.data["created_at"] += i  # one month partition, distinct rows
    committed = asyncio.Event()

    async def commit_then_die(platform: Platform, topic: str, batch: Sequence[Event]) -> None:
        # The session's topic also holds earlier tests' results: die in a batch of ours.
        await results.apply_results(platform, [ResultRecord.of_event(e.data) for e in batch])
        if any(e.data["user_id"] in users for e in batch):
            committed.set()
            await asyncio.Event().wait()  # killed here: committed; follow-ups, offsets not

    name = f"results-{uuid.uuid4().hex[:8]}"
    doomed = results_group(handle_batch=commit_then_die)
    doomed = replace(doomed, name=name)
    for event in events:
        await platform.events.publish(topics.TEST_RESULTS, event)
    first = await running(platform, doomed)
    await asyncio.wait_for(committed.wait(), 30)
    await stop(first)
    applied_before = sum(
        [await count(platform, applied_results, applied_results.c.user_id == u) for u in users]
    )
    assert 1 <= applied_before <= 12
    second = await running(platform, replace(results_worker.GROUP, name=name))
    try:
        for user in users:
            await eventually(lambda u=user: _at_least(platform, applied_results, u, 4), 60)
        await asyncio.sleep(0.5)  # let any wrongly repeated application land
    finally:
        await stop(second)
    for user in users:
        assert await count(platform, test_results, test_results.c.user_id == user) == 4
        assert await count(platform, applied_results, applied_results.c.user_id == user) == 4
        async with platform.db.read(primary=True) as conn:
            stats = (
                (await conn.execute(select(user_stats).where(user_stats.c.user_id == user)))
                .mappings()
                .one()
            )
            best = (
                (await conn.execute(select(personal_bests).where(personal_bests.c.user_id == user)))
                .mappings()
                .one()
            )
        mine = [e.data for e in events if e.data["user_id"] == user]
        assert stats["tests"] == 4 and stats["wpm_sum"] == sum(d["wpm"] for d in mine)
        assert best["wpm"] == max(d["wpm"] for d in mine)


async def test_a_failed_batch_keeps_nothing_and_its_replay_applies_once(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = uuid.uuid4().hex
    events = [accepted(user, uuid.uuid4().hex, wpm=70.0 + i).data for i in range(3)]
    for i, data in enumerate(events):
        data["created_at"] += i
    batch = [ResultRecord.of_event(data) for data in events]
    real = results._add_stats

    async def broken(*args: Any) -> None:
        await real(*args)
        raise ConnectionError("the database went away mid-transaction")

    monkeypatch.setattr(results, "_add_stats", broken)
    with pytest.raises(ConnectionError):
        await results.apply_results(platform, batch)
    for table in (applied_results, test_results, personal_bests, user_stats):
        assert await count(platform, table, table.c.user_id == user) == 0
    monkeypatch.setattr(results, "_add_stats", real)
    assert await results.apply_results(platform, batch) == 3
    assert await results.apply_results(platform, batch[1:]) == 0  # a replay
    assert await count(platform, test_results, test_results.c.user_id == user) == 3
    async with platform.db.read(primary=True) as conn:
        stats = (
            (await conn.execute(select(user_stats).where(user_stats.c.user_id == user)))
            .mappings()
            .one()
        )
    assert stats["tests"] == 3 and stats["best_wpm"] == 72.0


async def test_personal_best_is_seeded_from_sql_when_the_cache_lost_it(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    worker = await running(platform, results_group())
    try:
        auth = await register(client)
        user = await user_id_of(client, auth)
        fast = await typed(client, auth, pace=110, seed=1)
        assert fast["personal_best"] is True
        await eventually(lambda: _at_least(platform, personal_bests, user, 1))
    finally:
        await stop(worker)
    category = fast["result"]["category"]
    await platform.cache.delete(keys.user_bests(user))  # a flushed or new cache
    slower = await typed(client, auth, pace=170, seed=2)
    assert slower["personal_best"] is False
    assert await platform.cache.zscore(keys.user_bests(user), category) == fast["result"]["wpm"]
    faster = await typed(client, auth, pace=90, seed=3)
    assert faster["personal_best"] is True, (
        faster["result"]["wpm"],
        faster["result"]["flag_reason"],
        fast["result"]["wpm"],
    )


class FailingLog:
    """An event log whose broker refuses every write."""

    async def publish(self, topic: str, event: Event) -> None:
        raise ConnectionError("broker down")


def submission(user: str, test_id: str) -> Submission:
    text = "the quick brown fox jumps over the lazy dog again"
    run = replay(text, [tuple(k) for k in typed_by_hand(text)])
    result = score(run)
    return Submission(
        result_id=uuid.uuid4().hex,
        user_id=user,
        username="ann",
        test_id=test_id,
        spec=TextSpec(mode="words", count=10),
        seed=7,
        result=result,
        verdict=judge(run, result, Limits())[0],
        created_at=1_767_225_600_000,
    )


async def test_a_result_not_on_the_log_is_not_accepted_and_may_be_submitted_again(
    platform: Platform,
) -> None:
    user, test_id = uuid.uuid4().hex, uuid.uuid4().hex
    sub = submission(user, test_id)
    refusing = Results(
        platform.db,
        platform.cache,
        cast(EventLog, FailingLog()),
        score_writes=platform.score_writes,
    )
    with pytest.raises(ConnectionError):
        await refusing.accept(sub)
    assert await platform.cache.list_range(keys.user_accepted_results(user)) == []
    assert await platform.cache.zscore(keys.user_bests(user), sub.spec.category) is None
    # The claim was released: the same test goes through once the log takes it.
    working = Results(
        platform.db, platform.cache, platform.events, score_writes=platform.score_writes
    )
    view, best = await working.accept(sub)
    assert view["id"] == sub.result_id and best is True
    with pytest.raises(AppError) as conflict:
        await working.accept(replace(sub, result_id=uuid.uuid4().hex))
    assert conflict.value.http_status == 409
    page, _ = await working.page(user, limit=10, cursor=None)
    assert [r["id"] for r in page] == [sub.result_id]


async def test_write_through_keeps_a_stored_result_when_the_log_refuses_it(
    platform: Platform,
) -> None:
    user = uuid.uuid4().hex
    sub = submission(user, uuid.uuid4().hex)
    stored = Results(
        platform.db,
        platform.cache,
        cast(EventLog, FailingLog()),
        score_writes=platform.score_writes,
        write_through=True,
    )
    view, best = await stored.accept(sub)  # logged, not raised: the row is stored
    assert view["id"] == sub.result_id and best is True
    assert await count(platform, test_results, test_results.c.id == sub.result_id) == 1


async def test_a_result_is_on_its_boards_when_the_201_leaves(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    """No worker runs: the REST process raised the entries itself (rule 7)."""
    auth = await register(client)
    user = await user_id_of(client, auth)

    async def board_test(pace: int, seed: int) -> dict[str, Any]:
        test = (await client.get("/api/v1/tests/new?mode=words&count=25", headers=auth)).json()
        log = typed_by_hand(test["text"], pace_ms=pace, seed=seed)
        response = await submit(client, auth, test["test_id"], log)
        assert response.status_code == 201, response.text
        return cast(dict[str, Any], response.json())

    body = await board_test(150, 4)
    board, wpm = body["result"]["category"], body["result"]["wpm"]
    assert board.startswith("words-25-")
    for window in ("daily", "weekly", "alltime"):
        page = await client.get(
            f"/api/v1/leaderboards/{board}", params={"window": window, "around": "me"}, headers=auth
        )
        assert page.status_code == 200, page.text
        mine = [e for e in page.json()["entries"] if e["user_id"] == user]
        assert page.json()["rank"] is not None and [e["wpm"] for e in mine] == [wpm]
    slower = await board_test(220, 5)  # a slower result lowers nothing
    assert slower["result"]["wpm"] < wpm
    daily = boards.period("daily", body["result"]["created_at"]).name
    score = await platform.cache.zscore(keys.leaderboard(board, daily), user)
    assert score is not None and boards.decode(score)[0] == wpm


def on_a_board(sub: Submission, **spec: Any) -> Submission:
    return replace(sub, spec=TextSpec(mode="words", count=25, **spec))


async def on_boards(platform: Platform, sub: Submission, board: str) -> list[float | None]:
    periods = [boards.period(w, sub.created_at).name for w in ("daily", "weekly", "alltime")]
    return [await platform.cache.zscore(keys.leaderboard(board, p), sub.user_id) for p in periods]


async def test_flagged_and_boardless_results_reach_no_board(platform: Platform) -> None:
    fair = on_a_board(submission(uuid.uuid4().hex, uuid.uuid4().hex))
    flagged = on_a_board(submission(uuid.uuid4().hex, uuid.uuid4().hex))
    flagged = replace(flagged, verdict=replace(flagged.verdict, action="flag"))
    boardless = on_a_board(submission(uuid.uuid4().hex, uuid.uuid4().hex), punctuation=True)
    assert boardless.spec.board is None
    results = Results(
        platform.db, platform.cache, platform.events, score_writes=platform.score_writes
    )
    for sub in (fair, flagged, boardless):
        await results.accept(sub)
    board = str(fair.spec.board)
    assert None not in await on_boards(platform, fair, board)
    assert await on_boards(platform, flagged, board) == [None] * 3
    assert await on_boards(platform, boardless, board) == [None] * 3
    assert await on_boards(platform, boardless, boardless.spec.category) == [None] * 3


async def test_a_failed_board_write_is_left_to_the_worker(platform: Platform) -> None:

    class NoBoards:  # leaderboard writes that fail
        async def raise_scores(self, writes: Sequence[Any]) -> list[bool]:
            raise ConnectionError("cache down")

    sub = on_a_board(submission(uuid.uuid4().hex, uuid.uuid4().hex))
    failing = Results(platform.db, platform.cache, platform.events, score_writes=NoBoards())
    view, best = await failing.accept(sub)  # accepted: the worker writes the entries
    assert view["id"] == sub.result_id and best is True
    assert await on_boards(platform, sub, str(sub.spec.board)) == [None] * 3
