"""Backends failing under load: the MariaDB primary, the Redis master, the Kafka broker.

Each scenario runs REST in process against the backend it breaks, keeps
typists submitting results through it, breaks the backend, brings it back,
and checks the invariants:

* REST fails fast: every answer is the usual one or ``503 unavailable``
  with ``Retry-After`` (``typogram.outages``), and none takes longer than
  ``SLOW_LIMIT_S``;
* nothing acknowledged is lost: every result answered ``201`` is stored,
  exactly once;
* it recovers by itself: results are accepted again within a bounded time.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, select

from bench.chaos.outcome import Outcome, RestProbe
from bench.chaos.stack import (
    REDIS_URL,
    broker_stack,
    chaos_settings,
    cheap_passwords,
    fresh_database,
    redis_prefix,
    register,
    rest_client,
    typed_result,
)
from tests.clusters import MariaDBPair, RedisSentinelGroup
from typogram.db.schema import test_results
from typogram.platform import Platform, open_platform
from typogram.settings import Settings

SLOW_LIMIT_S = 3.0  # an answer slower than this during an outage is not "failing fast"
RECOVERY_LIMIT_S = 45.0


@dataclass
class Typing:
    """Typists submitting results through REST until ``stop``; what was accepted."""

    client: httpx.AsyncClient
    typists: list[dict[str, str]]
    probe: RestProbe = field(default_factory=RestProbe)
    accepted: list[str] = field(default_factory=list)
    accepted_at: list[float] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    pause_s: float = 0.02

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            for index, auth in enumerate(self.typists):
                tasks.create_task(self._typist(index, auth))

    async def _typist(self, index: int, auth: dict[str, str]) -> None:
        seed = index * 1_000_000
        while not self.stop.is_set():
            seed += 1
            _, result_id = await typed_result(self.client, auth, seed, self.probe.ask)
            if result_id is not None:
                self.accepted.append(result_id)
                self.accepted_at.append(time.monotonic())
            await asyncio.sleep(self.pause_s)

    def accepted_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` to the first result accepted after it."""
        later = [at for at in self.accepted_at if at > moment]
        return min(later) - moment if later else None

    async def until_accepted_after(self, moment: float, limit_s: float) -> float | None:
        deadline = moment + limit_s
        while time.monotonic() < deadline:
            if (found := self.accepted_after(moment)) is not None:
                return found
            await asyncio.sleep(0.05)
        return None


async def stored_ids(platform: Platform, ids: list[str]) -> dict[str, int]:
    """How many ``test_results`` rows each of ``ids`` has."""
    found: dict[str, int] = {}
    async with platform.db.read(primary=True) as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await conn.execute(
                select(test_results.c.id, func.count())
                .where(test_results.c.id.in_(chunk))
                .group_by(test_results.c.id)
            )
            found.update({str(row[0]): int(row[1]) for row in rows})
    return found


async def check_stored_once(outcome: Outcome, platform: Platform, accepted: list[str]) -> None:
    found = await stored_ids(platform, accepted)
    lost = [i for i in accepted if i not in found]
    doubled = [i for i, n in found.items() if n > 1]
    outcome.figures["accepted"] = len(accepted)
    outcome.figures["lost"] = len(lost)
    outcome.figures["doubled"] = len(doubled) + len(accepted) - len(set(accepted))
    outcome.check(not lost, f"{len(lost)} results answered 201 are not stored: {lost[:3]}")
    outcome.check(outcome.figures["doubled"] == 0, f"results stored twice: {doubled[:3]}")


@contextlib.asynccontextmanager
async def typing_on(settings: Settings, typists: int) -> AsyncIterator[tuple[Platform, Typing]]:
    """The platform on ``settings`` with REST in process and ``typists`` new users to type."""
    async with (
        open_platform(settings, migrate=True, passwords=cheap_passwords()) as platform,
        rest_client(platform) as client,
    ):
        yield platform, Typing(client, await register(client, typists))


async def check_recovered(
    outcome: Outcome,
    platform: Platform,
    typing: Typing,
    recovered: float | None,
    never: str,
    outage: str = "the outage",
) -> None:
    """It came back (else ``never``), the outage answered 503, fast, and nothing was lost."""
    outcome.check(recovered is not None, never)
    outcome.check(typing.probe.statuses[503] > 0, f"{outage} was never seen (no 503)")
    typing.probe.report_into(outcome, slow_limit_s=SLOW_LIMIT_S)
    await check_stored_once(outcome, platform, typing.accepted)


# -- MariaDB primary -----------------------------------------------------------------


async def database_restart(typists: int = 4, down_s: float = 3.0) -> Outcome:
    """SIGKILL the MariaDB primary under result submissions; start it again ``down_s`` later."""
    outcome = Outcome("database_restart")
    with tempfile.TemporaryDirectory() as root, redis_prefix() as prefix:
        pair = MariaDBPair(Path(root) / "mariadb")
        await asyncio.to_thread(pair.start)
        try:
            with fresh_database(pair.primary_server) as url:
                settings = chaos_settings(
                    root, database_url=url, redis_url=REDIS_URL, redis_prefix=prefix
                )
                await _database_restart(outcome, settings, pair, typists, down_s)
        finally:
            await asyncio.to_thread(pair.stop)
    return outcome


