"""A worker killed between processing and commit, over and over: effects stay exactly once.

The ``results`` group's real batch handler runs on MariaDB and Redis against
a stream of ``result.accepted`` events read the way a consumer reads a
partition: from the committed offset, in batches of a random size. Each
round is one of:

* processed and committed (the offset moves on);
* killed after processing, before the commit: the batch is delivered again,
  possibly cut differently;
* killed during processing (the task is cancelled at a random moment, in
  the middle of its transaction or its follow-up publishes): likewise.

A batch that fails is retried with backoff, as the group runtime does (a
killed batch's row locks can outlive it for a moment: the next batch may
meet a deadlock). After ``crashes`` kills and every event committed, each
result is stored once and every user's stats and personal best are what the events add up
to. Real processes are SIGKILLed in the gateway scenarios; here the kill
points are what matters, and a thousand of them take seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import tempfile
import time
import uuid
from collections import defaultdict

from sqlalchemy import select

from bench.chaos.backends import stored_ids
from bench.chaos.outcome import Outcome
from bench.chaos.stack import (
    REDIS_URL,
    chaos_settings,
    cheap_passwords,
    fresh_database,
    redis_prefix,
)
from tests.result_events import accepted
from typogram import topics
from typogram.db.schema import personal_bests, user_stats
from typogram.platform import Platform, open_platform
from typogram.ports import Event
from workers.results import handle_batch

MAX_BATCH = 8


async def worker_crash(crashes: int = 1000, users: int = 20, seed: int | None = None) -> Outcome:
    """``seed`` picks the batch sizes and kill points (a fresh one each run unless given;
    it is among the figures, so a failing run can be replayed)."""
    seed = random.randrange(1_000_000) if seed is None else seed
    outcome = Outcome("worker_crash", {"seed": seed})
    with tempfile.TemporaryDirectory() as root, redis_prefix() as prefix, fresh_database() as url:
        settings = chaos_settings(root, database_url=url, redis_url=REDIS_URL, redis_prefix=prefix)
        async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as platform:
            await _crash_and_check(outcome, platform, crashes, users, random.Random(seed))
    return outcome


def _events(count: int, users: list[str], rng: random.Random, first: int = 0) -> list[Event]:
    events = []
    for index in range(first, first + count):
        made = accepted(users[index % len(users)], uuid.uuid4().hex, wpm=rng.uniform(30, 150))
        data = dict(made.data)
        data["created_at"] += index  # distinct rows in one month's partition
        events.append(dataclasses.replace(made, data=data))
    return events


async def _crash_and_check(
    outcome: Outcome, platform: Platform, crashes: int, users: int, rng: random.Random
) -> None:
    names = [uuid.uuid4().hex for _ in range(users)]
    events = _events(users, names, rng)
    committed = killed = killed_mid = rounds = 0
    retries: list[str] = []  # why a batch was tried again (a killed batch's locks linger)
    started = time.monotonic()
    while committed < len(events):
        if killed < crashes and len(events) - committed <= MAX_BATCH:
            events += _events(MAX_BATCH, names, rng, first=len(events))  # more to kill on
        rounds += 1
        batch = events[committed : committed + rng.randint(1, MAX_BATCH)]
        if killed >= crashes or rng.random() < 0.5:
            if not await _handled(platform, batch, retries):
                outcome.problems.append(f"a batch failed {len(retries)} times: dead-lettered")
                return
            committed += len(batch)
            continue
        killed += 1
        work = asyncio.create_task(handle_batch(platform, topics.TEST_RESULTS, batch))
        if rng.random() < 0.5:
            await work  # processed; killed before the commit
            continue
        killed_mid += 1
        await asyncio.sleep(rng.uniform(0.0, 0.02))
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
    outcome.figures |= {
        "events": len(events),
        "kills": killed,
        "kills_mid_batch": killed_mid,
        "rounds": rounds,
        "retried": len(retries),
        "seconds": round(time.monotonic() - started, 1),
    }
    outcome.check(killed >= crashes, f"only {killed} kills of {crashes}")
    await _check_effects(outcome, platform, events)


async def _handled(platform: Platform, batch: list[Event], retries: list[str]) -> bool:
    """Handle ``batch`` as the group runtime does: retried with backoff on a failure
    (``worker_max_retries``), after which the runtime would dead-letter it."""
    settings = platform.settings
    for attempt in range(settings.worker_max_retries + 1):
        try:
            await handle_batch(platform, topics.TEST_RESULTS, batch)
            return True
        except Exception as exc:  # as the runtime: any failure is retried
            retries.append(type(exc).__name__)
            await asyncio.sleep(settings.worker_retry_backoff_s * 2**attempt)
    return False


async def _check_effects(outcome: Outcome, platform: Platform, events: list[Event]) -> None:
    ids = [e.data["result_id"] for e in events]
    found = await stored_ids(platform, ids)
    outcome.figures["lost"] = lost = sum(1 for i in ids if i not in found)
    outcome.figures["doubled"] = doubled = sum(1 for n in found.values() if n > 1)
    outcome.check(lost == 0 and doubled == 0, f"{lost} results lost, {doubled} stored twice")
    tests: dict[str, int] = defaultdict(int)
    wpm_sum: dict[str, float] = defaultdict(float)
    best: dict[str, float] = defaultdict(float)
    for event in events:
        user, wpm = event.data["user_id"], float(event.data["wpm"])
        tests[user] += 1
        wpm_sum[user] += wpm
        best[user] = max(best[user], wpm)
    async with platform.db.read(primary=True) as conn:
        stats = {
            row.user_id: row
            for row in await conn.execute(select(user_stats).where(user_stats.c.user_id.in_(tests)))
        }
        bests = {
            row.user_id: row.wpm
            for row in await conn.execute(
                select(personal_bests).where(personal_bests.c.user_id.in_(tests))
            )
        }
    wrong = [
        user
        for user in tests
        if user not in stats
        or stats[user].tests != tests[user]
        or abs(stats[user].wpm_sum - wpm_sum[user]) > 1e-6 * tests[user]
        or abs(bests.get(user, 0.0) - best[user]) > 1e-9
    ]
    outcome.figures["users_wrong"] = len(wrong)
    outcome.check(not wrong, f"stats or best of {len(wrong)} users are not the events' sum")
