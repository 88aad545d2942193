"""Dead letters on Kafka: a poison ``result.accepted`` lands on ``test-results.dlq`` with its
reason, ``typogram dlq list`` shows it, ``typogram dlq replay`` gets it stored exactly once
once the cause is gone, and an event that still fails comes back counted until the replay
limit refuses it. The command runs as an operator runs it: a separate process."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cheap_passwords, empty_tables
from tests.integration.test_pipeline import accepted, eventually
from tests.integration.test_results_log_first import count, stop
from typogram import topics
from typogram.db.schema import applied_results, test_results
from typogram.metrics import DEAD_LETTERS
from typogram.platform import Platform, open_platform
from typogram.ports import Event
from typogram.settings import Settings
from workers import dlq
from workers import results as results_worker
from workers.runtime import Group, GroupRunner

pytestmark = pytest.mark.integration

RETRIES = 1  # two handler calls per delivery before the DLQ
CLI_TIMEOUT_S = 60.0


@pytest.fixture
def backend() -> str:
    return "distributed"


@pytest.fixture
async def platform(backend_settings: Settings, unique_topic_prefix: str) -> AsyncIterator[Platform]:
    """Kafka topics of this test's own (so ``--all`` sees only its dead letters)."""
    settings = backend_settings.replace(
        kafka_topic_prefix=unique_topic_prefix,
        worker_max_retries=RETRIES,
        worker_retry_backoff_s=0.01,
    )
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as p:
        try:
            yield p
        finally:
            await empty_tables(p)


@dataclass
class Outage:
    """The cause: results of these users fail as if their database shard were down."""

    users: set[str]

    async def handle_batch(self, platform: Platform, topic: str, events: Sequence[Event]) -> None:
        for event in events:
            if event.data.get("user_id") in self.users:
                raise ConnectionError(f"shard of user {event.data['user_id']} is offline")
        await results_worker.handle_batch(platform, topic, events)


async def start_worker(platform: Platform, outage: Outage) -> tuple[str, asyncio.Task[None]]:
    name = f"results-{uuid.uuid4().hex[:8]}"
    group: Group = replace(results_worker.GROUP, name=name, handle_batch=outage.handle_batch)
    return name, asyncio.create_task(GroupRunner(platform, group).run())


@dataclass
class Done:
    code: int
    out: str
    err: str


