"""The Kafka broker SIGKILLed and started again under a steady stream of results.

The broker keeps its log in an S3-compatible object store in a process of
its own (tansu's ``s3://`` storage engine on moto's server,
``tests.clusters.ObjectStore``), so a restart is real: the process dies
with what it had in flight and a new one starts on the same port with the
log, the committed offsets and the consumer groups it finds in the store.
The results arrive open loop at ``rate`` a second through
``Results.accept`` -- what ``POST /api/v1/results`` does once it has scored
a log: claim the test, publish ``result.accepted`` and wait for the
broker's acknowledgement (a result is *accepted* when that returns), then
the best and the boards -- from ``writers`` concurrent submitters sharing
one scored log (the HTTP layer and the scoring are measured elsewhere; here
the pipeline is what breaks). A ``typogram worker results`` process stores
them. After ``warmup_s`` the broker is SIGKILLed and started again
``down_s`` later; results keep coming for ``after_s`` more. Then:

* ``offered_per_s`` / ``accepted_per_s``: the rate asked for and the one
  reached before the kill (the machine's limit when lower);
* ``refused``: submissions that failed while the broker was away (not
  accepted: the client retries them), ``slowest_s`` the slowest answer;
* ``accepted_again_s``: from the restart to the first result accepted;
* ``lag_before`` / ``lag_recovered_s``: results accepted and not yet stored
  before the kill (a steady backlog), and from the restart until the
  backlog is back under one second's worth of results;
* ``lost`` / ``doubled``: accepted results with no ``test_results`` row,
  or two (goal 0, 0); ``unstored_after_wait`` instead when the worker had
  not got through its backlog ``RECOVERY_LIMIT_S`` after the load stopped.

On the shared 2-core machine the broker's side keeps up with 200 results/s
(``--set rate=200``: accepted at the rate offered, again 0.1-0.2 s after the
restart), but the ``results`` worker drains only about 15 a second from the
object store: a fetch lists the store per partition and every batch and
watermark is an object in moto's server, one Python process (the worker
and moto each used a third of a core or less: latency, not CPU, bounds
it). The full size is that rate; a production object store (or a
database-backed tansu built with ``postgres``) is what 200/s end to end
needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.chaos.backends import RECOVERY_LIMIT_S, check_stored_once, stored_ids, until_stored
from bench.chaos.gateways import registered_players
from bench.chaos.outcome import Outcome
from bench.chaos.stack import (
    chaos_settings,
    cheap_passwords,
    fresh_database,
    redis_prefix,
    shared_backends,
    start_worker,
)
from tests.clusters import KafkaBroker, ObjectStore
from tests.typing_logs import by_hand
from typogram import texts
from typogram.anticheat import judge, limits_from
from typogram.db.schema import test_results
from typogram.platform import Platform, open_platform
from typogram.result_record import Submission
from typogram.results import Results
from typogram.typing import replay, score

SAMPLE_EVERY_S = 0.25


@dataclass
class Stream:
    """Results submitted open loop at a rate; what was accepted, refused, and when."""

    results: Results
    template: Submission
    users: list[str]
    rate: float
    accepted: list[str] = field(default_factory=list)
    accepted_at: list[float] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    slowest_s: float = 0.0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, writers: int) -> None:
        """``writers`` submitters, each taking the next slot of the schedule."""
        started, slot = time.monotonic(), 0

        def next_at() -> float:
            nonlocal slot
            slot += 1
            return started + slot / self.rate

        async with asyncio.TaskGroup() as tasks:
            for _ in range(writers):
                tasks.create_task(self._writer(next_at))

    async def _writer(self, next_at: Any) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(max(0.0, next_at() - time.monotonic()))
            user = self.users[len(self.accepted) % len(self.users)]
            sub = dataclasses.replace(
                self.template,
                result_id=uuid.uuid4().hex,
                test_id=uuid.uuid4().hex,
                user_id=user,
                created_at=int(time.time() * 1000),
            )
            sent = time.monotonic()
            try:
                await self.results.accept(sub)
            except Exception as exc:  # not accepted: a client would submit it again
                self.refused[type(exc).__name__] += 1
            else:
                self.accepted.append(sub.result_id)
                self.accepted_at.append(time.monotonic())
            finally:
                self.slowest_s = max(self.slowest_s, time.monotonic() - sent)

    def rate_between(self, start: float, end: float) -> float:
        return sum(1 for at in self.accepted_at if start <= at < end) / max(end - start, 1e-9)


async def broker_restart(
    rate: float = 200.0,
    writers: int = 64,
    warmup_s: float = 8.0,
    down_s: float = 3.0,
    after_s: float = 10.0,
) -> Outcome:
    outcome = Outcome("broker_restart")
    with (
        tempfile.TemporaryDirectory() as root,
        redis_prefix() as prefix,
        fresh_database() as url,
    ):
        store = ObjectStore(Path(root) / "store")
        broker = KafkaBroker(Path(root) / "kafka", store)
        worker: subprocess.Popen[bytes] | None = None
        await asyncio.to_thread(store.start)
        try:
            await asyncio.to_thread(broker.start)
            backends = shared_backends(url, prefix, broker)
            # Creating every topic in the object store takes longer than an outage's timeout.
            setup = chaos_settings(root, backend_connect_timeout_s=60.0, **backends)
            async with open_platform(setup, migrate=True, passwords=cheap_passwords()):
                pass
            settings = chaos_settings(root, **backends)
            async with open_platform(settings, passwords=cheap_passwords()) as p:
                worker = start_worker(root, "results", backends)
                stream = await _stream(p, rate)
                await _restart_under(outcome, p, broker, stream, writers, warmup_s, down_s, after_s)
        finally:
            if worker is not None:
                worker.terminate()
                await asyncio.to_thread(worker.wait)
            await asyncio.to_thread(broker.stop)
            await asyncio.to_thread(store.stop)
    return outcome


async def _stream(platform: Platform, rate: float) -> Stream:
    """Twenty users and one scored 10-word log every submission reuses."""
    users = [user for user, _ in await registered_players(platform, 20)]
    spec = texts.TextSpec(mode="words", count=10, difficulty="easy")
    text = texts.generate(spec, 7)
    run = replay(text, by_hand(text, wpm=70, seed=7))
    result = score(run)
    verdict, _ = judge(run, result, limits_from(platform.settings))
    template = Submission(
        result_id="", user_id="", username="chaos", test_id="", spec=spec, seed=7,
        result=result, verdict=verdict, created_at=0,
    )  # fmt: skip
    results = Results(
        platform.db, platform.cache, platform.events, score_writes=platform.score_writes
    )
    return Stream(results, template, users, rate)


async def _restart_under(
    outcome: Outcome,
    platform: Platform,
    broker: KafkaBroker,
    stream: Stream,
    writers: int,
    warmup_s: float,
    down_s: float,
    after_s: float,
) -> None:
    await _until_flowing(platform, stream)
    backlog: list[tuple[float, int]] = []  # (when, accepted and not yet stored)
    async with asyncio.TaskGroup() as tasks:
        streaming = tasks.create_task(stream.run(writers))
        sampling = tasks.create_task(_sample(platform, stream, backlog))
        began = time.monotonic()
        await asyncio.sleep(warmup_s)
        await asyncio.to_thread(broker.kill)
        killed_at = time.monotonic()
        await asyncio.sleep(down_s)
        await asyncio.to_thread(broker.restart)
        back_at = time.monotonic()
        await asyncio.sleep(after_s)
        stream.stop.set()
        await streaming  # the submissions in flight are answered (and counted) first
        stopped_at = time.monotonic()
        caught_up = await until_stored(platform, stream.accepted, stopped_at)
        sampling.cancel()
    steady = [n for at, n in backlog if began + 2.0 <= at < killed_at]
    recovered = next((at - back_at for at, n in backlog if at > back_at and n <= stream.rate), None)
    again = next((at - back_at for at in stream.accepted_at if at > back_at), None)
    outcome.figures |= {
        "offered_per_s": stream.rate,
        "accepted_per_s": round(stream.rate_between(began + 1.0, killed_at), 1),
        "down_s": round(back_at - killed_at, 2),
        "refused": sum(stream.refused.values()),
        "slowest_s": round(stream.slowest_s, 2),
        "accepted_again_s": None if again is None else round(again, 2),
        "lag_before": max(steady, default=None),
        "lag_recovered_s": None if recovered is None else round(recovered, 2),
    }
    outcome.check(again is not None, "nothing accepted after the broker came back")
    outcome.check(recovered is not None, "the backlog never came back under a second's worth")
    outcome.figures["stored_all_after_stop_s"] = None if caught_up is None else round(caught_up, 2)
    if caught_up is not None:
        await check_stored_once(outcome, platform, stream.accepted)
        return
    # Still draining: a backlog the worker did not get through, not (yet) a loss.
    stored = await stored_ids(platform, stream.accepted)
    behind = len(set(stream.accepted)) - len(stored)
    outcome.figures |= {"accepted": len(stream.accepted), "unstored_after_wait": behind}
    outcome.check(
        False,
        f"{behind} accepted results not stored {RECOVERY_LIMIT_S:g} s after the load stopped "
        "(the worker is behind the rate: lower it)",
    )


async def _until_flowing(platform: Platform, stream: Stream) -> None:
    """One result accepted and stored: the worker has joined its group (it takes a while
    with the log in an object store), so the measured load starts on a working pipeline."""
    first = dataclasses.replace(
        stream.template,
        result_id=uuid.uuid4().hex,
        test_id=uuid.uuid4().hex,
        user_id=stream.users[0],
        created_at=int(time.time() * 1000),
    )
    await stream.results.accept(first)
    if await until_stored(platform, [first.result_id], time.monotonic()) is None:
        raise TimeoutError("the results worker stored nothing: the pipeline never started")


async def _sample(platform: Platform, stream: Stream, into: list[tuple[float, int]]) -> None:
    """Every ``SAMPLE_EVERY_S``: how many accepted results are not stored yet."""
    while True:
        accepted = len(stream.accepted)
        with contextlib.suppress(Exception):  # a slow read is a missed sample
            async with platform.db.read(primary=True) as conn:
                counted = select(func.count()).select_from(test_results)
                stored = int((await conn.execute(counted)).scalar() or 0)
            into.append((time.monotonic(), max(0, accepted - stored)))
        await asyncio.sleep(SAMPLE_EVERY_S)