async def _database_restart(
    outcome: Outcome, settings: Settings, pair: MariaDBPair, typists: int, down_s: float
) -> None:
    async with typing_on(settings, typists) as (platform, typing):
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(typing.run())
            await asyncio.sleep(1.0)  # steady state first
            await asyncio.to_thread(pair.kill_primary)
            killed_at = time.monotonic()
            await asyncio.sleep(down_s)
            await asyncio.to_thread(pair.restart_primary)
            back_at = time.monotonic()
            recovered = await typing.until_accepted_after(back_at, RECOVERY_LIMIT_S)
            typing.stop.set()
        outcome.figures["down_s"] = round(back_at - killed_at, 2)
        outcome.figures["recovered_after_restart_s"] = recovered
        await check_recovered(
            outcome,
            platform,
            typing,
            recovered,
            "no result accepted after the primary came back",
        )


# -- Redis master (Sentinel) ---------------------------------------------------------


async def redis_failover(typists: int = 4) -> Outcome:
    """SIGKILL the Redis master under REST load and the adapters' own load; Sentinel
    promotes the replica. Cache, pub/sub and match queues come back (``bench.redis_failover``),
    REST answers only 2xx or 503 meanwhile, and every 201 result is stored once."""
    from bench.redis_failover import run_once, sentinel_settings

    outcome = Outcome("redis_failover")
    with tempfile.TemporaryDirectory() as root:
        group = RedisSentinelGroup(Path(root) / "redis")
        await asyncio.to_thread(group.start)
        try:
            prefix = f"chaos{uuid.uuid4().hex[:8]}:"
            settings = chaos_settings(
                root,
                redis_url="redis://",
                redis_sentinels=tuple(group.sentinels),
                redis_prefix=prefix,
            )
            async with typing_on(settings, typists) as (platform, typing):
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(typing.run())
                    figures = await run_once(group, sentinel_settings(group.sentinels, prefix))
                    moment = time.monotonic()
                    recovered = await typing.until_accepted_after(moment, RECOVERY_LIMIT_S)
                    typing.stop.set()
                outcome.figures |= {
                    "promoted_s": _round(figures.promoted_s),
                    "cache_back_s": _round(figures.cache_s),
                    "pubsub_back_s": _round(figures.pubsub_s),
                    "queues_back_s": _round(figures.queue_s),
                    "lost_increments": figures.lost_increments,
                    "resubscribes": figures.resubscribes,
                }
                for name in ("promoted_s", "cache_back_s", "pubsub_back_s", "queues_back_s"):
                    outcome.check(outcome.figures[name] is not None, f"{name}: never")
                await check_recovered(
                    outcome, platform, typing, recovered, "no result accepted after the failover"
                )
        finally:
            await asyncio.to_thread(group.stop)
    return outcome


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# -- Kafka broker ----------------------------------------------------------------------


async def broker_pause(typists: int = 4, down_s: float = 5.0) -> Outcome:
    """The broker stops answering for ``down_s`` under result submissions (SIGSTOP, then
    SIGCONT). While it is away a submission fails fast with 503 (its event is not on the
    log, so it was not accepted); afterwards the ``results`` worker group catches up and
    every 201 result is stored exactly once."""
    from workers.groups import GROUPS
    from workers.runtime import GroupRunner

    outcome = Outcome("broker_pause")
    async with broker_stack() as stack:
        broker = stack.broker
        settings = chaos_settings(stack.root, **stack.backends)
        async with typing_on(settings, typists) as (platform, typing):
            worker = asyncio.create_task(GroupRunner(platform, GROUPS["results"]).run())
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(typing.run())
                    await asyncio.sleep(2.0)  # steady state: the group has joined
                    await asyncio.to_thread(broker.pause)
                    paused_at = time.monotonic()
                    await asyncio.sleep(down_s)
                    await asyncio.to_thread(broker.resume)
                    back_at = time.monotonic()
                    recovered = await typing.until_accepted_after(back_at, RECOVERY_LIMIT_S)
                    typing.stop.set()
                caught_up = await until_stored(platform, typing.accepted, back_at)
            finally:
                worker.cancel()
                await asyncio.gather(worker, return_exceptions=True)
            outcome.figures["down_s"] = round(back_at - paused_at, 2)
            outcome.figures["recovered_after_resume_s"] = _round(recovered)
            outcome.figures["caught_up_after_resume_s"] = _round(caught_up)
            outcome.check(recovered is not None, "nothing accepted after the broker came back")
            outcome.check(caught_up is not None, "the worker did not store every result")
            typing.probe.report_into(outcome, slow_limit_s=SLOW_LIMIT_S + 2.0)
            await check_stored_once(outcome, platform, typing.accepted)
    return outcome


async def until_stored(platform: Platform, ids: list[str], since: float) -> float | None:
    """Seconds from ``since`` until every one of ``ids`` is stored (the lag recovered)."""
    deadline = time.monotonic() + RECOVERY_LIMIT_S
    while time.monotonic() < deadline:
        if len(await stored_ids(platform, ids)) >= len(set(ids)):
            return time.monotonic() - since
        await asyncio.sleep(0.2)
    return None