async def typogram_dlq(settings: Settings | None, tmp_path: Path, *args: str, **env: str) -> Done:
    """``typogram dlq ARGS`` in its own process, against ``settings``' Kafka (None: none)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGRAM_")}
    environment.update(
        TYPOGRAM_ENVIRONMENT="test", TYPOGRAM_DATA_DIR=str(tmp_path), TYPOGRAM_LOG_JSON="false"
    )
    if settings is not None:
        environment.update(
            TYPOGRAM_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
            TYPOGRAM_KAFKA_TOPIC_PREFIX=settings.kafka_topic_prefix,
        )
    environment.update(env)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "roles",
        "dlq",
        *args,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT_S)
    assert process.returncode is not None
    return Done(process.returncode, out.decode(), err.decode())


async def entry_of(platform: Platform, event_id: str, **expected: Any) -> dlq.Entry:
    """Wait until the DLQ entry of ``event_id`` has the ``expected`` attribute values."""

    async def probe() -> dlq.Entry | None:
        for entry in await dlq.read(platform.events, topics.TEST_RESULTS, 1000):
            if entry.id == event_id and all(getattr(entry, k) == v for k, v in expected.items()):
                return entry
        return None

    return await eventually(probe, 60)


def row_of(output: str, event_id: str) -> list[str]:
    (line,) = [line for line in output.splitlines() if line.strip().startswith(event_id)]
    return line.split()


async def test_a_poison_result_is_listed_and_replayed_into_storage_exactly_once(
    platform: Platform, tmp_path: Path
) -> None:
    user, healthy = uuid.uuid4().hex, uuid.uuid4().hex
    poison, fine = (
        accepted(user, uuid.uuid4().hex, wpm=71.0),
        accepted(healthy, uuid.uuid4().hex, wpm=65.0),
    )
    outage = Outage({user})
    group, worker = await start_worker(platform, outage)
    settings = platform.settings
    try:
        await platform.events.publish(topics.TEST_RESULTS, poison)
        await platform.events.publish(topics.TEST_RESULTS, fine)

        # It lands on the DLQ with why; its batch-mate is stored regardless.
        entry = await entry_of(platform, poison.id)
        assert (entry.event, entry.pending, entry.dead_letters) == (poison, True, 1)
        assert (entry.last.group, entry.last.error) == (group, "ConnectionError")
        assert entry.last.reason == f"shard of user {user} is offline"
        assert entry.attempts == RETRIES + 1 and entry.last.topic == topics.TEST_RESULTS
        labels = {"group": group, "topic": topics.TEST_RESULTS, "error": "ConnectionError"}
        assert platform.metrics.registry.get_sample_value(DEAD_LETTERS, labels) == 1.0
        await eventually(lambda: _stored(platform, fine.id))
        assert await count(platform, test_results, test_results.c.id == poison.id) == 0

        # ``dlq list`` shows it: counts for every DLQ, then the entry.
        listed = await typogram_dlq(settings, tmp_path, "list")
        assert listed.code == 0, listed.err
        assert ["test-results.dlq", "1", "1", "1"] in [
            line.split() for line in listed.out.splitlines()
        ]
        assert row_of(listed.out, poison.id)[1:7] == [
            "result.accepted",
            group,
            "pending",
            "1",
            "2",
            "0",
        ]
        assert listed.out.rstrip().endswith(f"ConnectionError: shard of user {user} is offline")

        # Replayed while the shard is still down: back on the DLQ, counted.
        again = await typogram_dlq(
            settings, tmp_path, "replay", "test-results.dlq", "--id", poison.id
        )
        assert again.code == 0, again.err
        assert again.out.startswith(f"replayed {poison.id} (result.accepted; dead-lettered 1x")
        entry = await entry_of(platform, poison.id, dead_letters=2, pending=True)
        assert (entry.attempts, entry.replays) == (2 * (RETRIES + 1), 1)
        shown = await typogram_dlq(settings, tmp_path, "list", "test-results")
        assert row_of(shown.out, poison.id)[3:7] == ["pending", "2", "4", "1"]

        # The cause is gone: a dry run changes nothing, then a replay stores it.
        outage.users.clear()
        dry = await typogram_dlq(settings, tmp_path, "replay", "test-results", "--all", "--dry-run")
        assert dry.code == 0 and f"would replay {poison.id}" in dry.out
        await asyncio.sleep(1.0)
        assert await count(platform, test_results, test_results.c.id == poison.id) == 0
        done = await typogram_dlq(settings, tmp_path, "replay", "test-results", "--all")
        assert done.code == 0, done.err
        assert done.out.splitlines()[-1] == "1 replayed, 0 refused"
        await eventually(lambda: _stored(platform, poison.id))
        await entry_of(platform, poison.id, pending=False, replays=2)

        # Replayed once more (as a crash between republishing and marking would): the
        # same event id changes nothing. A later result of the user, on the same
        # partition, shows the worker got past it.
        await platform.events.publish_raw(topics.TEST_RESULTS, poison.encode(), key=poison.key)
        later = accepted(user, uuid.uuid4().hex, wpm=60.0)
        later = replace(later, data={**later.data, "created_at": later.data["created_at"] + 1})
        await platform.events.publish(topics.TEST_RESULTS, later)
        await eventually(lambda: _stored(platform, later.id))
        assert await count(platform, test_results, test_results.c.id == poison.id) == 1
        assert await count(platform, applied_results, applied_results.c.user_id == user) == 2

        # Nothing left: ``--all`` finds nothing and the id alone is refused.
        nothing = await typogram_dlq(settings, tmp_path, "replay", "test-results", "--all")
        assert (nothing.code, nothing.out.strip()) == (0, "nothing pending on test-results.dlq")
        refused = await typogram_dlq(
            settings, tmp_path, "replay", "test-results", "--id", poison.id
        )
        assert refused.code == 1
        assert f"refused {poison.id}: replayed and not back on the DLQ since" in refused.out
    finally:
        await stop(worker)


async def test_a_replay_limit_stops_a_poison_that_keeps_failing(
    platform: Platform, tmp_path: Path
) -> None:
    user = uuid.uuid4().hex
    poison = accepted(user, uuid.uuid4().hex, wpm=55.0)
    group, worker = await start_worker(platform, Outage({user}))
    settings, limit = platform.settings, {"TYPOGRAM_WORKER_DLQ_REPLAY_LIMIT": "1"}
    try:
        await platform.events.publish(topics.TEST_RESULTS, poison)
        await platform.events.publish_raw(topics.TEST_RESULTS, b"\x00 not an event", key=user)
        await entry_of(platform, poison.id)
        first = await typogram_dlq(
            settings, tmp_path, "replay", "test-results", "--id", poison.id, **limit
        )
        assert first.code == 0, first.err
        await entry_of(platform, poison.id, dead_letters=2, pending=True)

        stopped = await typogram_dlq(settings, tmp_path, "replay", "test-results", "--all", **limit)
        assert stopped.code == 1
        lines = stopped.out.splitlines()
        assert f"refused {poison.id}: replayed 1 times already (limit 1)" in lines
        assert any(
            line.startswith("refused @") and "not a decodable event" in line for line in lines
        )
        assert lines[-1] == "0 replayed, 2 refused"
        await asyncio.sleep(1.0)
        entry = await entry_of(platform, poison.id)
        assert (entry.dead_letters, entry.replays, entry.pending) == (2, 1, True)
        garbage = [
            e for e in await dlq.read(platform.events, topics.TEST_RESULTS, 100) if e.event is None
        ]
        assert [(g.last.error, g.last.attempts, g.last.group) for g in garbage] == [
            ("ValueError", 0, group)
        ]
    finally:
        await stop(worker)


async def test_bad_input_is_a_clear_error_with_exit_code_2(
    platform: Platform, tmp_path: Path
) -> None:
    settings = platform.settings
    cases: list[tuple[Settings | None, tuple[str, ...], str]] = [
        (settings, ("replay", "test-results"), "one of the arguments --id --all is required"),
        (settings, ("replay", "test-results", "--id", "x", "--all"), "not allowed with argument"),
        (settings, ("replay",), "the following arguments are required: topic"),
        (settings, (), "the following arguments are required"),
        (settings, ("list", "no-such-topic"), "unknown topic 'no-such-topic'; known: "),
        (settings, ("replay", "nope.dlq", "--all"), "unknown topic 'nope.dlq'"),
        (settings, ("replay", "test-results", "--id", "nope", "--id", "zip"),
         "not on the dead-letter topic: nope, zip"),
        (None, ("list",), "set TYPOGRAM_KAFKA_BOOTSTRAP"),
    ]  # fmt: skip
    for where, args, message in cases:
        done = await typogram_dlq(where, tmp_path, *args)
        assert done.code == 2, (args, done.out, done.err)
        assert message in done.err, (args, done.err)
        assert "Traceback" not in done.err
    unreachable = await typogram_dlq(
        None,
        tmp_path,
        "list",
        TYPOGRAM_KAFKA_BOOTSTRAP="127.0.0.1:1",
        TYPOGRAM_BACKEND_CONNECT_TIMEOUT_S="1",
    )
    assert unreachable.code == 1 and "127.0.0.1:1" in unreachable.err
    assert "Traceback" not in unreachable.err


async def _stored(platform: Platform, result_id: str) -> bool | None:
    return True if await count(platform, test_results, test_results.c.id == result_id) else None
